"""The pump: reads new lines of events.jsonl and feeds every channel that is due.

One read serves every backend: the pump reads from the lowest cursor among the channels that are due, and
each channel skips what it already has. A channel pausing after a failure is left out of a round, so a slow
or broken backend never holds back the others.

A resumed run's superseded events (storage/supersede.py: what the interrupted session logged after the
checkpoint the run went back to) are handed to no backend: they are not part of the run's history, so a
backend that gets the log now, live or through `runs sync`, holds one history, each step once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

from runkit.storage.events import log_size, read_events
from runkit.storage.supersede import Supersession
from runkit.tracking.delivery.channel import Channel


class Pump:
    """Reads new events from events.jsonl and feeds every channel that is due."""

    def __init__(self, events_file: Path, channels: list[Channel], batch_events: int = 5000) -> None:
        self.events_file = Path(events_file)
        self.channels = channels
        self.batch_events = int(batch_events)
        # The log's resume points, found once (a byte search); a resume event read later is added as it comes
        # (one is only appended when a session starts, before its shipper does).
        self.supersession = Supersession.scan(self.events_file)

    def pump(self, limit: int | None = None) -> int:
        """One round of at most `limit` events (default: batch_events): returns how many were read (0: every
        due channel is at the end of the log)."""
        now = time.monotonic()
        due = [c for c in self.channels if c.due(now)]
        if not due or not self.events_file.exists():
            return 0
        start = min(c.cursor.offset for c in due)
        events = list(
            islice(read_events(self.events_file, start), min(limit or self.batch_events, self.batch_events))
        )
        self.supersession.learn(events)
        kept = self.supersession.keep(events)
        # The cursors move past superseded events too: to the round's last event, kept or not.
        end = (events[-1][0], int(events[-1][1].get("seq") or 0)) if len(kept) < len(events) else None
        for channel in due:
            channel.feed(kept, end)
        return len(events)

    def drain(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Feed until every active channel has every complete line of the log; waits out retry pauses (a
        channel that keeps failing is set aside on the way, so this ends)."""
        while not stop():
            if self.pump():
                continue
            # Nothing left for the channels that are due; wait for those pausing after a failure, if any.
            if not self.events_file.exists():
                return
            size = log_size(self.events_file)
            now = time.monotonic()
            retries = [
                c.next_try for c in self.channels if c.active and c.cursor.offset < size and c.next_try > now
            ]
            if not retries:
                return
            time.sleep(min(max(min(retries) - now, 0.01), 1.0))
