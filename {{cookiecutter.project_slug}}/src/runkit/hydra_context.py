"""What the tracker needs from Hydra's runtime: overrides and, in a multirun, the sweep of this job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class HydraContext:
    overrides: list[str]
    sweep_dir: Path | None = None  # set in a multirun
    job_num: int | None = None


def hydra_context() -> HydraContext:
    """The current Hydra job's context; an empty one outside a Hydra app (e.g. a notebook or a unit test)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return HydraContext(overrides=[])
        hc = HydraConfig.get()
    except ImportError:  # pragma: no cover - hydra is a required dependency
        return HydraContext(overrides=[])
    overrides = list(hc.overrides.task)
    if hc.mode == RunMode.MULTIRUN:
        return HydraContext(overrides=overrides, sweep_dir=Path(hc.sweep.dir), job_num=int(hc.job.num))
    return HydraContext(overrides=overrides)
