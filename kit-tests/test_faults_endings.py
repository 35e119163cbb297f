"""Fault injection, endings: Ctrl-C while a run finishes, a run whose backend ids never reached run.json,
a run started with SIGINT ignored. One status everywhere, one backend run per run id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from backend_readers import mlflow_runs_tagged
from conftest import FAST, ROOT, only_run, project_env
from fault_helpers import backends_hold_the_log, runs_cli
from tracking_runs import (
    events,
    first_run,
    needs,
    record,
    shipper_done,
    start_train,
    tracker_overrides,
    wait_for,
)

KIT_TESTS = os.path.dirname(os.path.abspath(__file__))  # slow_backend.py


def _env():
    return project_env(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT / "src"), KIT_TESTS]))


def _calls(run_dir):
    path = run_dir / "slow_backend.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- 7. Ctrl-C (twice) while the run finishes: the status stays the one recorded, everywhere ---------------
@pytest.mark.slow
@needs("mlflow")
def test_ctrl_c_while_the_run_finishes_changes_no_status(tmp_path):
    runs = tmp_path / "runs"
    slow = ["+tracker.slow._target_=slow_backend.SlowBackend", "+tracker.slow.close_seconds=6"]
    overrides = tracker_overrides(["mlflow"])
    overrides[0] = "tracker=[mlflow]"
    proc = start_train(runs, *overrides, *slow, *FAST, log=tmp_path / "out.txt", env=_env())
    run_dir = wait_for(lambda: first_run(runs), what="the run")
    wait_for(lambda: any(c["call"] == "closing" for c in _calls(run_dir)), 240, "the run's end")
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the trainer's group
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # and again: stop waiting
    code = proc.wait(timeout=120)
    proc.log_file.close()
    output = (tmp_path / "out.txt").read_text()
    assert "Traceback" not in output, output
    assert "stopped waiting for the backends" in output and code == 0
    wait_for(lambda: shipper_done(run_dir, ["mlflow", "slow"], "completed"), 120, "the shipper")
    assert [e["data"]["status"] for e in events(run_dir) if e["type"] == "status"] == ["completed"]
    stored = backends_hold_the_log(run_dir, ["mlflow"], "completed")
    assert stored["mlflow"]["status"] == "FINISHED"


# --- 7. a backend's ids never recorded: `runs sync` finds its run, and makes no second one -----------------
@pytest.mark.slow
@needs("mlflow")
def test_sync_never_makes_a_second_mlflow_run_for_one_run_id(tmp_path):
    from conftest import train

    runs = tmp_path / "runs"
    train(runs, *FAST, *tracker_overrides(["mlflow"]))
    run_dir = only_run(runs)
    rec = record(run_dir)
    uri = rec["backends"]["mlflow"]["tracking_uri"]
    # What an interrupted trainer leaves: the MLflow run exists, run.json and the cursor do not know it.
    del rec["backends"]["mlflow"]
    (run_dir / "run.json").write_text(json.dumps(rec))
    (run_dir / "shipper" / "mlflow.json").unlink()
    runs_cli("sync", str(run_dir), "--to", "mlflow")
    assert len(mlflow_runs_tagged(uri, rec["id"])) == 1
    backends_hold_the_log(run_dir, ["mlflow"], "completed")


# --- 13. a run started with SIGINT ignored says that Ctrl-C cannot stop it ---------------------------------
@pytest.mark.slow
def test_a_run_started_with_sigint_ignored_says_so(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"paths.runs_dir={runs}", *FAST, "tracker=local"],
        cwd=ROOT,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # what `cmd &` or nohup does
    )
    assert proc.returncode == 0, proc.stderr
    log = (only_run(runs) / "train.log").read_text()
    assert "SIGINT is ignored in this process" in log and "Ctrl-C cannot abort this run" in log


def test_children_of_the_tests_get_sigint_back():
    """conftest.py resets SIGINT at import: a child started from here (even under `make test &`) can be
    interrupted."""
    out = subprocess.run(
        [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
