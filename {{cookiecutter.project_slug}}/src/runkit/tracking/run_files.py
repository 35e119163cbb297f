"""The small files an ExperimentTracker keeps in the run directory besides the log: history.csv (one row an
epoch, cut back on resume), media names, the first run.json record, and the clock they share."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from runkit.storage.status import Status


def _now() -> float:
    return time.time()


def _media_name(name: str, step: int | None, suffix: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "media"
    return f"{safe}-{step}{suffix}" if step is not None else f"{safe}{suffix}"


def _plain(value: Any) -> Any:
    """A NumPy scalar or 0-d tensor as a Python number (for history.csv)."""
    return value.item() if hasattr(value, "item") and callable(value.item) else value


def _append_history(path: Path, row: dict[str, Any]) -> None:
    """One row of history.csv; a new column (a metric first logged later) rewrites the file with it."""
    import csv

    columns: list[str] = []
    rows: list[dict[str, Any]] = []
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            if not set(row) <= set(columns):
                rows = list(reader)
    if columns and set(row) <= set(columns):
        with open(path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, columns).writerow(row)
        return
    columns = list(dict.fromkeys([*columns, *row]))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows([*rows, row])


def _cut_history(path: Path, from_step: int) -> None:
    """A resumed session continues at `from_step`: rows the earlier session logged after it go."""
    import csv

    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    kept = [r for r in rows if _number(r.get("step")) <= from_step]
    if len(kept) < len(rows):
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(kept)


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("inf")


def _last_line(error: str | None) -> str | None:
    if not error:
        return None
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def base_record(run_id: str, name: str, tags: list[str]) -> dict[str, Any]:
    """The fields of run.json that every run has from its first instant."""
    now = _now()
    return {
        "id": run_id,
        "name": name,
        "tags": tags,
        "status": Status.RUNNING.value,
        "start_time": now,
        "heartbeat": now,
        "end_time": None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "argv": sys.argv,
        "backends": {},
    }
