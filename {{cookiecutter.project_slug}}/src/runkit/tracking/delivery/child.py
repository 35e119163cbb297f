"""The shipper process: opens the backends, feeds them from events.jsonl while the run lasts, and ends them.

Started by `launch.Shipper.launch` as `python -m runkit.tracking.shipper <run dir>`. The training process only
appends to events.jsonl; this process tails it and forwards batches to the backends, so the training thread
never waits on a backend, never shares its GIL with one, and a SIGKILL of the trainer loses nothing.

End of stdin (or a new parent pid: re-parented) without a `close` means the trainer died: drain the log,
take the session's final status from it or append `crashed`, settle run.json, and close every backend with
that status, so nothing is left RUNNING anywhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from runkit.storage.run_dir import RunDir
from runkit.storage.status import Status
from runkit.tracking.backends.base import BackendError
from runkit.tracking.delivery.channel import Channel
from runkit.tracking.delivery.closing import Sample, close_each, each_at_once, guarded, send_system
from runkit.tracking.delivery.ending import as_status, final_status_after, mark_crashed, settle_record
from runkit.tracking.delivery.opening import build_backend, run_info
from runkit.tracking.delivery.options import LOG_FILE, error_line, one_line, options_with_defaults
from runkit.tracking.delivery.pump import Pump
from runkit.tracking.delivery.system_metrics import SystemSampler

log = logging.getLogger(__name__)

#: Most events handed to the backends in one round while the run lasts: a round of the slowest backend (W&B
#: about 0.2 ms an event) stays well under a second, so a `close` never waits long for the one in progress.
ROUND_EVENTS = 1000


class ShipperProcess:
    """The shipper's state: the protocol pipes, the commands from the trainer, and one Channel per backend
    that opened (`open_errors` for those that did not)."""

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
        self.sampler: SystemSampler | None = None

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
        self, name: str, spec: Any, record: dict[str, Any], options: dict[str, Any], late: bool = False
    ) -> tuple[dict[str, Any], Channel]:
        """Open one backend's run: its ids and the Channel that feeds it.

        `late`: a backend that is built but cannot open its run now (a server down) still gets a channel,
        set aside, that opens the run at its next revisit (`tracking.revisit`): the backend catches up."""
        backend = build_backend(name, spec)
        revisit = float(options.get("revisit") or 0)

        def channel(opener: Callable[[], dict[str, Any]] | None = None) -> Channel:
            return Channel(
                name,
                backend,
                self.run_dir.path,
                options["retries"],
                options["retry_backoff"],
                self.warn,
                revisit,
                opener,
            )

        try:
            ids = backend.open(run_info(self.run_dir, name, record)) or {}
        except ImportError as exc:
            raise BackendError(
                f"the {name} backend needs a package that is not installed ({one_line(exc)}); "
                f"install it with `pip install -e '.[{name}]'` or choose another tracker"
            ) from exc
        except Exception as exc:
            if isinstance(exc, BackendError):
                text = error_line(exc)
            else:
                text = f"the {name} backend could not open its run: {one_line(exc)}"
            if not late or revisit <= 0:
                raise BackendError(text) from exc
            pending = channel(lambda: backend.open(run_info(self.run_dir, name, self.run_dir.read())) or {})
            pending.error = pending.cursor.error = text
            pending.next_try = time.monotonic() + revisit
            log.error("could not open the %s backend; it is tried again in %gs", name, revisit, exc_info=exc)
            self.warn(
                f"{text}. The run goes on; {name} is tried again every {revisit:g}s and at the end, and "
                f"`runs sync` can replay the run into {name} later."
            )
            return {"error": text}, pending
        return ids, channel()

    def open_backends(self, specs: dict[str, Any], options: dict[str, Any], strict: bool) -> dict[str, Any]:
        """Open every backend, several at once (each in a thread: one imports its library while another
        waits for its helper process or its store), their channels in the configured order. Strict: a
        failure closes those that did open and raises. Otherwise a backend that fails is set aside with a
        warning (training has started), its error in the reply."""
        record = self.run_dir.read()
        outcomes: dict[str, tuple[dict[str, Any], Channel] | BaseException] = {}

        def open_one(item: tuple[str, Any]) -> None:
            name, spec = item
            try:
                outcomes[name] = self.open_backend(name, spec, record, options, late=not strict)
            except Exception as exc:
                outcomes[name] = exc

        each_at_once([(name, (name, spec)) for name, spec in specs.items()], open_one, "open")
        ids: dict[str, Any] = {}
        for name in specs:
            outcome = outcomes.get(name)
            if isinstance(outcome, tuple):
                ids[name] = outcome[0]
                self.channels.append(outcome[1])
        for name in specs:
            exc = outcomes.get(name) or RuntimeError(f"opening the {name} backend was interrupted")
            if isinstance(exc, BaseException):
                text = error_line(exc)
                if strict:
                    for channel in self.channels:  # those that did open: nothing may be left RUNNING
                        channel.close(Status.FAILED)
                    raise BackendError(text) from exc
                log.error("could not open the %s backend", name, exc_info=exc)
                self.open_errors[name] = text
                ids[name] = {"error": text}
                self.warn(
                    f"{text}. The run goes on without {name}; the run directory stays complete and "
                    f"`runs sync` can replay the run into {name} later."
                )
        return ids

    def run(self) -> int:
        """The whole life of the shipper: handshake, follow the log, end every backend. Returns the exit
        code (1: the backends could not be opened, and the trainer has been told why)."""
        init = self.commands.readline()
        if not init:
            return 0
        message = json.loads(init)
        options = options_with_defaults(message.get("options"))
        # The run's part (opening the backends, following the log) runs in a thread at a lower CPU priority,
        # and so do the helper processes a backend starts (W&B's); the end (the last events, closing every
        # backend) runs here at this process's own: the trainer is waiting for it then.
        outcome: list[Any] = []

        def during_run() -> None:
            lower_priority(int(options["nice"] or 0))
            try:
                outcome.append(self.during_run(message, options))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=during_run, name="shipper-delivery")
        thread.start()
        thread.join()
        result = outcome[0] if outcome else RuntimeError("the delivery thread ended without a result")
        if isinstance(result, BaseException):
            raise result
        if isinstance(result, int):
            return result
        pump, status, ids = result
        report = self.finish(pump, status, int(message.get("session_offset") or 0))
        if status is None:  # the trainer died: recording the backends (ids too, if it died early) is ours
            self.record_backends(report, ids)
        self.reply({"closed": report})
        self.release()
        return 0

    def during_run(self, message: dict[str, Any], options: dict[str, Any]) -> Any:
        """Open the backends and feed them while the trainer runs: (pump, status, ids), or the exit code 1
        when the backends could not be opened (the trainer has been told why)."""
        parent_pid = int(message.get("parent_pid") or os.getppid())
        try:
            ids = self.open_backends(
                message.get("backends") or {}, options, bool(options["wait_for_backends"])
            )
        except Exception as exc:
            text = error_line(exc)
            log.error("could not open the backends: %s", text, exc_info=not isinstance(exc, BackendError))
            self.reply({"error": text})
            return 1
        log.info("opened %s", ", ".join(f"{n} {i}" for n, i in ids.items()) or "no backend")
        self.reply({"ready": ids})
        threading.Thread(target=self.read_commands, name="shipper-commands", daemon=True).start()

        pump = Pump(self.run_dir.events_file, self.channels, options["batch_events"])
        self.sampler = self.system_sampler(float(options["system_metrics_interval"] or 0))
        status = self.follow(pump, float(options["poll_interval"]), parent_pid)
        return pump, status, ids

    def follow(self, pump: Pump, poll: float, parent_pid: int) -> Status | None:
        """Feed the backends while the trainer runs; returns the status it asked to close with, or None
        when it died (end of the pipe, or this process was re-parented: stdin may be held elsewhere).

        Rounds of at most ROUND_EVENTS events, one after another while the log is ahead (no pause), so the
        backends keep pace with the run and a `close` waits for one short round at most."""
        behind = False
        while True:
            try:
                command = self.queue.get_nowait() if behind else self.queue.get(timeout=poll)
            except Empty:
                if os.getppid() != parent_pid:
                    return None
                read = self.guarded(lambda: pump.pump(ROUND_EVENTS))
                behind = isinstance(read, int) and read >= ROUND_EVENTS
                if self.sampler is not None and self.sampler.due():
                    self.guarded(self.sample_system)
                continue
            if command is None:
                return None
            if "close" in command:
                return as_status(command["close"])

    def finish(self, pump: Pump, status: Status | None, session_offset: int) -> dict[str, dict[str, Any]]:
        """Send the rest of the log, then close every backend, each in a thread of its own (closing.py);
        without a status from the trainer, the log's own (or `crashed`) is the session's, and run.json is
        settled with it. Returns what each backend reports."""
        started = time.monotonic()
        for channel in self.channels:  # a backend set aside may work again (its server is back)
            channel.last_try()
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
        # A last system sample (the trainer waits for us): a short run has one too. Taken once, here; each
        # backend gets it in its own thread before closing its run.
        sample = self.guarded(self.take_sample) if self.sampler is not None else None
        if self.sampler is not None:
            self.sampler.close()
        close_each(self.channels, status, sample)
        log.info("closed every backend as %s (drained in %.2fs)", status.value, time.monotonic() - started)
        report = {c.name: c.report() for c in self.channels}
        report.update({name: {"error": error} for name, error in self.open_errors.items()})
        return report

    def record_backends(self, report: dict[str, dict[str, Any]], ids: dict[str, Any]) -> None:
        """Merge the backends' ids and outcome into run.json (the trainer does this when it is alive)."""
        try:
            record = self.run_dir.read()
            backends = record.get("backends") or {}
            for name, info in report.items():
                backends[name] = {**backends.get(name, {}), **(ids.get(name) or {}), **info}
            self.run_dir.update(backends=backends)
        except Exception:
            log.exception("could not record the backends in run.json")

    def system_sampler(self, interval: float) -> SystemSampler | None:
        """The sampler of the trainer's CPU, memory and GPU (None: off, or the trainer is elsewhere)."""
        if interval <= 0:
            return None
        record = self.run_dir.read()
        if record.get("host") not in (None, socket.gethostname()) or not record.get("pid"):
            return None
        sampler = SystemSampler(int(record["pid"]), interval, self.run_dir.path)
        return sampler if sampler.enabled else None

    def take_sample(self) -> Sample | None:
        """One sample of the trainer, recorded in system.jsonl (None: no sample, the trainer is gone)."""
        assert self.sampler is not None
        metrics = self.sampler.sample()
        if not metrics:
            return None
        wall = time.time()
        self.sampler.record(metrics, wall)
        return metrics, wall

    def sample_system(self) -> None:
        """One sample: system.jsonl, then every backend still active (a failure there is only logged)."""
        sample = self.take_sample()
        if sample is not None:
            for channel in self.channels:
                send_system(channel, *sample)

    def release(self) -> None:
        """After the last reply: let the backends' libraries end their helper processes (W&B's wandb-core),
        so that this process exits at once and its CPU figure includes them."""
        for channel in self.channels:
            with contextlib.suppress(Exception):
                channel.backend.release()
        usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        log.info("shipper cpu %.2fs (with its helper processes)", sum(u.ru_utime + u.ru_stime for u in usage))

    guarded = staticmethod(guarded)  # delivery/closing.py


def lower_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority by `nice` (Linux: per thread, inherited by the threads and
    processes it starts; elsewhere the whole process's, as os.nice does)."""
    if nice <= 0:
        return
    with contextlib.suppress(OSError, AttributeError):
        if sys.platform.startswith("linux"):
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        else:
            os.nice(nice)


def child_main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m runkit.tracking.shipper <run dir>", file=sys.stderr)
        return 2
    # The trainer's Ctrl-C is not ours (own session anyway); on SIGTERM (e.g. a scheduler stopping the whole
    # job) keep going: the trainer will ask us to close, or die, and both are handled.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(
        signal.SIGTERM, lambda signum, frame: log.warning("received SIGTERM; finishing the run first")
    )
    child = ShipperProcess(RunDir(Path(argv[0])))
    try:
        code = child.run()
    except Exception:
        log.exception("the shipper failed")
        child.reply({"error": f"the shipper failed; see {child.run_dir.path / LOG_FILE}"})
        return 1
    # Every backend is closed and its library has let go of its helpers: nothing is left to write, and the
    # interpreter's own teardown (the libraries' exit hooks: MLflow's telemetry, ...) would take a second.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, child.replies):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
