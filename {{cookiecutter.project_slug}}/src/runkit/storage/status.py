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
    SKIPPED = "skipped"  # a sweep job that never ran: its sweep was stopped first (fail-fast, bad input)

    @property
    def is_final(self) -> bool:
        return self is not Status.RUNNING


def status_of(text: object) -> Status | None:
    """The Status a recorded status string names; None for anything else (a missing or unknown value)."""
    try:
        return Status(str(text))
    except ValueError:
        return None


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
