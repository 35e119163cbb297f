"""The end of a session: once every backend has the whole log, each closes its run at the same time.

The last events go to the backends one after another, as during the run (one read of the log serves them
all, and that work is all Python: run side by side, threads would only take turns at the GIL, and slower).
What follows waits on something other than this process, so each backend does it in a thread of its own
while the others do the same: the last system sample (MLflow commits it to its store), marking the run
complete, and closing its run (MLflow logs the run's files and commits the end, TensorBoard writes its file,
W&B waits for its helper process to write everything). The trainer, which is waiting, waits for the slowest
backend instead of for all of them one after another.

Per backend nothing changes: one thread at a time calls it, and its cursor file records how it ended.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from runkit.storage.status import Status
from runkit.tracking.delivery.channel import Channel
from runkit.tracking.delivery.options import one_line

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A system sample: (metrics, wall time).
Sample = tuple[dict[str, float], float]


def guarded(step: Callable[[], Any]) -> Any:
    """A failure outside a backend (e.g. reading the log) must not stop the shipper closing them.
    Returns what `step` returns (None after a failure)."""
    try:
        return step()
    except Exception:
        log.exception("the shipper hit an error; going on")
        time.sleep(0.5)
        return None


def send_system(channel: Channel, metrics: dict[str, float], wall: float) -> None:
    """One system sample to one backend still active (a failure there is only logged)."""
    if not channel.active:
        return
    try:
        channel.backend.log_system(metrics, wall)
        channel.backend.flush()
    except Exception as exc:
        channel.backend.discard()
        log.warning("%s did not take the system metrics: %s", channel.name, one_line(exc))


def close_each(channels: Sequence[Channel], status: Status, sample: Sample | None) -> None:
    """Every backend, all at once: the last system sample, then its run closed with `status` (also a backend
    set aside: nothing may be left RUNNING)."""

    def end(channel: Channel) -> None:
        if sample is not None:
            send_system(channel, *sample)
        channel.close(status)

    each_at_once([(channel.name, channel) for channel in channels], end, "end")


def each_at_once(items: Sequence[tuple[str, T]], step: Callable[[T], None], what: str) -> None:
    """Run `step` for each (backend name, item), each in a thread of its own named `<what>-<name>`, and wait
    for them all (one: here). Used to open the backends and to end them."""

    def run(name: str, item: T) -> None:
        try:
            step(item)
        except Exception:  # a Channel handles its backend's failures: this one is the shipper's own
            log.exception("%s the %s backend failed", what, name)

    if len(items) == 1:
        run(*items[0])
        return
    threads = [
        threading.Thread(target=run, args=(name, item), name=f"{what}-{name}", daemon=True)
        for name, item in items
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
