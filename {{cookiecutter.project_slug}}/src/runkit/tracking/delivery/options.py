"""The delivery's settings (`tracking.*` in the config), file names and the one-line error format.

Shared by the trainer's side (launch), the shipper process (child) and `runs sync`, which all need the same
defaults: sync replays a run with the retries a live shipper would have used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runkit.tracking.backends.base import BackendError

SHIPPER_DIR = "shipper"  # cursor files, one per backend
LOG_FILE = "shipper.log"  # the shipper's own log (and whatever a backend's library prints), in the run dir
SWEEP_FILE = "sweep.json"

DEFAULT_OPTIONS: dict[str, Any] = {
    "poll_interval": 0.25,  # seconds between two reads of events.jsonl
    "retries": 3,  # failures in a row before a backend is set aside
    "retry_backoff": 0.5,  # first pause after a failure; doubles with each further one
    "start_timeout": 120.0,  # seconds launch() waits for every backend to open
    "finish_timeout": 300.0,  # seconds close() waits for every backend to have everything
    "batch_events": 5000,
    # Seconds after which a backend that was set aside is tried again (a server back after an outage gets
    # what it missed while the run goes on); 0: never, `runs sync` replays it later.
    "revisit": 30.0,  # most events handed to a backend in one batch (one flush)
    # False: training starts while the backends open (preflight checks still fail the run at once);
    # a backend that then fails to open is set aside with a warning. True: wait, and fail the run instead.
    "wait_for_backends": False,
    # The shipper runs at a lower CPU priority: where cores are scarce the training loop comes first and the
    # shipper catches up in idle moments (and at the end, which finish() waits for).
    "nice": 10,
    # Seconds between two samples of the trainer's CPU, memory and GPU (delivery/system_metrics.py); 0: off.
    "system_metrics_interval": 10.0,
}


def options_with_defaults(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The user's `tracking.*` over the defaults; a setting left null in the config keeps its default."""
    return {**DEFAULT_OPTIONS, **{k: v for k, v in (options or {}).items() if v is not None}}


def one_line(exc: BaseException | str, limit: int = 400) -> str:
    """An error as a single line: the user reads it in `ERROR: ...`, a warning or run.json, where a library's
    multi-line message (a traceback, an HTML error page) would bury the point."""
    text = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    text = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_line(exc: BaseException) -> str:
    """One line for a failure: a BackendError's message is already written for the user; anything else is
    unexpected, so its type leads (a bare `KeyError: 'x'` says little without it)."""
    return one_line(exc) if isinstance(exc, BackendError) else f"{type(exc).__name__}: {one_line(exc)}"
