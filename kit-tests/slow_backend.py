"""A backend for tests that takes its time: it records each call (with the shipper's pid and the time) in
<run dir>/slow_backend.jsonl, and its close() waits `close_seconds`, as a backend with a backlog would."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from runkit.storage.status import Status
from runkit.tracking.backends.base import Backend, RunInfo


class SlowBackend(Backend):
    name = "slow"

    def __init__(self, close_seconds: float = 4.0) -> None:
        self.close_seconds = close_seconds
        self.journal: Path | None = None
        self._steps: list[int] = []

    def open(self, run: RunInfo) -> dict[str, Any]:
        self.journal = Path(run.run_dir) / "slow_backend.jsonl"
        self._note("open")
        return {"pid": os.getpid()}

    def log_metrics(self, step: int, metrics: dict[str, float], wall: float) -> None:
        self._steps.append(step)

    def flush(self) -> None:  # one journal line per batch, as a backend sends one request per batch
        self._note("write", steps=self._steps)
        self._steps = []

    def close(self, status: Status) -> None:
        self._note("closing", status=status.value)
        time.sleep(self.close_seconds)
        self._note("closed", status=status.value)

    def _note(self, call: str, **data: Any) -> None:
        line = json.dumps({"call": call, "pid": os.getpid(), "time": time.time(), **data})
        with open(self.journal, "a", encoding="utf-8") as f:  # type: ignore[arg-type]
            f.write(line + "\n")
