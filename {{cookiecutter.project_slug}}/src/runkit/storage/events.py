"""events.jsonl: the append-only log that every other record (backends, summary, `runs sync`) derives from.

The writer stores each line into a shared memory map of the file: the bytes are in the kernel's page cache
as soon as the copy is done, so they survive SIGKILL of the process exactly like a `write()` would, at a
fraction of its cost (no system call per event). The file is grown a window at a time (space reserved with
`posix_fallocate`, so a full disk is an `OSError` there, never a SIGBUS later); while a writer is open, the
part of the window not written yet reads as NUL bytes, and `close()` cuts it off.

Readers therefore treat the first NUL byte as the end of the log: a line counts once it is whole, ends with
its newline, and everything before it is whole. A writer that opens a log left by a killed process drops
the NUL tail and ends a cut line with a newline, so the log goes on without holes.

Metrics lines carry their values packed: the names as JSON and the values as base64 little-endian float64
(the wall time first), because formatting ten floats as decimal text costs the training thread more than
everything else in `log_metrics` together. `read_events` turns them back into the same event as any other
line: {"seq", "time", "type": "metrics", "step", "data": {name: value}}.
"""

from __future__ import annotations

import errno
import itertools
import json
import mmap
import os
import struct
import sys
import threading
import time
from binascii import Error as Base64Error
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

EVENTS_FILE = "events.jsonl"
WINDOW = 1 << 19  # bytes mapped (and reserved on disk) at a time
_MADV_POPULATE_WRITE = 23  # Linux 5.14+: fault a range in, writable, in one call
_READ_CHUNK = 1 << 16
_time = time.time
# Without a GIL (free-threaded builds) a map's write is no longer atomic: such builds take the locked path.
_HAS_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()

_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode
# %-formatted bytes, not an f-string, whose doubled braces would be Jinja syntax in this template.
_METRICS_HEAD = b'{"seq":%d,"type":"metrics","step":%d,"names":'
_METRICS_TAIL = b',"f64":"%s"}\n'

# --- what a line holds -------------------------------------------------------------------------------------
#: The kinds of event the kit writes. Readers dispatch on this field (the shipper hands each kind to its own
#: backend method); a kind they do not know is skipped, so a newer kit's log still reads.
EventType = Literal["params", "metrics", "tags", "artifact", "status", "resume"]


class Event(TypedDict):
    """One decoded line, as `read_events` yields it (a packed metrics line reads like any other).

    A TypedDict rather than a class: the reader builds millions of these, and a plain dict from `json.loads`
    costs nothing more to type. Readers still use `.get` on `step` and `data`: a line written by hand or
    by an older kit may leave them out.
    """

    seq: int
    time: float  # wall time when it was logged (seconds since the epoch)
    type: EventType
    step: int | None  # the global step (None: not tied to a step, e.g. params and tags)
    data: dict[str, Any]  # metrics: {name: float}; params and tags: {key: value}; see below for the rest


class ArtifactData(TypedDict, total=False):
    """`data` of an `artifact` event: a file inside the run directory."""

    path: str  # relative to the run directory
    kind: str  # "checkpoint", "figure", "text", "git-diff", "file", ...
    name: str
    aliases: list[str]  # checkpoints only: "last", "best"


class StatusData(TypedDict, total=False):
    """`data` of a `status` event: how the session ended (a `storage.status.Status` value)."""

    status: str
    error: str | None  # the last line of the error, when it failed


class ResumeData(TypedDict, total=False):
    """`data` of a `resume` event: where a resumed session takes over; later metrics for steps after
    `from_step` supersede what the interrupted session logged."""

    from_step: int | None
    from_epoch: int | None
    session: int


class EventWriter:
    """Appends events to events.jsonl, numbering them with a gap-free sequence number (`seq`).

    Safe to use from several threads without a lock on the hot path: the sequence number comes from an
    `itertools.count` and each line is stored by one call of the map's `write` (C code that holds the GIL
    from its bounds check to its last byte), so lines never overlap. Lines written by different threads at
    the same moment may land out of `seq` order; readers that care sort by `seq`. A lock guards only the
    slow path that maps the next window. `memory_map=False` writes each line with one `pwrite` call under
    that lock instead (for file systems where shared maps misbehave, and Python builds without a GIL); the
    file reads the same either way.
    """

    def __init__(self, path: Path, memory_map: bool = True) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        self._lock = threading.Lock()
        self._mm: mmap.mmap | None = None
        self._base = _recover_end(self._fd)  # file offset of the mapped window (of the end, when unmapped)
        # The window's own `write`: ValueError when the line does not fit, or once the window is closed.
        self._store: Callable[[bytes], int] = _unmapped
        self._memory_map = memory_map and os.name == "posix" and _HAS_GIL
        self._next_seq = itertools.count(last_seq(self.path, self._base) + 1).__next__
        # metric names -> (Struct.pack for time + values, the line's %-template)
        self._forms: dict[tuple[str, ...], tuple[Callable[..., bytes], bytes]] = {}

    def write(self, type_: EventType, data: Any, step: int | None = None) -> int:
        """Append one event and return its sequence number."""
        seq = self._next_seq()
        text = _dumps({"seq": seq, "time": time.time(), "type": type_, "step": step, "data": data})
        line = (text + "\n").encode()
        try:
            self._store(line)
        except ValueError:
            self._append(line)
        return seq

    def write_metrics(self, names: tuple[str, ...], values: Iterable[Any], step: int) -> bytes:
        """Append one metrics event: the training loop's hot path, a handful of C calls and nothing that
        can be left out (each Python operation costs a microsecond or more once a training step has evicted
        the interpreter from the CPU caches). Returns the packed values, wall time first."""
        form = self._forms.get(names)
        if form is None:
            form = self._new_form(names)
        try:
            packed = form[0](_time(), *values)
        except struct.error:
            raise TypeError(_not_numbers(names, values)) from None
        line = form[1] % (self._next_seq(), step, b2a_base64(packed, newline=False))
        try:
            self._store(line)
        except ValueError:  # the window is full (or none is mapped yet)
            self._append(line)
        return packed

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            self._unmap()
            os.ftruncate(self._fd, self._base)  # cut the unwritten part of the window
            os.close(self._fd)
            self._fd = -1

    # --- internals ---------------------------------------------------------------------------------------
    def _new_form(self, names: tuple[str, ...]) -> tuple[Callable[..., bytes], bytes]:
        if len(self._forms) > 1000:  # a loop logging ever-new names must not grow this without bound
            self._forms.clear()
        names_json = _dumps([str(name) for name in names]).encode().replace(b"%", b"%%")
        form = (struct.Struct(f"<{len(names) + 1}d").pack, _METRICS_HEAD + names_json + _METRICS_TAIL)
        self._forms[names] = form
        return form

    def _append(self, line: bytes) -> None:
        """The slow path: write `line` at the end of the log, mapping the next window if needed."""
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"{self.path} is closed")
            if not self._memory_map:
                _write_at(self._fd, line, self._base)
                self._base += len(line)
                return
            try:
                self._store(line)  # another thread may have mapped a new window meanwhile
                return
            except ValueError:
                pass
            self._unmap()
            base = self._base - self._base % mmap.ALLOCATIONGRANULARITY
            size = max(WINDOW, self._base - base + len(line))
            size += -size % mmap.ALLOCATIONGRANULARITY
            _reserve(self._fd, base + size)
            mm = mmap.mmap(self._fd, size, offset=base)
            _prefault(mm, self._base - base)
            mm.seek(self._base - base)
            mm.write(line)
            self._mm, self._base, self._store = mm, base, mm.write

    def _unmap(self) -> None:
        """Close the window (the caller holds the lock) and set `_base` to the log's end."""
        if self._mm is None:
            return
        # Closing first makes a store racing in from another thread fail (and come here) rather than land
        # after the end we read; the end is then where the stored bytes stop, since lines hold no NUL byte.
        self._store = _unmapped
        size = len(self._mm)
        self._mm.close()
        self._mm = None
        self._base = content_end(self._fd, self._base + size, stop=self._base)


def _prefault(mm: mmap.mmap, start: int) -> None:
    """Fault the window's pages in now, in one go: a page fault taken inside a training step, with the
    kernel's code evicted from the caches, costs tens of microseconds (measured: the slowest 7% of calls)."""
    start -= start % mmap.PAGESIZE
    try:
        mm.madvise(_MADV_POPULATE_WRITE, start, len(mm) - start)
    except (OSError, ValueError, AttributeError):  # an older kernel: touch every page instead
        for page in range(start, len(mm), mmap.PAGESIZE):
            mm[page] = mm[page]


def _unmapped(line: bytes) -> int:
    raise ValueError("no window is mapped")


def _reserve(fd: int, size: int) -> None:
    """Make the file `size` bytes long with its blocks allocated, so stores into the map cannot fail."""
    current = os.fstat(fd).st_size
    if current >= size:
        return
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, current, size - current)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # a full disk raises here
                raise
    os.ftruncate(fd, size)


def _recover_end(fd: int) -> int:
    """Drop a NUL tail left by a writer that was killed, end a cut last line, and return the log's end."""
    size = os.fstat(fd).st_size
    end = content_end(fd, size)
    if end < size:
        os.ftruncate(fd, end)
    if end and _read_at(fd, 1, end - 1) != b"\n":
        _write_at(fd, b"\n", end)  # the cut line stays unreadable; the events after it do not
        end += 1
    return end


def content_end(fd: int, size: int, stop: int = 0) -> int:
    """The offset just past the last byte that is not NUL (the end of what a writer has stored), looking
    back from `size` no further than `stop`."""
    end = size
    while end > stop:
        start = max(stop, end - _READ_CHUNK)
        kept = len(_read_at(fd, end - start, start).rstrip(b"\0"))
        if kept:
            return start + kept
        end = start
    return stop


def _read_at(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows
    return os.read(fd, size)


def _write_at(fd: int, data: bytes, offset: int) -> None:
    if hasattr(os, "pwrite"):
        os.pwrite(fd, data, offset)
    else:  # Windows
        os.lseek(fd, offset, os.SEEK_SET)
        os.write(fd, data)


def log_size(path: Path) -> int:
    """The size of a log's content (the file may be longer while a writer has it mapped)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return 0
    try:
        return content_end(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _not_numbers(names: tuple[str, ...], values: Iterable[Any]) -> str:
    bad = []
    for name, value in zip(names, values, strict=False):
        try:
            float(value)
        except (TypeError, ValueError):
            bad.append(f"{name}={value!r}")
    return "metric values must be numbers: " + (", ".join(bad) or "one value per name")


def decode(raw: bytes) -> Event | None:
    """One line as an event (None for a damaged line)."""
    try:
        event = json.loads(raw)
        if not isinstance(event, dict):
            return None
        packed = event.get("f64")
        if packed is None:
            return cast(Event, event)  # what a writer wrote; consumers check the fields they use
        names = event["names"]
        values = struct.unpack(f"<{len(names) + 1}d", a2b_base64(packed))
        data = dict(zip(names, values[1:], strict=True))
        return {
            "seq": event["seq"],
            "time": values[0],
            "type": "metrics",
            "step": event["step"],
            "data": data,
        }
    except (ValueError, KeyError, TypeError, struct.error, Base64Error):
        return None


def read_events(path: Path, offset: int = 0) -> Iterator[tuple[int, Event]]:
    """Yield (end offset, event) for each complete line from `offset` on.

    The log ends at its first NUL byte or at a last line without its newline: a write still in progress
    (or cut by a crash) is not yielded, so a reader that resumes from the last offset it saw picks it up
    once it is whole. A damaged line is skipped; the rest of the log is still read.
    """
    with open(path, "rb") as f:
        f.seek(offset)
        rest = b""
        while True:
            chunk = f.read(_READ_CHUNK)
            nul = chunk.find(b"\0")
            lines = (rest + (chunk if nul < 0 else chunk[:nul])).split(b"\n")
            rest = lines.pop()
            for raw in lines:
                offset += len(raw) + 1
                event = decode(raw)
                if event is not None:
                    yield offset, event
            if not chunk or nul >= 0:
                return


def last_seq(path: Path, end: int | None = None) -> int:
    """The highest sequence number in an existing log (0 for none), read from its tail only (the highest,
    not the last: lines logged by two threads at once may be out of order)."""
    try:
        with open(path, "rb") as f:
            if end is None:
                end = content_end(f.fileno(), os.fstat(f.fileno()).st_size)
            f.seek(max(0, end - 65536))
            lines = f.read(end - f.tell()).splitlines()
    except FileNotFoundError:
        return 0
    seqs = []
    for raw in lines:
        try:
            seqs.append(int(json.loads(raw)["seq"]))
        except (ValueError, KeyError, TypeError):
            continue
    return max(seqs, default=0)
