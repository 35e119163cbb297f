"""Fault injection, a sweep stopped by SIGTERM or Ctrl-C, parallel (joblib) or under Hydra's basic launcher
(the job runs in the launching process): no new job starts, the running jobs end their runs as preempted or
aborted, sweep.json and the MLflow parent run are closed, and no worker is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend_readers import mlflow_run, mlflow_runs_tagged
from conftest import ROOT, project_env
from fault_helpers import children
from tracking_runs import needs, shipper_done, tracker_overrides, wait_for

pytestmark = [pytest.mark.slow, needs("mlflow")]
LONG_JOB = ["epochs=400", "batch_size=16", "data.n_samples=512", "tracking.poll_interval=0.1"]


def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


STOPS = [(signal.SIGTERM, "preempted", "KILLED"), (signal.SIGINT, "aborted", "KILLED")]


# joblib: two jobs at once in worker processes; basic: Hydra's own launcher, one job at a time in-process.
LAUNCHERS = {"joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], "basic": []}


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
@pytest.mark.parametrize(("signum", "status", "mlflow_status"), STOPS)
def test_a_stopped_sweep_closes_everything_and_leaves_no_worker(
    tmp_path, signum, status, mlflow_status, launcher
):
    if launcher == "joblib":
        pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    running = 2 if launcher == "joblib" else 1
    runs = tmp_path / "runs"
    overrides = [*tracker_overrides(["mlflow"]), *LONG_JOB, *LAUNCHERS[launcher]]
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"paths.runs_dir={runs}",
        "seed=1,2,3,4,5,6",
        *overrides,
    ]
    log = open(tmp_path / "sweep.out", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env=project_env(OMP_NUM_THREADS="1"), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        sweep_file = wait_for(
            lambda: next(iter((runs / "sweeps").glob("*/sweep.json")), None), 120, "the sweep"
        )
        sweep_dir = sweep_file.parent
        wait_for(lambda: len(list(sweep_dir.glob("*/run.json"))) >= running, 180, "the running jobs")
        time.sleep(2)
        workers = _descendants(proc.pid)
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)  # a terminal's Ctrl-C: the launcher and its workers
        else:
            os.kill(proc.pid, signum)  # a scheduler's or `kill`'s SIGTERM: the launcher only
        code = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    output = (tmp_path / "sweep.out").read_text()
    assert code in (130, 143), output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert f"sweep.resume={sweep_dir}" in output  # the command that continues it
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["status"] == status and record["end_time"]
    # The stop marker stays: a joblib worker that outlives the stop skips the job it takes next.
    assert (sweep_dir / ".stop").is_file()
    run_dirs = sorted(p.parent for p in sweep_dir.glob("*/run.json"))
    assert running <= len(run_dirs) < 6  # jobs after the stop never started
    for run_dir in run_dirs:
        wait_for(
            lambda d=run_dir: json.loads((d / "run.json").read_text())["status"] != "running", 120, "jobs"
        )
        rec = json.loads((run_dir / "run.json").read_text())
        assert rec["status"] in (status, "completed"), (run_dir, rec["status"])
        wait_for(lambda d=run_dir, s=rec["status"]: shipper_done(d, ["mlflow"], s), 120, "the job's shipper")
        ids = rec["backends"]["mlflow"]
        assert mlflow_run(ids["tracking_uri"], ids["run_id"])["status"] != "RUNNING"
        assert len(mlflow_runs_tagged(ids["tracking_uri"], rec["id"])) == 1
    parent = record["backends"]["mlflow"]
    assert mlflow_run(parent["tracking_uri"], parent["run_id"])["status"] == mlflow_status
    time.sleep(1)
    alive = [pid for pid in workers if os.path.exists(f"/proc/{pid}") and b"Z" not in _state(pid)]
    assert alive == [], [Path(f"/proc/{p}/cmdline").read_bytes()[:200] for p in alive]


def _state(pid):
    try:
        return open(f"/proc/{pid}/stat", "rb").read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return b"Z"
