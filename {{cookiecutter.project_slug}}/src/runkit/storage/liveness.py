"""Is a `running` run really running? A run whose process vanished without a word has crashed."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from runkit.storage.status import Status

HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def is_dead(record: dict[str, Any], now: float | None = None) -> bool:
    """True for a `running` record whose process is gone (same host) or heartbeat is stale (any host)."""
    if record.get("status") != Status.RUNNING.value:
        return False
    if record.get("host") == socket.gethostname() and record.get("pid"):
        return not process_alive(int(record["pid"]))
    return (now or time.time()) - float(record.get("heartbeat") or 0) > STALE_AFTER_SECONDS


def effective_status(record: dict[str, Any], now: float | None = None) -> str:
    """The status to show: a `running` run that is dead shows as `crashed`."""
    return Status.CRASHED.value if is_dead(record, now) else str(record.get("status", "unknown"))
