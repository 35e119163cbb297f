"""events.jsonl: the append-only log that every other record (backends, summary, `runs sync`) derives from.

The writer stores each line into a shared memory map of the file: the bytes are in the kernel's page cache
as soon as the copy is done, so they survive SIGKILL of the process exactly like a `write()` would, at a
fraction of its cost (no system call per event). The file is grown a window at a time (space reserved with
`posix_fallocate`, so a full disk is an `OSError` there, never a SIGBUS later); while a writer is open, the
part of the window not written yet reads as NUL bytes, and `close()` cuts it off.

Readers therefore treat a NUL byte followed by nothing but NUL bytes as the end of the log: a line counts
once it is whole and ends with its newline. NUL bytes with content after them are damage (a disk or file
system that lost blocks), as is a line that does not decode: readers skip it, report it once (file, byte
range), and read on; `scan_damage` lists every damaged place with the `seq` numbers lost there. A writer
that opens a log left by a killed process drops the NUL tail and ends a cut line with a newline, so the log
goes on without holes.

Metrics lines carry their values packed: the names as JSON and the values as base64 little-endian float64
(the wall time first), because formatting ten floats as decimal text costs the training thread more than
everything else in `log_metrics` together. `read_events` turns them back into the same event as any other
line: {"seq", "time", "type": "metrics", "step", "data": {name: value}}.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import mmap
import os
import struct
import sys
import threading
import time
from binascii import Error as Base64Error
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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
EventType = Literal[
    "params", "metrics", "tags", "artifact", "status", "resume", "image", "table", "hparams", "dataset"
]


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


class ImageData(TypedDict, total=False):
    """`data` of an `image` event: a PNG file in the run directory (media/<name>[-<step>].png)."""

    path: str  # relative to the run directory
    name: str
    width: int
    height: int


class TableData(TypedDict, total=False):
    """`data` of a `table` event: rows saved as CSV in the run directory (media/<name>[-<step>].csv)."""

    path: str  # relative to the run directory
    name: str
    columns: list[str]
    rows: int  # how many rows the file holds


class HParamsData(TypedDict, total=False):
    """`data` of an `hparams` event: the run's final comparison, the parameters it is compared by and the
    metrics it is judged by (both flat {name: value})."""

    params: dict[str, Any]
    metrics: dict[str, float]


class DatasetData(TypedDict, total=False):
    """`data` of a `dataset` event: what the run trained on (runkit.repro.dataset.describe), also saved as
    dataset.json."""

    path: str  # dataset.json, relative to the run directory
    name: str
    source: str
    fingerprint: str  # a content hash of the tensors: two runs on different data never share it
    splits: dict[str, int]  # split -> number of samples
    classes: dict[str, dict[str, int]]  # split -> class -> count
    features: list[int]  # the shape of one sample


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


@dataclass(frozen=True)
class Damage:
    """A part of events.jsonl that cannot be read: NUL bytes inside the log (a disk or file system that lost
    blocks), an unreadable line, or `seq` numbers missing from it. `start`/`end` are byte offsets (equal for a
    gap with no bytes to show); `seqs` is the range of sequence numbers lost there, when known."""

    path: str
    kind: str  # "nul bytes", "unreadable line" or "missing events"
    start: int
    end: int
    seqs: tuple[int, int] | None = None

    def describe(self) -> str:
        where = f"bytes {self.start}-{self.end}" if self.end > self.start else f"offset {self.start}"
        lost = ""
        if self.seqs is not None:
            first, last = self.seqs
            lost = f", events seq {first}" + (f"-{last}" if last != first else "") + " lost"
        return f"{self.path}: {self.kind} at {where}{lost}"


_reported: set[tuple[str, int]] = set()


def _warn_damage(damage: Damage) -> None:
    """The default report: one warning per damaged place and process (the shipper reads a log many times)."""
    key = (damage.path, damage.start)
    if key in _reported:
        return
    _reported.add(key)
    logging.getLogger(__name__).warning(
        "damaged event log, skipped: %s (the events after it are still read; `runs show` lists the damage)",
        damage.describe(),
    )


def read_events(
    path: Path, offset: int = 0, on_damage: Callable[[Damage], None] | None = None
) -> Iterator[tuple[int, Event]]:
    """Yield (end offset, event) for each complete line from `offset` on.

    The log ends at a NUL byte followed by nothing but NUL bytes (the unwritten part of a writer's window) or
    at a last line without its newline: a write still in progress (or cut by a crash) is not yielded, so a
    reader that resumes from the last offset it saw picks it up once it is whole. Damage inside the log (NUL
    bytes with content after them, an unreadable line) is skipped and reported to `on_damage` (by default
    one warning per place); the rest of the log is still read.
    """
    report = on_damage or _warn_damage
    name = str(path)
    with open(path, "rb") as f:
        fd = f.fileno()
        base, buf = offset, b""  # buf holds the log's bytes from file offset `base` on
        while True:
            chunk = _read_at(fd, _READ_CHUNK, base + len(buf))
            if not chunk:
                return
            buf += chunk
            start = 0
            first_nul = buf.find(b"\0")  # once per chunk: most chunks have none
            while True:
                nl = buf.find(b"\n", start)
                nul = first_nul if 0 <= first_nul < (nl if nl >= 0 else len(buf)) else -1
                if nul >= 0:
                    at = base + nul
                    resume = _past_nul(fd, at)
                    if resume is None:  # nothing but NUL from here: the end of the log
                        return
                    if resume > at:  # not a race with the writer: damage, from the line's start on
                        report(Damage(name, "nul bytes", base + start, resume))
                    base, buf = (resume if resume > at else base + start), b""
                    break
                if nl < 0:
                    base, buf = base + start, buf[start:]
                    break
                raw = buf[start:nl]
                line_start, start = base + start, nl + 1
                event = decode(raw)
                if event is not None:
                    yield base + start, event
                elif raw.strip():
                    report(Damage(name, "unreadable line", line_start, base + start))


def _past_nul(fd: int, at: int) -> int | None:
    """Where reading goes on after a NUL byte at offset `at`: None when only NUL bytes follow (a writer's
    unwritten window: the end of the log), `at` when the byte has been written meanwhile (a reader that raced
    the writer reads it again), else the start of the first whole line after the NUL bytes."""
    pos = at
    while True:
        block = _read_at(fd, _READ_CHUNK, pos)
        if not block:
            return None
        kept = block.lstrip(b"\0")
        if kept:
            break
        pos += len(block)
    if _read_at(fd, 1, at) != b"\0":
        return at
    first = pos + len(block) - len(kept)
    if kept.startswith(b'{"seq"'):
        return first
    while True:  # the NUL bytes ended inside a line: its rest is lost too
        nl = kept.find(b"\n")
        if nl >= 0:
            return first + nl + 1
        first += len(kept)
        kept = _read_at(fd, _READ_CHUNK, first)
        if not kept:
            return first


def scan_damage(path: Path) -> list[Damage]:
    """Every damaged place of a log (byte ranges, with the `seq` numbers lost there) and every other gap in
    `seq`, in file order; [] for a whole log (or none). What `runs show` reports."""
    found: list[Damage] = []
    seqs: list[tuple[int, int]] = []  # (seq, end offset of its line)
    try:
        for end, event in read_events(path, 0, found.append):
            with contextlib.suppress(TypeError, ValueError):
                seqs.append((int(event["seq"]), end))
    except FileNotFoundError:
        return []
    seen = {seq for seq, _ in seqs}
    top = max(seen, default=0)
    missing = sorted(set(range(1, top + 1)) - seen)
    gaps: list[tuple[int, int]] = []
    for seq in missing:
        if gaps and gaps[-1][1] == seq - 1:
            gaps[-1] = (gaps[-1][0], seq)
        else:
            gaps.append((seq, seq))
    by_seq = dict(seqs)
    out: list[Damage] = []
    for damage in found:  # the gap that begins just after the last line before the damage is its loss
        before = max((seq for seq, end in seqs if end <= damage.start), default=0)
        gap = next((g for g in gaps if g[0] == before + 1), None)
        if gap is not None:
            gaps.remove(gap)
        out.append(Damage(damage.path, damage.kind, damage.start, damage.end, gap))
    for first, last in gaps:
        offset = by_seq.get(first - 1, 0)
        out.append(Damage(str(path), "missing events", offset, offset, (first, last)))
    return sorted(out, key=lambda d: d.start)


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
