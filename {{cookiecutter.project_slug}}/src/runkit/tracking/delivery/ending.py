"""How a session ended, when nobody said so: the log's last status, or `crashed` recorded on its behalf.

A trainer that is SIGKILLed (or runs out of memory) cannot write its final status. Whoever finds it dead
(its shipper, or `runs sync` later) settles the run: the status event the trainer may still have written
wins; otherwise a `crashed` event is appended and run.json says so, so nothing stays `running` for ever.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from runkit.storage.events import EventWriter, read_events
from runkit.storage.jsonio import CorruptRunFileError
from runkit.storage.run_dir import RunDir
from runkit.storage.status import Status

log = logging.getLogger(__name__)


def as_status(value: object) -> Status:
    """A status read from a file or the pipe; one this kit does not know counts as `failed` (what every
    backend mapped an unknown status to), so a backend's run is still ended."""
    try:
        return Status(value)
    except ValueError:
        log.warning("unknown run status %r; treating it as %s", value, Status.FAILED.value)
        return Status.FAILED


def final_status_after(events_file: Path, offset: int) -> Status | None:
    """The status of the last `status` event at or after `offset` (None: the session never ended)."""
    status = None
    if Path(events_file).exists():
        for _, event in read_events(events_file, offset):
            if event.get("type") == "status":
                status = (event.get("data") or {}).get("status")
    return None if status is None else as_status(status)


def mark_crashed(run_dir: RunDir, reason: str) -> Status:
    """Append a `crashed` status event and set run.json's status: the training process died without a word."""
    # Opening the log drops the unwritten tail of the dead writer's map and ends a line cut by the crash.
    writer = EventWriter(run_dir.events_file, memory_map=False)
    writer.write("status", {"status": Status.CRASHED.value, "error": reason})
    writer.close()
    settle_record(run_dir, Status.CRASHED, reason)
    return Status.CRASHED


def settle_record(run_dir: RunDir, status: Status, error: str | None = None) -> None:
    """Set run.json's final status when it still says `running` (its owner died before it could)."""
    try:
        record = run_dir.read()
    except (FileNotFoundError, CorruptRunFileError) as exc:
        log.error("cannot record status %s in run.json: %s", status.value, exc)
        return
    if record.get("status") == Status.RUNNING.value:
        now = time.time()
        fields: dict[str, Any] = {"status": status.value, "end_time": now}
        if error:
            fields["error"] = error
        if record.get("start_time"):
            fields["duration_s"] = round(now - float(record["start_time"]), 3)
        run_dir.update(**fields)
