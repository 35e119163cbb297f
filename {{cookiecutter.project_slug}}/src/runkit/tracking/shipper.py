"""The shipper: a helper process that feeds the chosen backends from the run's events.jsonl.

The training process only appends to events.jsonl (see events.py); this process tails the file and forwards
batches of events to TensorBoard, MLflow and W&B. So the training thread never waits on a backend, never
shares its GIL with one, and a SIGKILL of the training process loses nothing: the shipper drains the log to
its end, records the run as `crashed` and closes every backend's run as such.

Parent side (the training process), used by start_run():

    shipper = Shipper.launch(run_dir, {"mlflow": {...resolved tracker.mlflow...}}, options, on_ready=record)
    # builds and preflights each backend here (bad setting, package missing, server down: BackendError now),
    # starts the child; on_ready({"mlflow": {"run_id": ...}}) once the backends have opened their runs
    # (training does not wait for that unless options["wait_for_backends"])
    shipper.close("completed")     # drain, close every backend with that status -> {name: {"error", ...}}

Child side: `python -m <package>.tracking.shipper <run dir>` (started by launch, in its own session so a
terminal Ctrl-C reaches only the trainer). Protocol, one JSON object per line:

    parent -> child   {"backends": {...}, "options": {...}, "session_offset": N}, later {"close": "<status>"}
    child -> parent   {"ready": {name: ids}} or {"error": "<one line>"}, later {"closed": {name: info}}

End of stdin (or a new parent pid) without a `close` means the trainer died: drain, append a `crashed`
status event, set run.json's status, close every backend as crashed.

Each backend has a cursor file, shipper/<name>.json (byte offset and seq of the last event it received),
updated after every batch it accepted: a resumed run or `runs sync` (sync.py, the same code path) continues
where it stopped, so nothing is sent twice. A backend whose write fails is retried with a growing pause and,
after `retries` failures in a row, set aside with a warning; training goes on and `runs sync` can replay.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from runkit.storage.events import EventWriter, log_size, read_events
from runkit.storage.jsonio import CorruptRunFileError, read_json, write_json
from runkit.storage.run_dir import RunDir
from runkit.storage.run_lock import RunLock
from runkit.storage.status import Status
from runkit.tracking.backends.base import Backend, BackendError, RunInfo

log = logging.getLogger(__name__)

SHIPPER_DIR = "shipper"  # cursor files, one per backend
LOG_FILE = "shipper.log"
SWEEP_FILE = "sweep.json"

DEFAULT_OPTIONS: dict[str, Any] = {
    "poll_interval": 0.25,  # seconds between two reads of events.jsonl
    "retries": 3,  # failures in a row before a backend is set aside
    "retry_backoff": 0.5,  # first pause after a failure; doubles with each further one
    "start_timeout": 120.0,  # seconds launch() waits for every backend to open
    "finish_timeout": 300.0,  # seconds close() waits for every backend to have everything
    "batch_events": 5000,  # most events handed to a backend in one write()
    # False: training starts while the backends open (preflight checks still fail the run at once);
    # a backend that then fails to open is set aside with a warning. True: wait, and fail the run instead.
    "wait_for_backends": False,
    # The shipper runs at a lower CPU priority: where cores are scarce the training loop comes first and the
    # shipper catches up in idle moments (and at the end, which finish() waits for).
    "nice": 10,
}


# --- shared by the live shipper and `runs sync` ------------------------------------------------------------
def one_line(exc: BaseException | str, limit: int = 400) -> str:
    """An error as a single line (a user reads it in `ERROR: ...`)."""
    text = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    text = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def options_with_defaults(options: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULT_OPTIONS, **{k: v for k, v in (options or {}).items() if v is not None}}


def build_backend(name: str, spec: Mapping[str, Any]) -> Backend:
    """Build one backend from its resolved `tracker.<name>` config (`_target_` + settings)."""
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise BackendError(
            f"tracker.{name} has no _target_: expected a mapping like configs/tracker/{name}.yaml"
        )
    from hydra.utils import instantiate

    try:
        backend = instantiate(dict(spec), _convert_="all")
    except Exception as exc:  # hydra wraps both a bad _target_ and a bad setting
        cause = exc.__cause__ or exc
        if isinstance(cause, BackendError):
            raise cause from None
        raise BackendError(
            f"cannot build the {name} backend from tracker.{name}: {one_line(cause)}"
        ) from None
    if not isinstance(backend, Backend):
        raise BackendError(
            f"tracker.{name}._target_ built a {type(backend).__name__}, not a tracking Backend"
        )
    return backend


def run_info(run_dir: RunDir, name: str, record: dict[str, Any] | None = None) -> RunInfo:
    """What a backend needs to (re)open its run, from run.json, config.yaml and the sweep's sweep.json."""
    from omegaconf import OmegaConf

    record = record if record is not None else run_dir.read()
    config: dict[str, Any] = {}
    if run_dir.config_file.exists():
        loaded = OmegaConf.to_container(OmegaConf.load(run_dir.config_file), resolve=False)
        config = loaded if isinstance(loaded, dict) else {}
    sweep = record.get("sweep")
    if sweep:
        sweep = dict(sweep)
        sweep_file = Path(sweep.get("dir", "")) / SWEEP_FILE
        if sweep.get("dir") and sweep_file.is_file():
            try:
                sweep["backends"] = read_json(sweep_file).get("backends") or {}
            except (CorruptRunFileError, AttributeError) as exc:
                log.warning("ignoring the sweep's backends: %s", exc)
        sweep.setdefault("backends", {})
    previous = dict((record.get("backends") or {}).get(name) or {})
    previous.pop("error", None)
    return RunInfo(
        run_id=str(record["id"]),
        name=str(record.get("name", "run")),
        run_dir=run_dir.path,
        tags=[str(t) for t in record.get("tags") or []],
        config=config,
        previous=previous,
        resumed=bool(record.get("resumed")),
        resume_step=record.get("resume_step"),
        sweep=sweep,
    )


@dataclass
class Cursor:
    """How far one backend has received a run's events.jsonl."""

    offset: int = 0  # byte offset just past the last event it accepted
    seq: int = 0  # that event's seq
    closed: str | None = None  # the status its run was closed with (None while open)
    error: str | None = None  # why it was set aside, if it was
    updated: float = 0.0

    @staticmethod
    def path(run_dir: Path, name: str) -> Path:
        return Path(run_dir) / SHIPPER_DIR / f"{name}.json"

    @classmethod
    def load(cls, run_dir: Path, name: str) -> Cursor:
        path = cls.path(run_dir, name)
        if not path.exists():
            return cls()
        try:
            data = read_json(path)
            return cls(**{k: data[k] for k in ("offset", "seq", "closed", "error", "updated") if k in data})
        except (CorruptRunFileError, TypeError) as exc:
            # Starting over resends events; the backends drop exact repeats where they can (MLflow does).
            log.warning("%s; sending %s the whole log again", exc, name)
            return cls()

    def save(self, run_dir: Path, name: str) -> None:
        path = self.path(run_dir, name)
        path.parent.mkdir(exist_ok=True)
        self.updated = time.time()
        write_json(path, asdict(self))


class Channel:
    """One backend fed from one run's log: its cursor, its failures and whether it has been set aside."""

    def __init__(
        self,
        name: str,
        backend: Backend,
        run_dir: Path,
        retries: int = 3,
        backoff: float = 0.5,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.name, self.backend, self.run_dir = name, backend, Path(run_dir)
        self.retries, self.backoff = int(retries), float(backoff)
        self.warn = warn or log.warning
        self.cursor = Cursor.load(self.run_dir, name)
        self.cursor.closed = self.cursor.error = None  # a new attempt: open again, no error yet
        self.failures = 0
        self.next_try = 0.0
        self.error: str | None = None  # set when set aside
        self.shipped = 0

    @property
    def active(self) -> bool:
        return self.error is None

    def due(self, now: float) -> bool:
        return self.active and now >= self.next_try

    def feed(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        """Hand the events this backend has not had yet to it; on failure, retry later or set it aside."""
        batch = [item for item in events if item[0] > self.cursor.offset]
        if not batch:
            return
        try:
            self.backend.write([event for _, event in batch])
        except Exception as exc:
            self.failed("write", exc)
            return
        self.failures = 0
        self.cursor.offset, self.cursor.seq = batch[-1][0], int(batch[-1][1].get("seq", 0))
        self.shipped += len(batch)
        self.cursor.save(self.run_dir, self.name)

    def failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        message = f"{type(exc).__name__}: {one_line(exc)}"
        if self.failures > self.retries:
            self.error = f"{what} failed {self.failures} times in a row; last error: {message}"
            self.cursor.error = self.error
            with contextlib.suppress(OSError):
                self.cursor.save(self.run_dir, self.name)
            self.warn(
                f"the {self.name} backend is set aside ({self.error}). Training goes on and the run "
                f"directory stays complete; `runs sync` replays the run into {self.name} later."
            )
        else:
            pause = self.backoff * 2 ** (self.failures - 1)
            log.warning("%s %s failed (%s); retrying in %.1fs", self.name, what, message, pause)
            self.next_try = time.monotonic() + pause

    def close(self, status: str) -> None:
        try:
            self.backend.close(status)
        except Exception as exc:
            self.error = self.error or f"close failed: {type(exc).__name__}: {one_line(exc)}"
            self.warn(f"the {self.name} backend could not close its run: {self.error}")
        else:
            self.cursor.closed = status
        if self.error:
            self.cursor.error = self.error
        with contextlib.suppress(OSError):
            self.cursor.save(self.run_dir, self.name)

    def report(self) -> dict[str, Any]:
        info: dict[str, Any] = {"shipped_seq": self.cursor.seq}
        info["error"] = self.error
        return info


class Pump:
    """Reads new events from events.jsonl and feeds every channel that is due."""

    def __init__(self, events_file: Path, channels: list[Channel], batch_events: int = 5000) -> None:
        self.events_file = Path(events_file)
        self.channels = channels
        self.batch_events = int(batch_events)

    def pump(self) -> int:
        """One round: returns how many events were read (0: every due channel is at the end of the log)."""
        now = time.monotonic()
        due = [c for c in self.channels if c.due(now)]
        if not due or not self.events_file.exists():
            return 0
        start = min(c.cursor.offset for c in due)
        events = list(islice(read_events(self.events_file, start), self.batch_events))
        for channel in due:
            channel.feed(events)
        return len(events)

    def drain(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Feed until every active channel has every complete line of the log; waits out retry pauses (a
        channel that keeps failing is set aside on the way, so this ends)."""
        while not stop():
            if self.pump():
                continue
            # Nothing left for the channels that are due; wait for those pausing after a failure, if any.
            if not self.events_file.exists():
                return
            size = log_size(self.events_file)
            now = time.monotonic()
            retries = [
                c.next_try for c in self.channels if c.active and c.cursor.offset < size and c.next_try > now
            ]
            if not retries:
                return
            time.sleep(min(max(min(retries) - now, 0.01), 1.0))


def final_status_after(events_file: Path, offset: int) -> str | None:
    """The status of the last `status` event at or after `offset` (None: the session never ended)."""
    status = None
    if Path(events_file).exists():
        for _, event in read_events(events_file, offset):
            if event.get("type") == "status":
                status = (event.get("data") or {}).get("status")
    return status


def mark_crashed(run_dir: RunDir, reason: str) -> str:
    """Append a `crashed` status event and set run.json's status: the training process died without a word."""
    # Opening the log drops the unwritten tail of the dead writer's map and ends a line cut by the crash.
    writer = EventWriter(run_dir.events_file, memory_map=False)
    writer.write("status", {"status": Status.CRASHED.value, "error": reason})
    writer.close()
    settle_record(run_dir, Status.CRASHED.value, reason)
    return Status.CRASHED.value


def settle_record(run_dir: RunDir, status: str, error: str | None = None) -> None:
    """Set run.json's final status when it still says `running` (its owner died before it could)."""
    try:
        record = run_dir.read()
    except (FileNotFoundError, CorruptRunFileError) as exc:
        log.error("cannot record status %s in run.json: %s", status, exc)
        return
    if record.get("status") == Status.RUNNING.value:
        now = time.time()
        fields: dict[str, Any] = {"status": status, "end_time": now}
        if error:
            fields["error"] = error
        if record.get("start_time"):
            fields["duration_s"] = round(now - float(record["start_time"]), 3)
        run_dir.update(**fields)


# --- parent side -------------------------------------------------------------------------------------------
class Shipper:
    """The training process's handle on its shipper process."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        run_dir: RunDir,
        options: dict[str, Any],
        names: list[str],
        on_ready: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.proc = proc
        self.run_dir = run_dir
        self.options = options
        self.names = names
        self.backend_ids: dict[str, dict[str, Any]] = {}  # filled when the backends have opened their runs
        self._on_ready = on_ready
        self._replies: Queue[dict[str, Any]] = Queue()
        self._closed = False
        self._reader = threading.Thread(target=self._read_replies, name="shipper-replies", daemon=True)
        self._reader.start()

    @classmethod
    def launch(
        cls,
        run_dir: RunDir,
        backends: dict[str, dict[str, Any]],
        options: Mapping[str, Any] | None = None,
        on_ready: Callable[[dict[str, Any]], None] | None = None,
        lock: RunLock | None = None,
    ) -> Shipper:
        """Check the backends, start the shipper and (with tracking.wait_for_backends) wait until every
        backend has opened its run. Raises BackendError, one line, for what makes a backend unusable.

        `on_ready(ids)` is called (from a helper thread, unless waiting) with {name: ids} once the backends
        are open; a backend that failed to open has {"error": ...} there instead and is set aside. The shipper
        inherits `lock` (the session's run_lock.RunLock), so the run stays locked until it has finished too.
        """
        opts = options_with_defaults(options)
        # Build each adapter here too: a bad _target_ or setting, a package that is not installed, an MLflow
        # server that does not answer all fail now, before training, in a few milliseconds.
        for name, spec in backends.items():
            build_backend(name, spec).preflight()
        env = dict(os.environ)
        # The package's folder on the child's path, whether the package is installed or only on sys.path.
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        session_offset = log_size(run_dir.events_file)
        wait = bool(opts["wait_for_backends"])
        proc = subprocess.Popen(
            [sys.executable, "-m", f"{__package__}.shipper", str(run_dir.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            # Its own session: a terminal Ctrl-C (SIGINT to the foreground group) reaches the trainer only.
            start_new_session=True,
            pass_fds=(lock.fd,) if lock is not None and lock.fd is not None else (),
        )
        shipper = cls(proc, run_dir, opts, list(backends), None if wait else on_ready)
        shipper._send(
            {
                "backends": backends,
                "options": opts,
                "session_offset": session_offset,
                "parent_pid": os.getpid(),
            }
        )
        if wait:
            reply = shipper._next_reply(float(opts["start_timeout"]), "ready")
            if reply is None or "ready" not in reply:
                shipper._abandon()
                if reply is None:
                    raise BackendError(
                        f"the tracking backends ({', '.join(backends)}) did not open within "
                        f"{opts['start_timeout']:g}s (tracking.start_timeout); see {run_dir.path / LOG_FILE}"
                    )
                raise BackendError(reply.get("error") or f"the shipper failed; see {run_dir.path / LOG_FILE}")
            if on_ready is not None:
                on_ready(shipper.backend_ids)
        return shipper

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self, status: str) -> dict[str, dict[str, Any]]:
        """Let the shipper send everything, close every backend with `status`, and report per backend
        ({"error": ...} for one that was set aside). Waits up to tracking.finish_timeout."""
        if self._closed:
            return {}
        self._closed = True
        try:
            self._send({"close": str(status)})
        except OSError:
            self._abandon()
            return {
                n: {"error": f"the shipper died; `runs sync` can send the run ({self.run_dir.path})"}
                for n in self.names
            }
        timeout = float(self.options["finish_timeout"])
        reply = self._next_reply(timeout, "closed")
        if reply is None:
            log.warning(
                "the backends (%s) still receive this run after %gs (tracking.finish_timeout); the shipper "
                "(pid %d) keeps going in the background, and `runs sync` can finish the job if it stops",
                ", ".join(self.names),
                timeout,
                self.proc.pid,
            )
            self._release()
            return {}
        if "closed" not in reply:
            self._abandon()
            error = (
                reply.get("error")
                or f"the shipper stopped before closing; see {self.run_dir.path / LOG_FILE}"
            )
            return {n: {"error": error} for n in self.names}
        self._release()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        closed = reply.get("closed") or {}
        return {name: info for name, info in closed.items() if isinstance(info, dict)}

    # --- pipe plumbing -----------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message, default=str) + "\n").encode())
        self.proc.stdin.flush()

    def _read_replies(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                reply = json.loads(raw)
            except json.JSONDecodeError:
                reply = {"error": f"the shipper answered {raw[:200]!r}; see {self.run_dir.path / LOG_FILE}"}
            if not isinstance(reply, dict):
                continue
            if "ready" in reply:
                self.backend_ids = reply["ready"] or {}
                if self._on_ready is not None:
                    try:
                        self._on_ready(self.backend_ids)
                    except Exception:
                        log.exception("could not record the backends' run ids")
            self._replies.put(reply)
        self._replies.put({"exited": True})

    def _next_reply(self, timeout: float, kind: str) -> dict[str, Any] | None:
        """The child's next `kind` reply (or an error); None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                reply = self._replies.get(timeout=min(left, 1.0))
            except Empty:
                continue
            if kind in reply or "error" in reply:
                return reply
            if "exited" in reply:
                return {"error": self._exit_message()}

    def _exit_message(self) -> str:
        code = self.proc.wait()
        tail = ""
        with contextlib.suppress(OSError):
            lines = [ln for ln in (self.run_dir.path / LOG_FILE).read_text().splitlines() if ln.strip()]
            tail = lines[-1] if lines else ""
        return f"the shipper exited ({code}) before answering: {one_line(tail)}"

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()

    def _abandon(self) -> None:
        self._release()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=15)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- child side --------------------------------------------------------------------------------------------
class _Child:
    def __init__(self, run_dir: RunDir) -> None:
        self.run_dir = run_dir
        # Private copies of the protocol pipes; fds 0/1/2 then point away so that a library that reads stdin
        # or prints to stdout can never corrupt the protocol. Library chatter goes to shipper.log.
        self.commands = os.fdopen(os.dup(0), "rb")
        self.replies = os.fdopen(os.dup(1), "wb")
        self.user_err = os.dup(2)
        log_fd = os.open(run_dir.path / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null)
        os.close(log_fd)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
        self.queue: Queue[dict[str, Any] | None] = Queue()
        self.channels: list[Channel] = []
        self.open_errors: dict[str, str] = {}

    def reply(self, message: dict[str, Any]) -> None:
        try:
            self.replies.write((json.dumps(message, default=str) + "\n").encode())
            self.replies.flush()
        except OSError:  # the trainer is gone; it does not need the answer
            pass

    def warn(self, message: str) -> None:
        """A warning the user must see: shipper.log, the terminal and the run's train.log."""
        log.warning(message)
        line = f"WARNING: [tracking] {message}\n"
        with contextlib.suppress(OSError):
            os.write(self.user_err, line.encode())
        with contextlib.suppress(OSError):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            fd = os.open(self.run_dir.path / "train.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, f"{stamp} WARNING shipper: {message}\n".encode())
            os.close(fd)

    def read_commands(self) -> None:
        for raw in self.commands:
            try:
                self.queue.put(json.loads(raw))
            except json.JSONDecodeError:
                log.error("ignoring a bad command line: %r", raw[:200])
        self.queue.put(None)  # end of input: the trainer closed the pipe or died

    def open_backend(
        self, name: str, spec: Any, record: dict[str, Any], options: dict[str, Any]
    ) -> dict[str, Any]:
        backend = build_backend(name, spec)
        try:
            ids = backend.open(run_info(self.run_dir, name, record)) or {}
        except BackendError:
            raise
        except ImportError as exc:
            raise BackendError(
                f"the {name} backend needs a package that is not installed ({one_line(exc)}); "
                f"install it with `pip install -e '.[{name}]'` or choose another tracker"
            ) from exc
        except Exception as exc:
            raise BackendError(f"the {name} backend could not open its run: {one_line(exc)}") from exc
        self.channels.append(
            Channel(name, backend, self.run_dir.path, options["retries"], options["retry_backoff"], self.warn)
        )
        return ids

    def open_backends(self, specs: dict[str, Any], options: dict[str, Any], strict: bool) -> dict[str, Any]:
        """Open every backend. Strict: the first failure closes those already open and raises. Otherwise a
        backend that fails is set aside with a warning (training has started), its error in the reply."""
        record = self.run_dir.read()
        ids: dict[str, Any] = {}
        for name, spec in specs.items():
            try:
                ids[name] = self.open_backend(name, spec, record, options)
            except Exception as exc:
                text = (
                    one_line(exc)
                    if isinstance(exc, BackendError)
                    else f"{type(exc).__name__}: {one_line(exc)}"
                )
                if strict:
                    for channel in self.channels:  # those that did open: nothing may be left RUNNING
                        channel.close(Status.FAILED.value)
                    raise BackendError(text) from exc
                log.error("could not open the %s backend", name, exc_info=True)
                self.open_errors[name] = text
                ids[name] = {"error": text}
                self.warn(
                    f"{text}. The run goes on without {name}; the run directory stays complete and "
                    f"`runs sync` can replay the run into {name} later."
                )
        return ids

    def run(self) -> int:
        init = self.commands.readline()
        if not init:
            return 0
        message = json.loads(init)
        options = options_with_defaults(message.get("options"))
        if options["nice"] and hasattr(os, "nice"):
            with contextlib.suppress(OSError):
                os.nice(int(options["nice"]))  # also for the helper processes a backend starts (W&B's)
        session_offset = int(message.get("session_offset") or 0)
        parent_pid = int(message.get("parent_pid") or os.getppid())
        try:
            ids = self.open_backends(
                message.get("backends") or {}, options, bool(options["wait_for_backends"])
            )
        except Exception as exc:
            text = (
                one_line(exc) if isinstance(exc, BackendError) else f"{type(exc).__name__}: {one_line(exc)}"
            )
            log.error("could not open the backends: %s", text, exc_info=not isinstance(exc, BackendError))
            self.reply({"error": text})
            return 1
        log.info("opened %s", ", ".join(f"{n} {i}" for n, i in ids.items()) or "no backend")
        self.reply({"ready": ids})
        threading.Thread(target=self.read_commands, name="shipper-commands", daemon=True).start()

        pump = Pump(self.run_dir.events_file, self.channels, options["batch_events"])
        poll = float(options["poll_interval"])
        status: str | None = None
        while True:
            try:
                command = self.queue.get(timeout=poll)
            except Empty:
                if (
                    os.getppid() != parent_pid
                ):  # re-parented: the trainer is gone (stdin may be held elsewhere)
                    command = None
                else:
                    self.guarded(pump.pump)
                    continue
            if command is None:
                break
            if "close" in command:
                status = str(command["close"])
                break
        started = time.monotonic()
        orphaned = status is None
        self.guarded(pump.drain)
        if status is None:
            status = final_status_after(self.run_dir.events_file, session_offset)
            if status is None:
                status = mark_crashed(
                    self.run_dir, "the training process ended without a word (killed, out of memory?)"
                )
                log.warning("the training process died; the run is marked crashed")
            else:
                settle_record(self.run_dir, status)
            self.guarded(pump.drain)  # the status event itself
        for channel in self.channels:
            channel.close(status)
        log.info("closed every backend as %s (drained in %.2fs)", status, time.monotonic() - started)
        report = {c.name: c.report() for c in self.channels}
        report.update({name: {"error": error} for name, error in self.open_errors.items()})
        if orphaned:  # nobody is listening: completing the record (ids included, if it died early) is ours
            try:
                record = self.run_dir.read()
                backends = record.get("backends") or {}
                for name, info in report.items():
                    backends[name] = {**backends.get(name, {}), **(ids.get(name) or {}), **info}
                self.run_dir.update(backends=backends)
            except Exception:
                log.exception("could not record the backends in run.json")
        self.reply({"closed": report})
        return 0

    @staticmethod
    def guarded(step: Callable[[], Any]) -> None:
        """A failure outside a backend (e.g. reading the log) must not stop the shipper closing them."""
        try:
            step()
        except Exception:
            log.exception("the shipper hit an error; going on")
            time.sleep(0.5)


def child_main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m <package>.tracking.shipper <run dir>", file=sys.stderr)
        return 2
    # The trainer's Ctrl-C is not ours (own session anyway); on SIGTERM (e.g. a scheduler stopping the whole
    # job) keep going: the trainer will ask us to close, or die, and both are handled.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(
        signal.SIGTERM, lambda signum, frame: log.warning("received SIGTERM; finishing the run first")
    )
    child = _Child(RunDir(Path(argv[0])))
    try:
        return child.run()
    except Exception:
        log.exception("the shipper failed")
        child.reply({"error": f"the shipper failed; see {child.run_dir.path / LOG_FILE}"})
        return 1


if __name__ == "__main__":
    # Run the function of the imported module (not of this __main__ copy), so classes are the package's own.
    import importlib

    sys.exit(importlib.import_module(__spec__.name).child_main(sys.argv[1:]))
