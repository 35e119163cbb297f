"""The trainer's side of the shipper: start the shipper process, hand it the backends, and later close it.

    shipper = Shipper.launch(run_dir, {"mlflow": {...resolved tracker.mlflow...}}, options, on_ready=record)
    # builds and preflights each backend here (bad setting, package missing, server down: BackendError now),
    # starts the child; on_ready({"mlflow": {"run_id": ...}}) once the backends have opened their runs
    # (training does not wait for that unless options["wait_for_backends"])
    shipper.close(Status.COMPLETED)  # drain, close every backend with that status -> {name: {"error", ...}}

The child is `python -m runkit.tracking.shipper <run dir>` (a fixed module name: the kit is the same package
in every project), in its own session so a terminal Ctrl-C reaches only the trainer. Protocol, one JSON
object per line:

    parent -> child   {"backends": {...}, "options": {...}, "session_offset": N, "parent_pid": P},
                      later {"close": "<status>"}
    child -> parent   {"ready": {name: ids}} or {"error": "<one line>"}, later {"closed": {name: info}}

A pipe rather than files or signals: the end of the pipe is how the child learns that the trainer died.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import runkit
from runkit.storage.events import log_size
from runkit.storage.run_dir import RunDir
from runkit.storage.run_lock import RunLock
from runkit.storage.status import Status
from runkit.tracking.backends.base import BackendError
from runkit.tracking.delivery.opening import build_backend
from runkit.tracking.delivery.options import LOG_FILE, one_line, options_with_defaults

log = logging.getLogger(__name__)

#: The child's entry point, by module name: `python -m` finds it wherever the kit is installed.
CHILD_MODULE = "runkit.tracking.shipper"


def preflight_backends(backends: Mapping[str, Any]) -> None:
    """Build each adapter and run its cheap checks: a bad _target_ or setting, a package that is not
    installed, an MLflow server that does not answer or a damaged store, W&B online without a key all raise
    BackendError (one line) now, before a run directory exists, in milliseconds."""
    for name, spec in backends.items():
        build_backend(name, spec).preflight()


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
        preflight_backends(backends)
        env = dict(os.environ)
        # The kit's folder on the child's path, whether it is installed or only on the trainer's sys.path.
        kit_parent = str(Path(runkit.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (kit_parent, env.get("PYTHONPATH")) if p)
        # Where this session's lines start: a status event before it belongs to an earlier session.
        session_offset = log_size(run_dir.events_file)
        wait = bool(opts["wait_for_backends"])
        proc = subprocess.Popen(
            [sys.executable, "-m", CHILD_MODULE, str(run_dir.path)],
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

    def close(self, status: Status | str) -> dict[str, dict[str, Any]]:
        """Let the shipper send everything, close every backend with `status`, and report per backend
        ({"error": ...} for one that was set aside). Waits up to tracking.finish_timeout."""
        if self._closed:
            return {}
        self._closed = True
        try:
            self._send({"close": Status(status).value})
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
        report = {name: info for name, info in closed.items() if isinstance(info, dict)}
        for name, info in report.items():
            if info.get("missing"):  # the one command that completes it
                log.warning("the %s backend's run is incomplete: %s", name, info["missing"])
        return report

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
