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
from typing import Any, cast

from runkit.errors import UserError
from runkit.storage.jsonio import CorruptRunFileError, read_json, write_json
from runkit.storage.layout import HYDRA_MULTIRUN_FILE, RUN_FILE, SWEEP_FILE, SWEEP_JOBS_DIR, SWEEP_STOP_FILE
from runkit.storage.records import JobAttempt, RunRecord, SweepRecord
from runkit.storage.run_dir import id_from_name
from runkit.storage.secrets import Secrets
from runkit.storage.status import Status
from runkit.sweeps.grouping import job_key
from runkit.sweeps.lookup import find_sweep

SCHEMA_VERSION = 1


# --- sweep.json --------------------------------------------------------------------------------------------
def read_sweep(sweep_dir: Path) -> SweepRecord:
    """The sweep's sweep.json; an empty record when it has none."""
    path = Path(sweep_dir) / SWEEP_FILE
    return cast(SweepRecord, read_json(path)) if path.is_file() else SweepRecord()


def write_sweep(sweep_dir: Path, record: SweepRecord) -> None:
    write_json(Path(sweep_dir) / SWEEP_FILE, {**record, "schema": SCHEMA_VERSION})


def resolve_sweep_dir(resume: Any, runs_dir: Any, new_dir: Any) -> str:
    """The `sweep_dir` resolver behind hydra.sweep.dir: a new sweep directory, or the one being resumed.

    A reference that cannot be resolved is returned as it is; the sweep callback then reports it clearly
    (an exception here would surface as an interpolation error with a stack trace)."""
    if resume is None or str(resume) in ("", "null", "None"):
        return str(new_dir)
    try:
        return str(find_sweep(str(resume), Path(str(runs_dir)), option="sweep.resume"))
    except UserError:
        return str(Path(str(resume)).expanduser())


# --- stop marker (fail-fast) -------------------------------------------------------------------------------
def request_stop(sweep_dir: Path, reason: str) -> None:
    """Ask the jobs of this sweep that have not started yet not to start (fail-fast, or bad input)."""
    path = Path(sweep_dir) / SWEEP_STOP_FILE
    if not path.exists():
        write_json(path, {"reason": reason, "time": time.time(), "pid": os.getpid()})


def stop_reason(sweep_dir: Path) -> str | None:
    path = Path(sweep_dir) / SWEEP_STOP_FILE
    if not path.is_file():
        return None
    try:
        return str(read_json(path).get("reason") or "stopped")
    except (OSError, CorruptRunFileError):
        return "stopped"


def clear_stop(sweep_dir: Path) -> None:
    (Path(sweep_dir) / SWEEP_STOP_FILE).unlink(missing_ok=True)


# --- job records -------------------------------------------------------------------------------------------
class JobRecord:
    """One job attempt's record, jobs/<NNNN>-<attempt>.json, written only by the job itself."""

    def __init__(self, sweep_dir: Path, job_num: int, overrides: list[str]) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.attempt = secrets.token_hex(3)
        self.path = self.sweep_dir / SWEEP_JOBS_DIR / f"{job_num:04d}-{self.attempt}.json"
        now = time.time()
        self.data: JobAttempt = {
            "schema": SCHEMA_VERSION,
            "job_num": job_num,
            "attempt": self.attempt,
            # Masked like every other record of a run (`+db_password=...` never lands on disk).
            "overrides": Secrets().overrides(overrides),
            "status": Status.RUNNING.value,
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
        self.data.update(cast(JobAttempt, fields))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.data)

    def finish(self, status: Status, **fields: Any) -> None:
        now = time.time()
        run = find_job_run(self.sweep_dir, self.data["job_num"], self.data["pid"], self.data["start_time"])
        if run is not None:
            fields.setdefault("run_dir", run.name)
            fields.setdefault("run_id", id_from_name(run))
        self.write(
            status=Status(status).value,
            end_time=now,
            heartbeat=now,
            duration_s=round(now - self.data["start_time"], 3),
            **fields,
        )


def read_jobs(sweep_dir: Path) -> list[JobAttempt]:
    """Every job record of the sweep (all sessions, all attempts); unreadable ones are skipped."""
    records: list[JobAttempt] = []
    for path in sorted((Path(sweep_dir) / SWEEP_JOBS_DIR).glob("*.json")):
        try:
            record = cast(JobAttempt, read_json(path))
        except (OSError, CorruptRunFileError):
            continue
        record["_file"] = path.name
        records.append(record)
    return records


def read_run(sweep_dir: Path, run_dir: str | None) -> RunRecord:
    """The run.json of a job's run directory (relative to the sweep directory); empty when unreadable."""
    if not run_dir:
        return RunRecord()
    try:
        return cast(RunRecord, read_json(Path(sweep_dir) / run_dir / RUN_FILE))
    except (OSError, CorruptRunFileError):
        return RunRecord()


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


def completed_job(sweep_dir: Path, overrides: list[str]) -> JobAttempt | None:
    """The newest completed attempt of the job with these overrides, if its run is complete too."""
    key = job_key(Secrets().overrides(overrides))  # the records hold masked overrides
    best: JobAttempt | None = None
    completed = Status.COMPLETED.value
    for record in read_jobs(sweep_dir):
        if record.get("status") != completed or job_key(record.get("overrides") or []) != key:
            continue
        run = read_run(sweep_dir, record.get("run_dir"))
        if record.get("run_dir") and run.get("status") != completed:
            continue
        if best is None or record.get("start_time", 0) > best.get("start_time", 0):
            best = record
    return best


def mask_hydra_record(sweep_dir: Path, overrides: list[str], extra: list[str] | None = None) -> None:
    """Mask the values of secret overrides in Hydra's own record of the sweep (multirun.yaml, written by its
    sweeper before any job starts, with the overrides as given); every job does it, atomically, so the
    file holds no secret whichever job runs first."""
    path = Path(sweep_dir) / HYDRA_MULTIRUN_FILE
    rule = Secrets(extra)
    values = [v for k, sep, v in (o.partition("=") for o in overrides) if sep and v and rule.is_secret(k)]
    if not values or not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    masked = rule.text(text, values)
    if masked != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(masked, encoding="utf-8")
        os.replace(tmp, path)
