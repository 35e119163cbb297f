"""Fault injection, resume: a run killed between two checkpoints and resumed. Every backend must show one
history: each step once, with the values of the session that continued (the earlier session's steps after
the checkpoint are superseded). W&B offline cannot delete a row: what holds there is tested precisely."""

from __future__ import annotations

import os
import signal
import time

import pytest

from backend_readers import mlflow_run, tb_scalars, wandb_run
from conftest import train
from fault_helpers import same_points
from tracking_runs import (
    BACKENDS,
    events,
    first_run,
    needs,
    record,
    shipper_done,
    start_train,
    tracker_overrides,
    wait_for,
)

pytestmark = [pytest.mark.slow, needs("tensorboard", "mlflow", "wandb")]
RUN = ["epochs=30", "batch_size=16", "data.n_samples=512", "tracking.poll_interval=0.1"]


def _last_step(run_dir):
    steps = [e["step"] for e in events(run_dir) if e["type"] == "metrics"]
    return max(steps, default=0)


def _checkpoint_step(run_dir):
    steps = [
        e["step"]
        for e in events(run_dir)
        if e["type"] == "artifact" and e["data"].get("kind") == "checkpoint"
    ]
    return max(steps, default=None)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    runs = root / "runs"
    proc = start_train(runs, *tracker_overrides(BACKENDS), *RUN, log=root / "first.out")
    run_dir = wait_for(lambda: first_run(runs), what="the run")
    wait_for(lambda: (_checkpoint_step(run_dir) or 0) >= 40, 240, "a checkpoint")
    # Stop it between two checkpoints (not on one: the test would prove nothing), then kill it.
    for _ in range(200):
        os.killpg(proc.pid, signal.SIGSTOP)
        if _last_step(run_dir) > (_checkpoint_step(run_dir) or 0) + 2:
            break
        os.killpg(proc.pid, signal.SIGCONT)
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.log_file.close()
    killed_at = _last_step(run_dir)
    wait_for(lambda: shipper_done(run_dir, BACKENDS, "crashed"), 180, "the crashed session's shipper")
    train(runs, *tracker_overrides(BACKENDS), f"resume={record(run_dir)['id']}", timeout=600)
    wait_for(lambda: shipper_done(run_dir, BACKENDS, "completed"), 180, "the resumed session's shipper")
    log = events(run_dir)
    from_step = next(e for e in log if e["type"] == "resume")["data"]["from_step"]
    assert from_step < killed_at
    # The one history: per metric, the last value logged for each step, in log order.
    history: dict[str, dict[int, float]] = {}
    for event in log:
        if event["type"] == "metrics":
            for key, value in event["data"].items():
                history.setdefault(key, {})[event["step"]] = value
    expected = {key: sorted(points.items()) for key, points in history.items()}
    return run_dir, expected, from_step, killed_at


def test_tensorboard_shows_one_history_with_the_checkpoint_step(resumed):
    run_dir, expected, from_step, _ = resumed
    scalars = tb_scalars(run_dir / "tensorboard")
    for key, points in expected.items():
        same_points(scalars[key], points, f"TensorBoard {key}", float32=True)
    assert from_step in [s for s, _ in scalars["train/loss"]]


def test_mlflow_shows_one_history(resumed):
    run_dir, expected, _, _ = resumed
    ids = record(run_dir)["backends"]["mlflow"]
    stored = mlflow_run(ids["tracking_uri"], ids["run_id"])
    assert stored["status"] == "FINISHED"
    for key, points in expected.items():
        same_points(stored["metrics"][key], points, f"MLflow {key}")
    last = stored["client"].get_run(ids["run_id"]).data.metrics  # the latest values follow the history
    assert last["train/loss"] == expected["train/loss"][-1][1]


def test_wandb_keeps_the_superseded_rows_and_the_last_row_of_each_step_is_the_history(resumed):
    """W&B offline appends rows and cannot delete one (rewinding a run needs the W&B server): the steps
    between the checkpoint and the kill have two rows, the interrupted session's first. Reading the last row
    of each step gives the one history; that, and nothing more, is what holds."""
    run_dir, expected, from_step, killed_at = resumed
    stored = wandb_run(run_dir)
    for key, points in expected.items():
        rows = [(row["global_step"], row[key]) for row in stored["history"] if key in row]
        last: dict[int, float] = {}
        for step, value in rows:
            last[step] = value
        same_points(sorted(last.items()), points, f"W&B {key}")
        repeated = sorted({s for s, _ in rows if [t for t, _ in rows].count(s) > 1})
        assert all(from_step < s <= killed_at for s in repeated), (key, repeated[:5], from_step, killed_at)
    assert stored["summary"]["run_status"] == "completed"
