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

from runkit.storage.events import EVENTS_FILE, Event, log_size
from runkit.storage.jsonio import CorruptRunFileError, read_json, write_json
from runkit.storage.run_dir import id_from_name
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
        revisit: float = 0.0,
        opener: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.name, self.backend, self.run_dir = name, backend, Path(run_dir)
        # A backend that could not open its run when the run started (its server was down): `opener` opens
        # it at the channel's next try, so retries and revisits cover the opening too. `ids` is what it
        # reported once open.
        self.opener = opener
        self.ids: dict[str, Any] = {}
        self.retries, self.backoff, self.revisit = int(retries), float(backoff), float(revisit)
        self.warn = warn or log.warning
        self.cursor = Cursor.load(self.run_dir, name)
        # A cursor whose session closed the backend cleanly is exact; one left by a killed session may be
        # behind (TensorBoard wrote more) or ahead (W&B's writer lost a buffer) of what the backend holds.
        killed = self.cursor.offset > 0 and self.cursor.closed is None
        self.cursor.closed = self.cursor.error = None  # a new attempt: open again, no error yet
        self.failures = 0
        self.next_try = 0.0  # time.monotonic() before which a failed backend is left alone
        self.error: str | None = None  # set when set aside
        self.shipped = 0
        if backend.rebuilt:
            self._start_over()
        elif killed:
            self._check_cursor()

    def _start_over(self) -> None:
        """The backend rebuilt its run at open (W&B offline, for a resumed run: see Backend.rebuilt): it
        holds nothing of the log, and is sent all of it."""
        if self.cursor.offset > 0:
            log.info(
                "%s rebuilds its run: sending the whole log again (its cursor said seq %d)",
                self.name,
                self.cursor.seq,
            )
        self.cursor.offset, self.cursor.seq = 0, 0
        # Saved now: a kill before the first batch must not leave the old cursor to the next session.
        with contextlib.suppress(OSError):
            self.cursor.save(self.run_dir, self.name)

    def _check_cursor(self) -> None:
        """Move the cursor to what the backend's own storage really holds: back, when a backend that writes
        in the background lost its last batches when it was killed with this process; forward, when its
        writer outlived the kill and wrote a batch the cursor was not saved for (sent again, its rows would
        be there twice)."""
        try:
            confirmed = self.backend.confirmed_until(self.run_dir / EVENTS_FILE, self.cursor.offset)
        except Exception:
            log.warning("could not check what %s holds; trusting its cursor", self.name, exc_info=True)
            return
        if confirmed is not None and confirmed[0] != self.cursor.offset:
            log.warning(
                "%s: holds the run's events up to seq %d (its cursor said %d); going on from there",
                self.name,
                confirmed[1],
                self.cursor.seq,
            )
            self.cursor.offset, self.cursor.seq = confirmed

    @property
    def active(self) -> bool:
        return self.error is None

    def due(self, now: float) -> bool:
        """Whether to hand it the next batch: an active channel past its retry pause, or one set aside whose
        `revisit` pause is over (a server that came back)."""
        return (self.active or self.revisit > 0) and now >= self.next_try

    def last_try(self) -> None:
        """The run is ending: a channel set aside gets one more try now (its server may be back)."""
        if not self.active:
            self.next_try = 0.0

    def feed(self, events: Sequence[tuple[int, Event]], end: tuple[int, int] | None = None) -> None:
        """Hand the events this backend has not had yet to it; on failure, retry later or set it aside.

        `events` are (end offset, event) from the lowest cursor of the channels fed together, so this one
        skips what it already has. `end`: (offset, seq) of the round's last event when the pump left some
        out (superseded): the cursor moves there, past them, once the rest is delivered."""
        offset = self.cursor.offset
        batch = [item for item in events if item[0] > offset]
        last = (batch[-1][0], int(batch[-1][1].get("seq", 0))) if batch else None
        if end is not None and end[0] > offset and (last is None or end[0] > last[0]):
            last = end
        if last is None:
            return
        if batch:
            if self.opener is not None:
                if not self.try_open():
                    return
                if self.cursor.offset != offset:  # it started over: the next round reads from the log's start
                    return
            try:
                deliver(self.backend, [event for _, event in batch])
            except Exception as exc:
                self.failed("write", exc)
                return
            self.failures = 0
            if self.error is not None:  # set aside earlier, and it works again
                self.error = self.cursor.error = None
                self.warn(f"the {self.name} backend works again; it is sent what it missed")
        self.cursor.offset, self.cursor.seq = last
        self.shipped += len(batch)
        self.cursor.save(self.run_dir, self.name)

    def try_open(self) -> bool:
        """Open a backend that could not open its run at the start; False (and a retry later) on failure."""
        assert self.opener is not None
        try:
            self.ids = self.opener()
        except Exception as exc:
            self.failed("open", exc)
            return False
        self.opener = None
        self.warn(f"the {self.name} backend opened its run late ({self.ids}); it is sent the whole run")
        if self.backend.rebuilt:
            self._start_over()
        return True

    def failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        message = f"{type(exc).__name__}: {one_line(exc)}"
        if self.error is not None:  # set aside, and a later try failed too: try again later, quietly
            log.info("%s still fails (%s); next try in %gs", self.name, message, self.revisit)
            self.next_try = time.monotonic() + self.revisit
            return
        if self.failures > self.retries:
            self.error = f"{what} failed {self.failures} times in a row; last error: {message}"
            self.cursor.error = self.error
            with contextlib.suppress(OSError):
                self.cursor.save(self.run_dir, self.name)
            later = f"it is tried again in {self.revisit:g}s, and " if self.revisit > 0 else ""
            self.warn(
                f"the {self.name} backend is set aside ({self.error}). Training goes on and the run "
                f"directory stays complete; {later}`runs sync` replays the run into {self.name} later."
            )
            self.next_try = time.monotonic() + self.revisit
        else:
            pause = self.backoff * 2 ** (self.failures - 1)
            log.warning("%s %s failed (%s); retrying in %.1fs", self.name, what, message, pause)
            self.next_try = time.monotonic() + pause

    def missing(self) -> str | None:
        """What this backend lacks of the log, as one line with the command that completes it (None: it has
        everything)."""
        if self.cursor.offset >= log_size(self.run_dir / EVENTS_FILE):
            return None
        return (
            f"it lacks the run's events after seq {self.cursor.seq}; complete it with: "
            f"runs sync {id_from_name(self.run_dir)} --to {self.name}"
        )

    def close(self, status: Status) -> None:
        """End the backend's run with `status`, also after it was set aside (nothing may be left RUNNING),
        and record the outcome in the cursor file for `runs sync` to see. A run closed without every event is
        marked incomplete in the backend."""
        if self.opener is not None and not self.try_open():
            # Its run never came to exist: nothing to close (nothing left RUNNING), `runs sync` makes it.
            self.cursor.error = self.error
            with contextlib.suppress(OSError):
                self.cursor.save(self.run_dir, self.name)
            return
        missing = self.missing()
        try:
            self.backend.mark_complete(missing)
        except Exception as exc:
            log.warning(
                "could not mark %s's run %s: %s", self.name, "incomplete" if missing else "complete", exc
            )
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
        """What run.json records under backends.<name> (error None and missing None: it has everything)."""
        return {**self.ids, "shipped_seq": self.cursor.seq, "error": self.error, "missing": self.missing()}
