"""The training loop's checkpoint policy: `last.pt` at every save, `best.pt` when the monitored metric
improves.

The policy belongs to the loop, not to the tracker (as Lightning's ModelCheckpoint is not its Logger's): the
tracker only hears that a checkpoint file was saved. What the policy adds to each checkpoint (the run id, the
monitor's best value and the tracker's summary) is what `resume=` needs to continue the run exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runkit.errors import UserError
from runkit.repro.checkpoint import save_checkpoint

if TYPE_CHECKING:
    from runkit.tracking.tracker import ExperimentTracker

MODES = ("max", "min")


class Monitor:
    """The best value so far of one metric, maximised or minimised."""

    def __init__(self, metric: str, mode: str = "max", best: float | None = None) -> None:
        if mode not in MODES:
            raise UserError(f"monitor.mode must be 'max' or 'min', not {mode!r}")
        self.metric, self.mode, self.best = metric, mode, best

    def improves(self, value: float) -> bool:
        """True when `value` beats the best so far (NaN never does); it then becomes the best."""
        if math.isnan(value):
            return False
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best = value
            return True
        return False


class CheckpointPolicy:
    """Saves the loop's state as `checkpoints/last.pt` and, when the monitored metric improves, `best.pt`.

    A resumed run starts from the best value its summary had, so `best.pt` is only replaced by a better one.
    In a multi-process run only rank 0 writes (the other ranks' trackers are not writers).
    """

    def __init__(self, tracker: ExperimentTracker, metric: str, mode: str = "max") -> None:
        self.tracker = tracker
        self.monitor = Monitor(metric, mode, best=tracker.summary.best_value)
        self.directory: Path = tracker.run_dir.checkpoints

    @property
    def best_path(self) -> Path:
        return self.directory / "best.pt"

    @property
    def last_path(self) -> Path:
        return self.directory / "last.pt"

    def save(self, state: Mapping[str, Any], metrics: Mapping[str, float], step: int) -> bool:
        """Save `state` (model, optimizer, ... as the loop defines it) after logging `metrics` at `step`.

        Returns True when the monitored metric improved (and `best.pt` was written).
        """
        last = self.tracker.summary.last
        value = metrics.get(self.monitor.metric, last.get(self.monitor.metric))
        if value is None:
            known = sorted({*metrics, *last})
            raise UserError(
                f"monitor.metric={self.monitor.metric!r} is never logged; logged metrics: {', '.join(known)}"
            )
        improved = self.monitor.improves(float(value))
        if not self.tracker.is_writer:
            return improved  # a rank other than 0 of a multi-process run: rank 0 saves (the same state)
        full = {
            **state,
            "step": step,
            "run_id": self.tracker.run_id,
            "monitor": {"metric": self.monitor.metric, "value": self.monitor.best},
            "summary": self.tracker.summary.to_dict(),
        }
        save_checkpoint(self.last_path, **full)
        if improved:
            save_checkpoint(self.best_path, **full)
            self.tracker.log_checkpoint(self.best_path, aliases=["best"], step=step)
        self.tracker.log_checkpoint(self.last_path, aliases=["last"], step=step)
        return improved
