"""One session at a time appends to a run: the training process and its shipper hold a lock on the log.

A training session takes an exclusive `flock` on its run's events.jsonl and hands the same open file to its
shipper, so the lock lasts until both have exited. That is what a resume (or `runs sync`) waits for: after a
SIGKILL the old shipper still drains the log, appends `crashed` and closes the backends, and a new writer
starting meanwhile would write over its lines and race it on the backend cursors.

Where `flock` does not exist (Windows) or the file system refuses it (some network file systems), sessions
go unlocked, as the liveness check alone would leave them.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from runkit.errors import UserError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_HAS_FLOCK: bool = fcntl is not None

DEFAULT_LOCK_TIMEOUT = 60.0  # seconds (tracking.lock_timeout)
_POLL_SECONDS = 0.05
_BUSY = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


class RunLock:
    """An exclusive lock on a run's events.jsonl, held until `release()` (or the holders' exit)."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd  # None: not locked (no flock here)

    @classmethod
    def acquire(cls, events_file: Path, timeout: float, run_id: str) -> RunLock:
        """Take the lock, waiting up to `timeout` seconds while another session lets go. Raises UserError (one
        line, naming the run) when it does not."""
        if not _HAS_FLOCK:
            return cls(None)
        fd = os.open(events_file, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, float(timeout))
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return cls(fd)
            except OSError as exc:
                if exc.errno not in _BUSY:  # the file system cannot lock: go on without
                    os.close(fd)
                    return cls(None)
            if time.monotonic() >= deadline:
                os.close(fd)
                raise UserError(
                    f"run {run_id} is still in use by another process (the shipper of an earlier session "
                    f"finishing its work, or a `runs sync`); waited {timeout:g}s (tracking.lock_timeout). "
                    "Try again when it has finished"
                )
            time.sleep(_POLL_SECONDS)

    @property
    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        """Let go of this process's hold (a shipper that was handed the lock keeps it until it exits)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
