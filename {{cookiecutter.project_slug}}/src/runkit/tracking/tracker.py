"""The ExperimentTracker: the one object training code talks to.

The tracker writes everything to the run directory first (events.jsonl is the record of truth). Backends
other than the run directory (TensorBoard, MLflow, W&B) are fed from that log by the shipper, a separate
process, so the training thread never waits on a backend and a crash of the training process loses nothing.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runkit.errors import UserError, naming
from runkit.storage.events import EventWriter
from runkit.storage.jsonio import write_json
from runkit.storage.layout import DATASET_FILE, HISTORY_FILE, MEDIA_DIR
from runkit.storage.liveness import HEARTBEAT_SECONDS
from runkit.storage.run_dir import RunDir
from runkit.storage.run_lock import RunLock
from runkit.storage.status import Status, status_for_exception
from runkit.tracking.run_files import (
    _append_history,
    _cut_history,
    _last_line,
    _media_name,
    _plain,
    base_record,
)
from runkit.tracking.run_files import (
    _now as _now,
)
from runkit.tracking.stopping import SignalHandling, _StopWaiting, disk_full_line, say_ending
from runkit.tracking.summary import Summary

if TYPE_CHECKING:
    from runkit.distributed import Distributed

log = logging.getLogger(__name__)


# errno values of a full disk (or quota): what finish() turns into one line instead of a traceback.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullError(UserError):
    """The run's end could not be written in full: the one line says what was kept and how to settle it."""


class ExperimentTracker(SignalHandling):
    """Logs params, metrics, artifacts and status of one run to its run directory and every chosen backend.

    Use it as a context manager so the final status follows from how the block ends:

        with start_run(cfg) as tracker:
            tracker.log_metrics({"train/loss": 0.3}, step=10)
    """

    def __init__(
        self,
        run_dir: RunDir,
        record: dict[str, Any],
        *,
        monitor: str | None = None,
        mode: str = "max",
        memory_map: bool = True,
        lock: RunLock | None = None,
        summary_state: dict[str, Any] | None = None,
        start_step: int | None = None,
    ) -> None:
        """A tracker over an existing run directory whose run.json holds `record`.

        `summary_state` and `start_step` continue a resumed run's summary and step counter (from its
        checkpoint); `lock` is this session's hold on the run, handed on to the delivery process.
        """
        self.run_dir = run_dir
        self.run_id: str = record["id"]
        self.name: str = record["name"]
        self._record_lock = threading.Lock()
        self._events = EventWriter(run_dir.events_file, memory_map)
        if summary_state is None and record.get("resumed"):
            summary_state = run_dir.read_summary()
        self.summary = Summary(monitor, mode, state=summary_state)
        self._shipper: Any = None
        self.lock = lock
        self._finished = False
        self._step = start_step if start_step is not None else (self.summary.last_step or 0)
        self._log_handler: logging.Handler | None = None
        self._old_signals: dict[int, Any] = {}
        self._waiting = False  # finish() is waiting for the shipper
        self._heartbeat_stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._distributed: Distributed | None = None

    #: False for the trackers of ranks other than 0 in a multi-process run: they write nothing.
    is_writer = True

    # --- identity ----------------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.run_dir.path

    @property
    def backends(self) -> dict[str, Any]:
        """What each backend reported when it opened its run (ids, URLs)."""
        backends: dict[str, Any] = dict(self.run_dir.read().get("backends") or {})
        return backends

    # --- logging -----------------------------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (nested mappings are flattened to `a.b.c` keys) to every backend."""
        from runkit.flatten import flatten

        self._events.write("params", flatten(params))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log scalar metrics at a global step (the last step + 1 when omitted).

        This is the hot path: one packed line stored into events.jsonl's memory map, one reference kept for
        the summary, nothing else; it stays inline (no helper calls) because every Python frame counts here.
        """
        if step is None:
            step = self._step + 1
        self._step = step = int(step)
        names = tuple(metrics)
        summary = self.summary
        summary.pending[names] = self._events.write_metrics(names, metrics.values(), step)
        summary.last_step = step
        monitor = summary.monitor
        if monitor is not None and monitor in metrics:
            summary.observe(metrics[monitor], step)

    def set_tags(self, tags: Iterable[str] | Mapping[str, Any]) -> None:
        """Add tags: a list of labels, or key/value tags."""
        data = dict(tags) if isinstance(tags, Mapping) else {str(t): "" for t in tags}
        self._events.write("tags", data)

    def log_artifact(self, path: str | Path, kind: str = "file", name: str | None = None) -> Path:
        """Record a file (copied into artifacts/ unless it already lives in the run directory)."""
        src = Path(path).resolve()
        if not src.exists():
            raise FileNotFoundError(f"artifact {src} does not exist")
        if self.path.resolve() in src.parents:
            dest = src
        else:
            dest = self.run_dir.artifacts / (name or src.name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest)
        rel = dest.relative_to(self.path.resolve()).as_posix()
        self._events.write("artifact", {"path": rel, "kind": kind, "name": name or dest.name})
        return dest

    def log_checkpoint(
        self, path: str | Path, aliases: Iterable[str] = ("last",), step: int | None = None
    ) -> None:
        """Record a checkpoint file inside checkpoints/ under aliases such as `last` and `best`.

        A checkpoint marks a point a resumed run can continue from, so the summary is written with it.
        """
        rel = Path(path).resolve().relative_to(self.path.resolve()).as_posix()
        data = {"path": rel, "kind": "checkpoint", "name": Path(path).name, "aliases": list(aliases)}
        self._events.write("artifact", data, step)
        self._write_summary()

    def log_figure(self, figure: Any, name: str, step: int | None = None) -> Path:
        """Save a matplotlib figure as figures/<name>.png and send it to every backend."""
        self.run_dir.figures.mkdir(exist_ok=True)
        dest = self.run_dir.figures / f"{name}.png"
        figure.savefig(dest, dpi=100, bbox_inches="tight")
        self._events.write(
            "artifact", {"path": dest.relative_to(self.path).as_posix(), "kind": "figure", "name": name}, step
        )
        return dest

    def log_text(self, text: str, name: str) -> Path:
        """Save text as artifacts/<name> (`.txt` added when it has no suffix) and send it to every backend."""
        filename = name if Path(name).suffix else f"{name}.txt"
        dest = self.run_dir.artifacts / filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
        self._events.write(
            "artifact", {"path": dest.relative_to(self.path).as_posix(), "kind": "text", "name": filename}
        )
        return dest

    def log_image(self, image: Any, name: str, step: int | None = None) -> Path:
        """Save an image (HxW[xC] array or tensor, CxHxW tensor, PIL image, matplotlib figure) as
        media/<name>[-<step>].png and show it in every backend as an image."""
        from runkit.tracking.media import save_png

        dest = self.run_dir.path / MEDIA_DIR / _media_name(name, step, ".png")
        with naming(dest):
            width, height = save_png(image, dest)
        rel = dest.relative_to(self.path).as_posix()
        self._events.write("image", {"path": rel, "name": name, "width": width, "height": height}, step)
        return dest

    def log_table(
        self, data: Any, name: str, columns: Iterable[str] | None = None, step: int | None = None
    ) -> Path:
        """Save rows (a list of rows or of dicts, a dict of columns, a DataFrame) as media/<name>[-<step>].csv
        and show it in every backend as a table."""
        from runkit.tracking.media import save_csv, table_rows

        names, rows = table_rows(data, list(columns) if columns is not None else None)
        dest = self.run_dir.path / MEDIA_DIR / _media_name(name, step, ".csv")
        with naming(dest):
            save_csv(names, rows, dest)
        rel = dest.relative_to(self.path).as_posix()
        self._events.write("table", {"path": rel, "name": name, "columns": names, "rows": len(rows)}, step)
        return dest

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        """The run's final comparison: the parameters it is compared by and the metrics it is judged by
        (TensorBoard's HParams tab, MLflow params and metrics, W&B config and summary)."""
        from runkit.flatten import flatten

        values = {str(k): float(v) for k, v in flatten(metrics).items()}
        self._events.write("hparams", {"params": flatten(params), "metrics": values}, self._step)

    def log_dataset(self, info: Mapping[str, Any]) -> Path:
        """Record what the run trains on (runkit.repro.dataset.describe(datamodule)): dataset.json in the run
        directory, and the dataset in every backend (MLflow's dataset inputs, W&B config, TensorBoard
        text)."""
        dest = self.run_dir.path / DATASET_FILE
        write_json(dest, dict(info))
        self._events.write("dataset", {**dict(info), "path": DATASET_FILE})
        return dest

    def log_epoch(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """log_metrics for the metrics of an epoch's end, also appended as one row of history.csv (the
        per-epoch history, whole after a crash; a resume drops the rows it repeats)."""
        self.log_metrics(metrics, step)
        path = self.run_dir.path / HISTORY_FILE
        row = {"step": self._step, **{str(k): _plain(v) for k, v in metrics.items()}}
        _append_history(path, row)

    # --- session plumbing (start_run's, not the training loop's) -------------------------------------------
    def mark_resume(self, from_step: int, from_epoch: int, session: int) -> None:
        """Mark in the log where a resumed session takes over: metrics logged earlier for steps after
        `from_step` are superseded by this session's."""
        self._events.write(
            "resume", {"from_step": from_step, "from_epoch": from_epoch, "session": session}, from_step
        )
        _cut_history(self.run_dir.path / HISTORY_FILE, from_step)
        self._write_summary()

    def attach_delivery(self, shipper: Any) -> None:
        """Hand the run's delivery process (tracking.shipper.Shipper) to the tracker, which closes it."""
        self._shipper = shipper

    def attach_distributed(self, distributed: Distributed) -> None:
        """Rank 0 of a multi-process run: when the session ends other than normally, the run's status and
        traceback come from the rank that caused it (runkit.distributed.resolve_ending)."""
        self._distributed = distributed

    def update_record(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into run.json (atomically, one writer at a time within this process)."""
        with self._record_lock:
            return self.run_dir.update(**fields)

    def _write_summary(self) -> None:
        """Write summary.json (atomically): at checkpoints and at the end, never on every step."""
        write_json(self.run_dir.summary_file, self.summary.to_dict())

    # --- lifecycle ---------------------------------------------------------------------------------------
    def begin(self) -> None:
        """Start the session's side jobs: the train.log handler, SIGTERM handling and the heartbeat."""
        self._attach_log_file()
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        ):
            log.warning(
                "SIGINT is ignored in this process (started in the background, or by nohup?): Ctrl-C cannot "
                "abort this run; stop it with `kill -TERM %d` (recorded as preempted)",
                os.getpid(),
            )
        self._install_signal_handlers()
        self._heartbeat = threading.Thread(target=self._beat, name="tracker-heartbeat", daemon=True)
        self._heartbeat.start()

    def finish(self, status: Status | str = Status.COMPLETED, error: str | None = None) -> None:
        """End the run: final status in the log, run.json and every backend. Safe to call more than once."""
        if self._finished:
            return
        self._finished = True
        status = Status(status)
        self._heartbeat_stop.set()
        self._shield_ending()
        unwritten: list[str] = []  # files a full disk kept from being written

        def attempt(what: Path, write: Callable[[], Any]) -> Any:
            try:
                return write()
            except OSError as exc:
                if exc.errno not in NO_SPACE:
                    raise
                unwritten.append(str(exc.filename or what))
                return None

        try:
            # The status first (into the log's window, whose space is reserved), then the files: cutting the
            # window's unwritten rest off frees space for them on a full disk.
            attempt(
                self._events.path,
                lambda: self._events.write("status", {"status": status.value, "error": _last_line(error)}),
            )
            attempt(self._events.path, self._events.close)
            attempt(self.run_dir.summary_file, self._write_summary)
            if error:
                traceback_file = self.path / "traceback.txt"
                attempt(traceback_file, lambda: traceback_file.write_text(error, encoding="utf-8"))
            # The shipper drains the log into every backend and closes each with this status; what it reports
            # (e.g. a backend set aside after failing) goes into run.json's `backends`.
            try:
                self._waiting = True
                shipped = self._shipper.close(status.value) if self._shipper is not None else {}
            except _StopWaiting:
                log.warning(
                    "stopped waiting for the backends: the shipper (own process) sends the rest and closes "
                    "them as %s in the background; `runs sync %s --to <backend>` completes one if it stops",
                    status.value,
                    self.run_id,
                )
                shipped = {}
            finally:
                self._waiting = False
            ended = _now()
            fields: dict[str, Any] = {"status": status.value, "end_time": ended, "heartbeat": ended}
            fields["error"] = _last_line(error)
            record = attempt(self.run_dir.run_file, lambda: self.update_record(**fields))
            if record is not None:
                if shipped:
                    backends = record.get("backends") or {}
                    for name, info in shipped.items():
                        backends[name] = {**backends.get(name, {}), **info}
                    fields["backends"] = backends
                fields["duration_s"] = round(ended - record.get("start_time", ended), 3)
                attempt(self.run_dir.run_file, lambda: self.update_record(**fields))
            if unwritten:
                files = ", ".join(dict.fromkeys(unwritten))
                raise DiskFullError(
                    f"no space left on device: {files} could not be written. The run is {status.value}, and "
                    f"events.jsonl holds its status and everything it logged; free space, then "
                    f"`runs sync {self.run_id} --to <backend>` records its end in run.json"
                )
        finally:
            if self.lock is not None:
                self.lock.release()
            self._restore_signal_handlers()
            self._detach_log_file()

    def __enter__(self) -> ExperimentTracker:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        status = status_for_exception(exc)
        error = "".join(traceback.format_exception(exc_type, exc, tb)) if status is Status.FAILED else None
        if self._distributed is not None and self._distributed.enabled:
            from runkit.distributed import resolve_ending

            # torchrun sends a SIGTERM to the ranks left when one fails: it must not cut this ending short.
            self._defer_sigterm()
            status, error = resolve_ending(self.path, self._distributed.world_size, exc, status, error)
        say_ending(self.run_id, self.path, status, exc, error)
        self.finish(status, error)
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:  # one line, not a traceback
            raise DiskFullError(disk_full_line(self.run_id, self.path, exc, status, self._step)) from None

    # --- internals ---------------------------------------------------------------------------------------
    def _beat(self) -> None:
        while not self._heartbeat_stop.wait(HEARTBEAT_SECONDS):
            # A full disk must not kill training; the stale heartbeat will tell the story.
            with contextlib.suppress(OSError):
                self.update_record(heartbeat=_now())

    def _attach_log_file(self) -> None:
        handler = logging.FileHandler(self.path / "train.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        self._log_handler = handler

    def _detach_log_file(self) -> None:
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None


# The tracker of the other ranks builds on ExperimentTracker: imported once it is defined.
from runkit.tracking.peer import PeerTracker  # noqa: E402

# What this module has always offered, wherever it is defined now.
__all__ = [
    "PeerTracker",
    "DiskFullError",
    "ExperimentTracker",
    "NO_SPACE",
    "base_record",
]
