"""Last values of every metric and the best value of the monitored one, kept as metrics are logged."""

from __future__ import annotations

import math
import struct
from typing import Any


class Summary:
    def __init__(self, monitor: str | None = None, mode: str = "max", state: dict[str, Any] | None = None):
        if mode not in ("max", "min"):
            raise ValueError(f"monitor mode must be 'max' or 'min', not {mode!r}")
        self.monitor, self.mode = monitor, mode
        state = state or {}
        self._last: dict[str, float] = dict(state.get("last", {}))
        # The newest packed values per set of names (events.EventWriter.write_metrics: wall time first),
        # unpacked only when `last` is read: the hot path stores one reference instead of building a dict.
        self.pending: dict[tuple[str, ...], bytes] = {}
        self.last_step: int | None = state.get("last_step")
        best = state.get("best") or {}
        self.best_value: float | None = best.get("value")
        self.best_step: int | None = best.get("step")

    @property
    def last(self) -> dict[str, float]:
        """The last value logged for every metric."""
        if self.pending:
            batches = [(struct.unpack(f"<{len(n) + 1}d", packed), n) for n, packed in self.pending.items()]
            for values, names in sorted(batches, key=lambda batch: batch[0][0]):  # oldest first: newest wins
                self._last.update(zip(names, values[1:], strict=True))
            self.pending.clear()
        return self._last

    def observe(self, value: Any, step: int | None) -> bool:
        """Compare a value of the monitored metric with the best so far; True when it is a new best."""
        value = float(value)
        if math.isnan(value):
            return False
        if self.best_value is None or (
            value > self.best_value if self.mode == "max" else value < self.best_value
        ):
            self.best_value, self.best_step = value, step
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "last": self.last,
            "last_step": self.last_step,
            "best": {
                "metric": self.monitor,
                "mode": self.mode,
                "value": self.best_value,
                "step": self.best_step,
            },
        }
