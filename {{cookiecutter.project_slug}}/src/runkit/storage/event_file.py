"""The byte-level primitives of events.jsonl shared by its writer and its readers: where the content ends
(a writer's window reads as NUL bytes past it), positioned reads and writes, the log's size."""

from __future__ import annotations

import os
from pathlib import Path

_READ_CHUNK = 1 << 16


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
