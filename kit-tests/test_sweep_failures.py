"""Failed jobs in a sweep: fail-fast stops at the first failure, the default keeps going and reports it, and
`sweep.resume=<sweep dir>` re-runs only the jobs that did not complete.

`scheduler.T_max=0` makes a job fail inside its run (CosineAnnealingLR divides by T_max after an epoch).
"""

from __future__ import annotations

import json

import pytest

from conftest import train
from sweep_helpers import TINY, Sweep, error_lines, multirun, run_record, run_sweep

pytestmark = pytest.mark.slow

GRID = ["scheduler.T_max=1,0,2", *TINY, "tracker=local"]


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> tuple[Sweep, dict, Sweep]:
    """A fail-fast sweep (job 1 fails, job 2 is skipped), then the same sweep resumed without fail-fast."""
    runs = tmp_path_factory.mktemp("failures") / "runs"
    first = run_sweep(runs, *GRID, "sweep.fail_fast=true", check=False)
    snapshot = {
        "record": first.record,
        "rows": first.csv_rows(),
        "md": (first.dir / "summary.md").read_text(),
        "runs": sorted(p.name for p in first.run_dirs()),
    }
    resumed = run_sweep(runs, *GRID, f"sweep.resume={first.dir}", check=False)
    return first, snapshot, resumed


def test_fail_fast_stops_at_the_first_failure(sessions):
    first, snap, _ = sessions
    assert first.proc.returncode == 1
    assert [r["status"] for r in snap["rows"]] == ["completed", "failed", "skipped"]
    assert len(snap["runs"]) == 2  # the skipped job never started a run
    assert snap["record"]["status"] == "failed" and "job #1 failed" in snap["record"]["stopped"]
    assert snap["record"]["counts"] == {"completed": 1, "failed": 1, "skipped": 1}


def test_a_failed_job_is_reported_with_its_traceback(sessions):
    first, snap, _ = sessions
    failed = snap["rows"][1]
    assert failed["error"].startswith("ZeroDivisionError") and failed["run_id"]
    traceback = first.dir / failed["traceback"]
    assert traceback.is_file() and "Traceback" in traceback.read_text()
    assert failed["traceback"] in snap["md"] and "## Jobs that did not complete" in snap["md"]


def test_a_failed_sweep_ends_with_one_error_line(sessions):
    first, snap, _ = sessions
    [line] = error_lines(first.proc.stderr)
    assert f"sweep {snap['record']['id']}: 1 failed, 1 skipped of 3 jobs" in line
    assert "sweep.fail_fast" in line and line.endswith("summary.md")


def test_resume_reruns_only_the_jobs_that_did_not_complete(sessions):
    first, snap, resumed = sessions
    assert resumed.dir == first.dir  # the same sweep directory, no second sweep
    rows = resumed.csv_rows()
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]
    assert rows[0]["run_id"] == snap["rows"][0]["run_id"]  # the completed job was not run again
    assert rows[1]["run_id"] != snap["rows"][1]["run_id"]  # the failed one ran again (and failed again)
    names = [p.name for p in resumed.run_dirs()]
    assert len(names) == 4 and set(snap["runs"]) < set(names)


def test_without_fail_fast_the_sweep_keeps_going_after_a_failure(sessions):
    _, _, resumed = sessions
    assert resumed.proc.returncode == 1
    rows = resumed.csv_rows()
    assert rows[1]["status"] == "failed" and rows[2]["status"] == "completed"
    assert (
        run_record(resumed.dir / rows[2]["run_dir"])["start_time"]
        > run_record(resumed.dir / rows[1]["run_dir"])["end_time"]
    )


def test_resume_is_recorded_in_sweep_json(sessions):
    first, snap, resumed = sessions
    record = resumed.record
    assert record["id"] == snap["record"]["id"] and record["start_time"] == snap["record"]["start_time"]
    assert len(record["resumes"]) == 1 and record["stopped"] is None
    assert record["counts"] == {"completed": 2, "failed": 1}


def test_an_unknown_sweep_to_resume_is_one_clear_error(tmp_path):
    proc = multirun(tmp_path / "runs", "lr=1e-3,1e-2", "sweep.resume=nosuchsweep", check=False)
    assert proc.returncode == 1
    [line] = error_lines(proc.stderr)
    assert "sweep.resume=nosuchsweep: no sweep directory" in line
    assert "Traceback" not in proc.stderr


def test_resume_outside_a_multirun_says_to_add_m(tmp_path):
    proc = train(tmp_path / "runs", "sweep.resume=last", *TINY, check=False)
    assert proc.returncode == 1
    assert error_lines(proc.stderr) and "add -m" in error_lines(proc.stderr)[0]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("run.json"))


def test_job_records_are_one_file_per_attempt(sessions):
    first, _, _ = sessions
    records = [json.loads(p.read_text()) for p in sorted((first.dir / "jobs").glob("*.json"))]
    # session 1: jobs 0, 1, 2 (skipped); session 2: jobs 1 and 2 again (job 0 reused)
    assert sorted(r["job_num"] for r in records) == [0, 1, 1, 2, 2]
    assert len({r["attempt"] for r in records}) == 5
