"""How a run ends, for real: Ctrl-C, SIGTERM and SIGKILL of a running `python train.py`, and an exception.
Each ends with its status in run.json, at the end of events.jsonl and in every backend, mapped to the
backend's own (nothing is left RUNNING); after SIGKILL the shipper finishes the job on its own."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest

from runkit.storage.liveness import effective_status

from backend_readers import (
    mlflow_run,
    steps_by_metric,
    tb_hparams,
    tb_scalars,
    tb_texts,
    wandb_run,
    wandb_series,
)
from tracking_runs import (
    BACKENDS,
    events,
    first_run,
    metric_lines,
    record,
    shipper_done,
    start_train,
    tracker_overrides,
    wait_for,
)

pytestmark = pytest.mark.slow

# status -> (how it is caused, MLflow status, W&B exit code, TensorBoard HParams status)
ENDINGS = {
    "aborted": (signal.SIGINT, "KILLED", 255, "STATUS_UNKNOWN"),  # Ctrl-C: SIGINT to the foreground group
    "preempted": (signal.SIGTERM, "KILLED", 255, "STATUS_UNKNOWN"),  # e.g. a cluster scheduler
    "crashed": (signal.SIGKILL, "FAILED", 1, "STATUS_FAILURE"),  # killed without a word
    "failed": (None, "FAILED", 1, "STATUS_FAILURE"),  # an exception inside the run (here: T_max=0)
}
LONG = ["epochs=400", "batch_size=16", "data.n_samples=512", "tracking.poll_interval=0.1"]


@pytest.fixture(scope="module")
def ended(tmp_path_factory):
    """The four runs, side by side: each signalled once it has logged a few dozen steps."""
    root = tmp_path_factory.mktemp("lifecycle")
    procs = {}
    for status, (signum, *_) in ENDINGS.items():
        # CosineAnnealingLR with T_max=0 divides by zero after the first epoch: a failure inside the run.
        extra = LONG if signum is not None else ["epochs=2", "data.n_samples=512", "scheduler.T_max=0"]
        procs[status] = start_train(
            root / status, *tracker_overrides(BACKENDS), *extra, f"name={status}", log=root / f"{status}.out"
        )
    runs = {
        s: SimpleNamespace(run_dir=wait_for(lambda s=s: first_run(root / s), what=f"the {s} run"))
        for s in procs
    }
    for status, proc in procs.items():
        signum = ENDINGS[status][0]
        if signum is not None:
            wait_for(
                lambda d=runs[status].run_dir: metric_lines(d) >= 30, what=f"metrics of the {status} run"
            )
            if signum == signal.SIGINT:
                os.killpg(proc.pid, signum)  # what a terminal does on Ctrl-C: the shipper has its own session
            else:
                os.kill(proc.pid, signum)
    for status, proc in procs.items():
        runs[status].returncode = proc.wait(timeout=300)
        proc.log_file.close()
    for status, run in runs.items():
        wait_for(
            lambda r=run, s=status: shipper_done(r.run_dir, BACKENDS, s), 180, f"the {status} run's backends"
        )
        run.output = (root / f"{status}.out").read_text()
        run.record = record(run.run_dir)
        run.events = events(run.run_dir)
    return runs


@pytest.mark.parametrize("status", ENDINGS)
def test_the_run_directory_records_how_the_run_ended(ended, status):
    run = ended[status]
    assert run.returncode != 0
    assert [e["seq"] for e in run.events] == list(range(1, len(run.events) + 1))  # no holes
    if status == "crashed" and not BACKENDS:
        # No shipper (tracker=local): the dead process is found from run.json's pid and heartbeat.
        assert run.record["status"] == "running" and effective_status(run.record) == "crashed"
    else:
        assert run.record["status"] == status and run.record["end_time"] >= run.record["start_time"]
        assert run.events[-1]["type"] == "status" and run.events[-1]["data"]["status"] == status
    steps = [s for s, _ in steps_by_metric(run.events)["train/loss"]]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= (6 if status == "failed" else 25)


@pytest.mark.skipif(not BACKENDS, reason="no shipper with tracker=local")
def test_a_crash_is_found_and_recorded_by_the_shipper(ended):
    run = ended["crashed"]
    assert run.returncode == -signal.SIGKILL
    assert "without a word" in run.record["error"] and run.record["duration_s"] > 0
    for name in BACKENDS:  # every event logged before the kill reached every backend
        assert run.record["backends"][name]["shipped_seq"] == run.events[-1]["seq"]
        assert run.record["backends"][name]["error"] is None


def test_a_failure_keeps_its_traceback(ended):
    run = ended["failed"]
    assert run.returncode == 1 and "ZeroDivisionError" in run.output
    assert "ZeroDivisionError: integer modulo by zero" in (run.run_dir / "traceback.txt").read_text()
    assert run.record["error"] == "ZeroDivisionError: integer modulo by zero"


@pytest.mark.skipif(not BACKENDS, reason="no shipper with tracker=local")
def test_ctrl_c_reaches_the_trainer_only(ended):
    run = ended["aborted"]
    log = (run.run_dir / "shipper.log").read_text()
    assert "KeyboardInterrupt" not in log and "closed every backend as aborted" in log


@pytest.mark.skipif("tensorboard" not in BACKENDS, reason="TensorBoard not chosen")
@pytest.mark.parametrize("status", ENDINGS)
def test_tensorboard_has_every_step_and_the_status(ended, status):
    run = ended[status]
    log_dir = run.run_dir / "tensorboard"
    assert tb_texts(log_dir)["run/status"][-1][1] == status
    assert tb_hparams(log_dir)[1] == ENDINGS[status][3]
    expected = [s for s, _ in steps_by_metric(run.events)["train/loss"]]
    assert [s for s, _ in tb_scalars(log_dir)["train/loss"]] == expected


@pytest.mark.skipif("mlflow" not in BACKENDS, reason="MLflow not chosen")
@pytest.mark.parametrize("status", ENDINGS)
def test_mlflow_has_every_step_and_the_status(ended, status):
    run = ended[status]
    ids = run.record["backends"]["mlflow"]
    stored = mlflow_run(ids["tracking_uri"], ids["run_id"])
    assert stored["status"] == ENDINGS[status][1] and stored["tags"]["run_status"] == status
    logged = steps_by_metric(run.events)  # system/* metrics come from system.jsonl, not from this log
    assert {k: v for k, v in stored["metrics"].items() if not k.startswith("system/")} == logged
    if status == "failed":
        assert "traceback.txt" in stored["artifacts"]


@pytest.mark.skipif("wandb" not in BACKENDS, reason="W&B not chosen")
@pytest.mark.parametrize("status", ENDINGS)
def test_wandb_has_every_step_and_the_exit_code(ended, status):
    run = ended[status]
    stored = wandb_run(run.run_dir)
    assert stored["exit_codes"] == [ENDINGS[status][2]] and stored["summary"]["run_status"] == status
    assert wandb_series(stored["history"], "train/loss") == steps_by_metric(run.events)["train/loss"]
