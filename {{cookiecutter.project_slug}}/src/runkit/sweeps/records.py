"""The files of a sweep directory, and the small records its jobs leave behind.

<runs_dir>/sweeps/<YYYYmmdd-HHMMSS>-<name>-<sweep id>/
    sweep.json       the sweep: overrides grid, launcher, backends' grouping ids, jobs, statuses (the master
                     process alone writes it: at the start and at the end)
    summary.csv      one row per job (overrides, status, duration, final/best monitored metric, best marked)
    summary.md       the same for people, plus failures and, when `seed` is swept, mean/std per configuration
    jobs/<NNNN>-<attempt>.json   one small record per job attempt, written only by that job (no shared file
                     that parallel jobs would race on); covers jobs that failed before their run started
    <YYYYmmdd-HHMMSS>-<name>-<run id>/   each job's run directory
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any

from runkit.errors import UserError
from runkit.storage.jsonio import CorruptRunFileError, read_json, write_json
from runkit.storage.run_dir import RUN_FILE, id_from_name

SWEEP_FILE = "sweep.json"
JOBS_DIR = "jobs"
STOP_FILE = ".stop"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
SCHEMA_VERSION = 1

# Overrides that say how a sweep is executed, not what a job computes: ignored when matching a job with
# the same job of an earlier session of the sweep (`sweep.resume`).
_POLICY_PREFIXES = ("sweep.", "paths.")


def override_key(override: str) -> str:
    """`+a.b=1` -> `a.b`; `model=mlp` -> `model`."""
    return override.split("=", 1)[0].lstrip("+~")


def override_value(override: str) -> str:
    return override.split("=", 1)[1] if "=" in override else ""


def job_params(overrides: list[str]) -> dict[str, str]:
    """A job's overrides as {key: value}, without the execution-policy ones."""
    return {
        override_key(o): override_value(o)
        for o in overrides
        if not override_key(o).startswith(_POLICY_PREFIXES)
    }


def job_key(overrides: list[str]) -> tuple[tuple[str, str], ...]:
    """What identifies a job within its sweep: its overrides, order-free, policy overrides left out."""
    return tuple(sorted(job_params(overrides).items()))


# --- sweep.json --------------------------------------------------------------------------------------------
def sweep_id_of(sweep_dir: Path) -> str:
    return id_from_name(sweep_dir)


def read_sweep(sweep_dir: Path) -> dict[str, Any]:
    path = Path(sweep_dir) / SWEEP_FILE
    return read_json(path) if path.is_file() else {}


def write_sweep(sweep_dir: Path, record: dict[str, Any]) -> None:
    write_json(Path(sweep_dir) / SWEEP_FILE, {**record, "schema": SCHEMA_VERSION})


def find_sweep(ref: str, runs_dir: Path) -> Path:
    """A sweep directory from a path, a sweep id (or unique prefix), a sweep directory name, or `last`."""
    ref = str(ref)
    path = Path(ref).expanduser()
    if (path / SWEEP_FILE).is_file():
        return path.resolve()
    sweeps = sorted(p.parent for p in (Path(runs_dir) / "sweeps").glob(f"*/{SWEEP_FILE}"))
    if ref == "last":
        if not sweeps:
            raise UserError(f"sweep.resume=last: no sweeps under {Path(runs_dir) / 'sweeps'}")
        return sweeps[-1].resolve()
    matches = [p for p in sweeps if p.name == ref or sweep_id_of(p).startswith(ref)]
    if len(matches) == 1:
        return matches[0].resolve()
    if not matches:
        raise UserError(
            f"sweep.resume={ref}: no sweep directory (with a {SWEEP_FILE}) matches; give a sweep directory, "
            f"a sweep id or 'last' (sweeps live under {Path(runs_dir) / 'sweeps'})"
        )
    names = ", ".join(p.name for p in matches[:10])
    raise UserError(f"sweep.resume={ref} is ambiguous: {names}")


def resolve_sweep_dir(resume: Any, runs_dir: Any, new_dir: Any) -> str:
    """The `sweep_dir` resolver behind hydra.sweep.dir: a new sweep directory, or the one being resumed.

    A reference that cannot be resolved is returned as it is; the sweep callback then reports it clearly
    (an exception here would surface as an interpolation error with a stack trace)."""
    if resume is None or str(resume) in ("", "null", "None"):
        return str(new_dir)
    try:
        return str(find_sweep(str(resume), Path(str(runs_dir))))
    except UserError:
        return str(Path(str(resume)).expanduser())


# --- stop marker (fail-fast) -------------------------------------------------------------------------------
def request_stop(sweep_dir: Path, reason: str) -> None:
    """Ask the jobs of this sweep that have not started yet not to start (fail-fast, or bad input)."""
    path = Path(sweep_dir) / STOP_FILE
    if not path.exists():
        write_json(path, {"reason": reason, "time": time.time(), "pid": os.getpid()})


def stop_reason(sweep_dir: Path) -> str | None:
    path = Path(sweep_dir) / STOP_FILE
    if not path.is_file():
        return None
    try:
        return str(read_json(path).get("reason") or "stopped")
    except (OSError, CorruptRunFileError):
        return "stopped"


def clear_stop(sweep_dir: Path) -> None:
    (Path(sweep_dir) / STOP_FILE).unlink(missing_ok=True)


# --- job records -------------------------------------------------------------------------------------------
class JobRecord:
    """One job attempt's record, jobs/<NNNN>-<attempt>.json, written only by the job itself."""

    def __init__(self, sweep_dir: Path, job_num: int, overrides: list[str]) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.attempt = secrets.token_hex(3)
        self.path = self.sweep_dir / JOBS_DIR / f"{job_num:04d}-{self.attempt}.json"
        now = time.time()
        self.data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "job_num": job_num,
            "attempt": self.attempt,
            "overrides": list(overrides),
            "status": "running",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "start_time": now,
            "heartbeat": now,
            "end_time": None,
            "duration_s": None,
            "run_dir": None,
            "run_id": None,
            "value": None,
            "error": None,
            "traceback": None,
        }

    def write(self, **fields: Any) -> None:
        self.data.update(fields)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.data)

    def finish(self, status: str, **fields: Any) -> None:
        now = time.time()
        run = find_job_run(self.sweep_dir, self.data["job_num"], self.data["pid"], self.data["start_time"])
        if run is not None:
            fields.setdefault("run_dir", run.name)
            fields.setdefault("run_id", id_from_name(run))
        self.write(
            status=status,
            end_time=now,
            heartbeat=now,
            duration_s=round(now - self.data["start_time"], 3),
            **fields,
        )


def read_jobs(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every job record of the sweep (all sessions, all attempts); unreadable ones are skipped."""
    records = []
    for path in sorted((Path(sweep_dir) / JOBS_DIR).glob("*.json")):
        try:
            record = read_json(path)
        except (OSError, CorruptRunFileError):
            continue
        record["_file"] = path.name
        records.append(record)
    return records


def read_run(sweep_dir: Path, run_dir: str | None) -> dict[str, Any]:
    if not run_dir:
        return {}
    try:
        return read_json(Path(sweep_dir) / run_dir / RUN_FILE)
    except (OSError, CorruptRunFileError):
        return {}


def find_job_run(sweep_dir: Path, job_num: int, pid: int, since: float) -> Path | None:
    """The run directory a job attempt created: same job number and process, started after the attempt."""
    found = None
    # Run directory names start with their creation time: only the recent ones need reading.
    earliest = time.strftime("%Y%m%d-%H%M%S", time.localtime(since - 2))
    for run_file in Path(sweep_dir).glob(f"*/{RUN_FILE}"):
        if run_file.parent.name[:15] < earliest:
            continue
        try:
            record = read_json(run_file)
        except (OSError, CorruptRunFileError):
            continue
        sweep = record.get("sweep") or {}
        if (
            sweep.get("job_num") == job_num
            and record.get("pid") == pid
            and float(record.get("start_time") or 0) >= since - 1
            and (found is None or run_file.parent.name > found.name)
        ):
            found = run_file.parent
    return found


def completed_job(sweep_dir: Path, overrides: list[str]) -> dict[str, Any] | None:
    """The newest completed attempt of the job with these overrides, if its run is complete too."""
    key = job_key(overrides)
    best = None
    for record in read_jobs(sweep_dir):
        if record.get("status") != "completed" or job_key(record.get("overrides") or []) != key:
            continue
        run = read_run(sweep_dir, record.get("run_dir"))
        if record.get("run_dir") and run.get("status") != "completed":
            continue
        if best is None or record.get("start_time", 0) > best.get("start_time", 0):
            best = record
    return best
