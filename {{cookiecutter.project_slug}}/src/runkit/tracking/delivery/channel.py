"""One backend fed from one run's log: its cursor file, its failures, and whether it has been set aside.

The cursor (shipper/<name>.json: byte offset and seq of the last event the backend accepted) is saved after
every batch it took, so a resumed run or `runs sync` continues where it stopped and nothing is sent twice.
A batch that fails is handed again after a growing pause; after `retries` failures in a row the backend is
set aside with a warning the user sees, and training goes on (`runs sync` can replay the run later).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runkit.storage.events import Event
from runkit.storage.jsonio import CorruptRunFileError, read_json, write_json
from runkit.storage.status import Status
from runkit.tracking.backends.base import Backend
from runkit.tracking.delivery.dispatch import deliver
from runkit.tracking.delivery.options import SHIPPER_DIR, one_line

log = logging.getLogger(__name__)


@dataclass
class Cursor:
    """How far one backend has received a run's events.jsonl."""

    offset: int = 0  # byte offset just past the last event it accepted
    seq: int = 0  # that event's seq
    closed: str | None = None  # the status (a Status value) its run was closed with; None while open
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
    """One backend, its cursor and its failures, fed batches by a Pump (the same for the live shipper and
    `runs sync`)."""

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
        self.next_try = 0.0  # time.monotonic() before which a failed backend is left alone
        self.error: str | None = None  # set when set aside
        self.shipped = 0

    @property
    def active(self) -> bool:
        return self.error is None

    def due(self, now: float) -> bool:
        return self.active and now >= self.next_try

    def feed(self, events: Sequence[tuple[int, Event]]) -> None:
        """Hand the events this backend has not had yet to it; on failure, retry later or set it aside.

        `events` are (end offset, event) from the lowest cursor of the channels fed together, so this one
        skips what it already has."""
        offset = self.cursor.offset
        batch = [item for item in events if item[0] > offset]
        if not batch:
            return
        try:
            deliver(self.backend, [event for _, event in batch])
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

    def close(self, status: Status) -> None:
        """End the backend's run with `status`, also after it was set aside (nothing may be left RUNNING),
        and record the outcome in the cursor file for `runs sync` to see."""
        try:
            self.backend.close(status)
        except Exception as exc:
            self.error = self.error or f"close failed: {type(exc).__name__}: {one_line(exc)}"
            self.warn(f"the {self.name} backend could not close its run: {self.error}")
        else:
            self.cursor.closed = status.value
        if self.error:
            self.cursor.error = self.error
        with contextlib.suppress(OSError):
            self.cursor.save(self.run_dir, self.name)

    def report(self) -> dict[str, Any]:
        """What run.json records under backends.<name> (error None: it has everything)."""
        return {"shipped_seq": self.cursor.seq, "error": self.error}
