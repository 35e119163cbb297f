"""Reading run directories into `RunEntry` rows: fast (run.json and summary.json only), never raising.

Listing reads only run.json and summary.json of each run (no YAML, no events): a thousand runs list in well
under a second. A damaged run directory becomes a `corrupt` entry with the reason, never an exception.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runkit.catalog.entry import RunEntry
from runkit.errors import UserError
from runkit.storage.jsonio import CorruptRunFileError, read_json
from runkit.storage.layout import CONFIG_FILE, EVENTS_FILE, RUN_FILE, SUMMARY_FILE, SWEEPS_DIR
from runkit.storage.lookup import find_run

Warn = Callable[[str], None]


def read_run_entry(path: Path, sweep_dir: Path | None = None, warn: Warn | None = None) -> RunEntry:
    """Read one run directory; never raises for damaged files (the entry says what is wrong)."""
    entry = RunEntry(path=path, sweep_dir=sweep_dir)
    run_file = path / RUN_FILE
    try:
        record = read_json(run_file)
        if not isinstance(record, dict) or "id" not in record:
            raise CorruptRunFileError(f"{run_file} is not a run record (no 'id')")
        entry.record = record
    except FileNotFoundError:
        entry.problem = f"{run_file} is missing (a half-written run directory)"
    except CorruptRunFileError as exc:
        entry.problem = str(exc)
    except (OSError, UnicodeDecodeError) as exc:
        entry.problem = f"cannot read {run_file}: {exc}"
    if entry.problem and warn:
        warn(entry.problem)
    if entry.problem is None:
        summary_file = path / SUMMARY_FILE
        try:
            summary = read_json(summary_file)
            if not isinstance(summary, dict):
                raise CorruptRunFileError(f"{summary_file} is not a summary (not a JSON object)")
            entry.summary = summary
        except FileNotFoundError:
            pass
        except (CorruptRunFileError, OSError, UnicodeDecodeError) as exc:
            entry.summary_problem = str(exc)
            if warn:
                warn(entry.summary_problem)
    return entry


def read_json_or_empty(path: Path) -> dict[str, Any]:
    """A JSON object file as a dict; {} when missing, unreadable or not an object."""
    try:
        data = read_json(path)
    except (CorruptRunFileError, OSError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def looks_like_run_dir(path: Path) -> bool:
    return any((path / name).exists() for name in (RUN_FILE, EVENTS_FILE, CONFIG_FILE))


def subdirs(path: Path) -> Iterator[Path]:
    """The visible sub-folders of path, sorted by name (none when path is not a folder)."""
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith((".", "_")):
            continue
        try:
            if entry.is_dir():
                yield Path(entry.path)
        except OSError:
            continue


def scan_runs(runs_dir: Path, warn: Warn | None = None) -> list[RunEntry]:
    """Every run directory under runs_dir (top-level runs and sweep jobs), damaged ones included."""
    runs_dir = Path(runs_dir)
    runs: list[RunEntry] = []
    for path in subdirs(runs_dir):
        if path.name == SWEEPS_DIR:
            continue
        if looks_like_run_dir(path):
            runs.append(read_run_entry(path, warn=warn))
    for sweep_dir in subdirs(runs_dir / SWEEPS_DIR):
        for path in subdirs(sweep_dir):
            if looks_like_run_dir(path):
                runs.append(read_run_entry(path, sweep_dir=sweep_dir, warn=warn))
    return runs


def resolve_run(ref: str, runs_dir: Path) -> RunEntry:
    """A run from a path, `last`, an id or a unique id prefix; a clear UserError when unknown, ambiguous or
    damaged (the damage named)."""
    path = Path(ref).expanduser()
    if path.is_dir() and not (path / RUN_FILE).is_file() and looks_like_run_dir(path):
        raise UserError(f"{path / RUN_FILE} is missing (a half-written run directory)")
    try:
        run_dir = find_run(ref, runs_dir)
    except UserError:
        # A directory without run.json is invisible to find_run: name its damage rather than say "no run".
        matches = [r for r in scan_runs(runs_dir) if r.id.startswith(ref)]
        if len(matches) == 1 and matches[0].problem is not None:
            raise UserError(matches[0].problem) from None
        raise
    sweep_dir = None
    try:
        rel = run_dir.path.resolve().relative_to(Path(runs_dir).resolve())
        if len(rel.parts) == 3 and rel.parts[0] == SWEEPS_DIR:
            sweep_dir = run_dir.path.parent
    except ValueError:
        pass
    entry = read_run_entry(run_dir.path, sweep_dir=sweep_dir)
    if entry.problem:
        raise UserError(entry.problem)
    return entry
