"""The local backend: the run directory itself.

The run directory is written by the tracker for every run whatever backends are chosen, so this adapter has
nothing to forward (every event method keeps Backend's no-op); choosing `tracker=local` simply means "no
other backend".
"""

from __future__ import annotations

from typing import Any

from runkit.storage.status import Status
from runkit.tracking.backends.base import Backend, RunInfo


class LocalBackend(Backend):
    name = "local"

    def open(self, run: RunInfo) -> dict[str, Any]:
        return {"path": str(run.run_dir)}

    def close(self, status: Status) -> None:
        pass
