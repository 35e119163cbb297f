"""What every backend adapter implements.

Adapters never see the training loop. The delivery code (tracking/delivery) reads the run's events.jsonl in
batches and calls one typed method per event, by kind (`delivery.dispatch` is the only place that looks at an
event's `type`), then `flush()` once per batch: an adapter that talks to a server gathers a batch's calls
and sends them together there (MLflow: a few `log_batch` calls instead of one request per scalar). Only after
`flush()` returns does the backend's cursor move past the batch; when any call of the batch raises, the
delivery calls `discard()` and hands the same batch again later.

The same adapter serves the live shipper, `runs sync` after the fact, and the sweep callback.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runkit.errors import UserError
from runkit.storage.events import (
    ArtifactData,
    DatasetData,
    HParamsData,
    ImageData,
    ResumeData,
    StatusData,
    TableData,
)
from runkit.storage.status import Status


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
    start_time: float | None = None  # run.json's start_time: when the run really started (Unix time)
    record: dict[str, Any] = field(default_factory=dict)  # run.json as the backend opens (argv, git, ...)


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
    #: set by open() when the backend started its run over, holding nothing of the log (W&B offline rebuilds
    #: a resumed run's history whole, without the superseded rows): the delivery sends it the whole log again
    #: (also when its cursor said it had everything), params and tags at the log's start included
    rebuilt: bool = False

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

    # --- one method per kind of event, in the log's order; a backend with no use for a kind ignores it ---
    def log_params(self, params: dict[str, Any]) -> None:
        """A `params` event: flattened `a.b.c` keys (the resolved config at the start, then later ones)."""
        return None

    def log_metrics(self, step: int, metrics: dict[str, float], wall: float) -> None:
        """A `metrics` event: the values logged at global `step`, at `wall` time (seconds since the epoch).
        Most events are these: keep it cheap (gather here, send in flush())."""
        return None

    def set_tags(self, tags: dict[str, Any], step: int | None, wall: float) -> None:
        """A `tags` event: key/value tags (a plain label has the value "")."""
        return None

    def log_artifact(self, artifact: ArtifactData, step: int | None, wall: float) -> None:
        """An `artifact` event: a file (or folder) in the run directory, `artifact["path"]` relative to it.
        The file may have been replaced or removed since: check before reading it."""
        return None

    def mark_status(self, status: StatusData, step: int | None, wall: float) -> None:
        """A `status` event: a session ended with this status (close() still follows for the last one)."""
        return None

    def mark_resume(self, resume: ResumeData, step: int | None, wall: float) -> None:
        """A `resume` event: a resumed session takes over at resume["from_step"]; metrics the earlier session
        logged for later steps are superseded (also when `runs sync` replays the whole log)."""
        return None

    def log_image(self, image: ImageData, step: int | None, wall: float) -> None:
        """An `image` event: a PNG in the run directory (`image["path"]`), shown as the backend's image."""
        return None

    def log_table(self, table: TableData, step: int | None, wall: float) -> None:
        """A `table` event: a CSV in the run directory (`table["path"]`), shown as the backend's table."""
        return None

    def log_hparams(self, hparams: HParamsData, step: int | None, wall: float) -> None:
        """An `hparams` event: the parameters and final metrics the run is compared by."""
        return None

    def log_dataset(self, dataset: DatasetData, step: int | None, wall: float) -> None:
        """A `dataset` event: what the run trained on (name, source, split sizes, fingerprint)."""
        return None

    def log_system(self, metrics: dict[str, float], wall: float) -> None:
        """System metrics of the training process (`system/...`), sampled by the shipper itself (not an
        event of the log: system.jsonl holds them). Followed by flush(); a failure is only logged."""
        return None

    def confirmed_until(self, events_file: Path, cursor_offset: int) -> tuple[int, int] | None:
        """Called once after open() when the cursor says `cursor_offset` bytes of the log were delivered: a
        backend that writes in the background (W&B's offline writer) checks its own storage and returns
        (offset, seq) of the log position up to which it really holds everything, when that is less; the
        events after it are handed again. None: the cursor is right (what flush() returned for is kept)."""
        return None

    def repeats(self) -> int:
        """Called after close(): how many (step, metric) points the backend's own storage holds more often
        than the log has them (a batch sent twice: W&B's offline writer can outlive a kill and write a batch
        its cursor was never saved for). A backend that can rebuild its run does so at its next open when
        this is not 0, and `runs sync` opens it once more. 0: nothing held twice, or it cannot be told."""
        return 0

    def flush(self) -> None:
        """The end of one batch: send what its calls gathered. Raise to have the whole batch handed again."""
        return None

    def discard(self) -> None:
        """A call of this batch (or flush) failed: drop what was gathered; the batch comes again."""
        return None

    def release(self) -> None:
        """The shipper is done with every run: let go of what the library keeps for the whole process (W&B's
        helper process), so the process can end at once. Called once, after close()."""
        return None

    def mark_complete(self, missing: str | None) -> None:
        """Called before close(): `missing` says what the backend's run lacks of the log (one line with the
        command that completes it), None when it has everything (e.g. after `runs sync` completed it). A
        backend marks its run so that nobody mistakes a partial run for a whole one."""
        return None

    @abstractmethod
    def close(self, status: Status) -> None:
        """Map our final status to the backend's own and end its run (nothing is left RUNNING). Every
        batch has been flushed before."""

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
