"""events.jsonl: the append-only log that every other record (backends, summary, `runs sync`) derives from.

Each event is one JSON line written with a single `os.write` on an O_APPEND descriptor: the kernel has it as
soon as the call returns, so it survives SIGKILL of the process, and lines never interleave or tear.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"

_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode
# The start of a metrics line: %-format, not an f-string, whose doubled braces would be Jinja syntax here.
_METRICS_HEAD = '{"seq":%d,"time":%r,"type":"metrics","step":%d,"data":{'


class EventWriter:
    """Appends events to events.jsonl, numbering them with a gap-free sequence number (`seq`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.seq = last_seq(self.path)
        # metric names -> the %-template of their line (a training loop logs a few distinct sets of names)
        self._templates: dict[tuple[str, ...], str] = {}

    def write(self, type_: str, data: Any, step: int | None = None) -> int:
        """Append one event and return its sequence number. This is the tracking hot path: keep it lean."""
        self.seq += 1
        line = _dumps({"seq": self.seq, "time": time.time(), "type": type_, "step": step, "data": data})
        os.write(self._fd, (line + "\n").encode())
        return self.seq

    def write_metrics(self, names: tuple[str, ...], values: tuple[float, ...], step: int) -> int:
        """`write("metrics", dict(zip(names, values)), step)` for floats, about twice as fast: one cached
        %-template per set of names (the keys JSON-encoded once), filled in a single C call. The line reads
        back exactly like the generic one; NaN/inf takes the generic path (which writes NaN/Infinity)."""
        total = sum(values)
        if total - total != 0.0 or type(step) is not int:  # a NaN or an infinity somewhere (or an odd step)
            return self.write("metrics", dict(zip(names, values, strict=True)), step)
        template = self._templates.get(names)
        if template is None:
            if len(self._templates) > 1000:  # a loop logging ever-new names must not grow this without bound
                self._templates.clear()
            fields = ",".join(_dumps(str(name)).replace("%", "%%") + ":%r" for name in names)
            template = self._templates[names] = _METRICS_HEAD + fields + "}}\n"
        self.seq += 1
        os.write(self._fd, (template % (self.seq, time.time(), step, *values)).encode())
        return self.seq

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_events(path: Path, offset: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (end offset, event) for each complete line from `offset` on.

    A last line without its newline is a write still in progress (or cut by a crash): it is not yielded, so a
    reader that resumes from the last offset it saw picks it up once it is whole.
    """
    with open(path, "rb") as f:
        f.seek(offset)
        for raw in f:
            if not raw.endswith(b"\n"):
                return
            offset += len(raw)
            try:
                yield offset, json.loads(raw)
            except json.JSONDecodeError:
                # A damaged line must not stop the rest of the log from being read.
                continue


def last_seq(path: Path) -> int:
    """The highest sequence number in an existing log (0 for none), read from its tail only."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return 0
    with open(path, "rb") as f:
        f.seek(max(0, size - 65536))
        lines = f.read().splitlines()
    for raw in reversed(lines):
        try:
            return int(json.loads(raw)["seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0
