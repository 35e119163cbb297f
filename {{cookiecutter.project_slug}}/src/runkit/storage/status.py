"""Run statuses and how each is reached."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):  # noqa: UP042 - StrEnum needs Python 3.11
    RUNNING = "running"
    COMPLETED = "completed"  # the `with` block ended normally
    FAILED = "failed"  # an exception: traceback.txt holds it
    ABORTED = "aborted"  # Ctrl-C (SIGINT)
    PREEMPTED = "preempted"  # SIGTERM, e.g. a cluster scheduler taking the node back
    CRASHED = (
        "crashed"  # died without a word (SIGKILL, OOM, power): found by the shipper or a stale heartbeat
    )

    @property
    def is_final(self) -> bool:
        return self is not Status.RUNNING


class Preempted(BaseException):
    """Raised in the main thread on SIGTERM so the run ends through the normal `with` exit path."""


def status_for_exception(exc: BaseException | None) -> Status:
    if exc is None:
        return Status.COMPLETED
    if isinstance(exc, KeyboardInterrupt):
        return Status.ABORTED
    if isinstance(exc, Preempted):
        return Status.PREEMPTED
    return Status.FAILED
