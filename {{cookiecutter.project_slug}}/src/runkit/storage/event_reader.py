"""Reading events.jsonl: decode a line (packed metrics lines too), follow the log from an offset, skip and
report damage (NUL bytes inside the log, unreadable lines, lost `seq` numbers), find the last `seq`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
from binascii import Error as Base64Error
from binascii import a2b_base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from runkit.storage.event_file import _READ_CHUNK, _read_at, content_end
from runkit.storage.event_types import Event


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
    logging.getLogger("runkit.storage.events").warning(  # the log's own name
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
