"""What every backend adapter implements.

Adapters never see the training loop. They receive batches of events read from the run's events.jsonl (the
dicts `events.read_events` yields: seq, time, type, step, data, with packed metrics already unpacked) and
translate them into their library's calls.
The same adapter serves the live shipper, `runs sync` after the fact, and the sweep callback.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runkit.errors import UserError


class BackendError(UserError, RuntimeError):
    """A backend that cannot do what it was asked; the message is one line a user can act on (train.py prints
    it as `ERROR: <message>`, like any UserError)."""


@dataclass
class RunInfo:
    """What an adapter needs to know about the run it writes to."""

    run_id: str
    name: str
    run_dir: Path
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config
    # This backend's ids from an earlier session of the run (resume, `runs sync`): reuse, never duplicate.
    previous: dict[str, Any] = field(default_factory=dict)
    resumed: bool = False
    resume_step: int | None = None  # on resume: the global step of the checkpoint the run continues from
    # For a sweep job: {"id", "dir", "name", "job_num", "backends": {<name>: what open_sweep returned}}
    sweep: dict[str, Any] | None = None


@dataclass
class SweepInfo:
    sweep_id: str
    name: str
    sweep_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """Base class of the adapters. Subclasses are built by Hydra from configs/tracker/<name>.yaml."""

    #: the key under `tracker:` in the config and in run.json's "backends"
    name: str = "backend"

    def preflight(self) -> None:
        """Cheap checks run in the training process before training starts, without importing the backend's
        library: raise BackendError for what would surely fail (package not installed, server unreachable)."""
        return None

    @abstractmethod
    def open(self, run: RunInfo) -> dict[str, Any]:
        """Create (or, when run.previous holds ids, resume) this backend's run.

        Returns what identifies it (ids, URLs, paths): stored in run.json under backends.<name>. Must raise
        BackendError with a clear line when the backend is unusable (package missing, server unreachable).
        """

    @abstractmethod
    def write(self, events: list[dict[str, Any]]) -> None:
        """Translate one batch of events (in seq order). Called many times; must not block for long."""

    @abstractmethod
    def close(self, status: str) -> None:
        """Flush, map our final status to the backend's own, and end its run (nothing is left RUNNING)."""

    # Sweeps: called in the process that launches the jobs, before the first and after the last job.
    def open_sweep(self, sweep: SweepInfo) -> dict[str, Any]:
        """Create what groups a sweep's runs (e.g. an MLflow parent run); returned dict goes to sweep.json."""
        return {}

    def close_sweep(self, sweep: SweepInfo, status: str, summary: dict[str, Any]) -> None:
        """End the sweep's grouping object with the sweep's status and summary."""
        return None


def require_package(module: str, backend: str) -> None:
    """Raise BackendError when `module` cannot be imported, without importing it (a preflight check)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BackendError(
            f"tracker={backend} needs the {module} package, which is not installed: "
            f"pip install -e '.[{backend}]' (or choose another tracker)"
        )
