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

import errno
import itertools
import json
import mmap
import os
import struct
import sys
import threading
import time
from binascii import b2a_base64
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from runkit.storage.event_file import (
    _recover_end,
    _write_at,
    content_end,
    log_size,
)
from runkit.storage.event_reader import (
    Damage,
    decode,
    last_seq,
    read_events,
    scan_damage,
)
from runkit.storage.event_types import (
    ArtifactData,
    DatasetData,
    Event,
    EventType,
    HParamsData,
    ImageData,
    ResumeData,
    StatusData,
    TableData,
)
from runkit.storage.layout import EVENTS_FILE

WINDOW = 1 << 19  # bytes mapped (and reserved on disk) at a time
_MADV_POPULATE_WRITE = 23  # Linux 5.14+: fault a range in, writable, in one call
_time = time.time
# Without a GIL (free-threaded builds) a map's write is no longer atomic: such builds take the locked path.
_HAS_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()

_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode
# %-formatted bytes, not an f-string, whose doubled braces would be Jinja syntax in this template.
_METRICS_HEAD = b'{"seq":%d,"type":"metrics","step":%d,"names":'
_METRICS_TAIL = b',"f64":"%s"}\n'


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


def _not_numbers(names: tuple[str, ...], values: Iterable[Any]) -> str:
    bad = []
    for name, value in zip(names, values, strict=False):
        try:
            float(value)
        except (TypeError, ValueError):
            bad.append(f"{name}={value!r}")
    return "metric values must be numbers: " + (", ".join(bad) or "one value per name")


# What this module has always offered, wherever it is defined now.
__all__ = [
    "ArtifactData",
    "Damage",
    "DatasetData",
    "EVENTS_FILE",
    "Event",
    "EventType",
    "EventWriter",
    "HParamsData",
    "ImageData",
    "ResumeData",
    "StatusData",
    "TableData",
    "WINDOW",
    "content_end",
    "decode",
    "last_seq",
    "log_size",
    "read_events",
    "scan_damage",
]
