"""Which events of a resumed run's log are superseded: not part of the run's one history.

A resumed session appends a `resume` event {"from_step": S} and logs the steps after S again (or never
reaches them). An event bound to a step (metrics, image, table) at offset o with step s is superseded when a
`resume` event later in the log (offset > o) has from_step < s: the interrupted session logged it after the
checkpoint the run went back to. The same rule as `catalog.history.metric_history`.

Finding the resume events costs a byte search of the log, not a decode of each line (a long run's log holds
millions of metrics lines and few, if any, resume events), so a run that was never resumed pays next to
nothing.
"""

from __future__ import annotations

import re
from bisect import bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runkit.storage.event_reader import decode
from runkit.storage.event_types import Event

# The kinds of event that belong to a step of the history (a checkpoint or a file does not: it stays).
STEP_BOUND = frozenset({"metrics", "image", "table"})
# Every writer of the log writes compact JSON (events.EventWriter), with `type` right before `step`.
_RESUME_MARK = b'"type":"resume"'
_STEP_BOUND_RE = re.compile(rb'"type":"(?:metrics|image|table)","step":(-?\d+)')
_CHUNK = 1 << 22


@dataclass(frozen=True, order=True)
class ResumePoint:
    """One `resume` event: the end offset of its line and the step its session continued from."""

    offset: int
    from_step: int


class Supersession:
    """The resume points of one log, and the question whether an event of it is superseded."""

    def __init__(self, points: Iterable[ResumePoint] = ()) -> None:
        self.points: list[ResumePoint] = []
        self._floor: list[int] = []  # _floor[i]: the lowest from_step of points[i:]
        for point in points:
            self.add(point)

    @classmethod
    def scan(cls, path: Path) -> Supersession:
        """The resume points of the log at `path` (none for a missing log)."""
        return cls(resume_points(path))

    def __bool__(self) -> bool:
        return bool(self.points)

    @property
    def last_offset(self) -> int:
        """The end offset of the last resume event known (0: none)."""
        return self.points[-1].offset if self.points else 0

    def add(self, point: ResumePoint) -> None:
        """Take one more resume point (in any order; one already known is ignored)."""
        if point in self.points:
            return
        insort(self.points, point)
        floor: list[int] = []
        low: int | None = None
        for known in reversed(self.points):  # a handful of points: recomputing is simpler than patching
            low = known.from_step if low is None else min(low, known.from_step)
            floor.append(low)
        self._floor = floor[::-1]

    def learn(self, events: Sequence[tuple[int, Event]]) -> None:
        """Take the resume events among (end offset, event) pairs read from the log."""
        for end, event in events:
            if event.get("type") == "resume":
                point = _point(end, event)
                if point is not None:
                    self.add(point)

    def step_superseded(self, offset: int, step: int) -> bool:
        """Whether a step-bound event whose line lies before `offset` (its end or any byte of it) and has
        `step` is superseded."""
        if not self.points or offset >= self.points[-1].offset:
            return False
        at = bisect_right(self.points, offset, key=lambda point: point.offset)
        return step > self._floor[at]

    def superseded(self, offset: int, event: Event) -> bool:
        """Whether the event whose line ends at `offset` is superseded (never an event of another kind)."""
        if not self.points or offset >= self.points[-1].offset or event.get("type") not in STEP_BOUND:
            return False
        step = event.get("step")
        if not isinstance(step, (int, float)) or isinstance(step, bool):
            return False
        return self.step_superseded(offset, int(step))

    def keep(self, events: list[tuple[int, Event]]) -> list[tuple[int, Event]]:
        """The events that are not superseded, in their order (`events` itself when none is)."""
        if not self.points:
            return events
        return [item for item in events if not self.superseded(*item)]

    def any_superseded(self, path: Path) -> bool:
        """Whether the log at `path` holds an event these points supersede (a byte search for the kind and
        step of each step-bound line, stopping at the last point)."""
        if not self.points:
            return False
        lines = _step_bound_lines(path, self.points[-1].offset)
        return any(self.step_superseded(position, step) for position, step in lines)


def resume_points(path: Path) -> list[ResumePoint]:
    """The resume events of the log at `path`, in order ([] for a missing log). A line counts once it is
    whole (ends with its newline), as for `read_events`."""
    points: list[ResumePoint] = []
    for base, buf in _whole_lines(path):
        at = buf.find(_RESUME_MARK)
        while at >= 0:
            start = buf.rfind(b"\n", 0, at) + 1
            end = buf.find(b"\n", at)
            event = decode(buf[start:end].lstrip(b"\0"))  # NUL bytes of damage before the line: skipped
            if event is not None and event.get("type") == "resume":  # not a value that reads like one
                point = _point(base + end + 1, event)
                if point is not None:
                    points.append(point)
            at = buf.find(_RESUME_MARK, end)
    return points


def _point(end: int, event: Event) -> ResumePoint | None:
    data = event.get("data")
    from_step = data.get("from_step") if isinstance(data, dict) else None
    if not isinstance(from_step, (int, float)) or isinstance(from_step, bool):
        return None  # a resume without a checkpoint step supersedes nothing
    return ResumePoint(end, int(from_step))


def _step_bound_lines(path: Path, end: int) -> Iterable[tuple[int, int]]:
    """(offset of a byte inside the line, step) of each step-bound line before offset `end`."""
    for base, buf in _whole_lines(path, end):
        for match in _STEP_BOUND_RE.finditer(buf):
            yield base + match.start(), int(match.group(1))


def _whole_lines(path: Path, end: int | None = None) -> Iterable[tuple[int, bytes]]:
    """The log's bytes in chunks of whole lines: (file offset of the chunk, bytes through its last
    newline), up to `end` bytes (None: the whole log)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, the generator may be left early
    except FileNotFoundError:
        return
    try:
        base, carry = 0, b""
        while end is None or base + len(carry) < end:
            want = _CHUNK if end is None else min(_CHUNK, end - base - len(carry))
            chunk = f.read(want)
            if not chunk:
                return
            buf = carry + chunk
            last = buf.rfind(b"\n")
            if last < 0:
                carry = buf
                continue
            yield base, buf[: last + 1]
            base, carry = base + last + 1, buf[last + 1 :]
    finally:
        f.close()
