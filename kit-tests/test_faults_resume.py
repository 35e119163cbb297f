"""Fault injection, resume: a run killed between two checkpoints and resumed. Every backend must show one
history: each step once, with the values of the session that continued (the earlier session's steps after
the checkpoint are superseded). W&B offline cannot delete a row: the resumed session rebuilds its run file
from the log, and the interrupted session's folder goes. `runs sync` of the resumed run into backends that
never had it writes the same one history, and so does a sync after a rebuild cut short by a kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from backend_readers import mlflow_run, tb_scalars, wandb_run
from conftest import train
from fault_helpers import runs_cli, same_points
from tracking_runs import (
    BACKENDS,
    events,
    first_run,
    free_port,
    needs,
    record,
    shipper_done,
    start_mlflow_server,
    start_train,
    tracker_overrides,
    wait_for,
)

pytestmark = [pytest.mark.slow, needs("tensorboard", "mlflow", "wandb")]
RUN = ["epochs=30", "batch_size=16", "data.n_samples=512", "tracking.poll_interval=0.1"]


def _last_step(run_dir):
    steps = [e["step"] for e in events(run_dir) if e["type"] == "metrics"]
    return max(steps, default=0)


def _checkpoint_steps(run_dir):
    return [
        e["step"]
        for e in events(run_dir)
        if e["type"] == "artifact" and e["data"].get("kind") == "checkpoint"
    ]


def _checkpoint_step(run_dir):
    return max(_checkpoint_steps(run_dir), default=None)


def _between_checkpoints(run_dir):
    """Past the last checkpoint and not on the next one: a checkpoint's file is saved before its event is
    logged, so a process stopped at an epoch's last step may hold a newer checkpoint than the log says."""
    last, saved = _last_step(run_dir), _checkpoint_steps(run_dir)
    return bool(saved) and last > max(saved) + 2 and last % min(saved) != 0


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
        if _between_checkpoints(run_dir):
            break
        os.killpg(proc.pid, signal.SIGCONT)
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.log_file.close()
    killed_at = _last_step(run_dir)
    wait_for(lambda: shipper_done(run_dir, BACKENDS, "crashed"), 180, "the crashed session's shipper")
    # System samples of the interrupted session, in system.jsonl as its shipper writes them (its sampler
    # may not see the trainer's pid here): `system/probe` is the step each was taken at.
    logged = [e for e in events(run_dir) if e["type"] == "metrics"]
    with open(run_dir / "system.jsonl", "a", encoding="utf-8") as samples:
        for event in (logged[0], logged[len(logged) // 2], logged[-1]):
            samples.write(json.dumps({"time": event["time"], "system/probe": float(event["step"])}) + "\n")
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


def _wandb_points(run_dir, key):
    return [(row["global_step"], row[key]) for row in wandb_run(run_dir)["history"] if key in row]


def test_wandb_offline_rebuilds_one_history_and_drops_the_interrupted_sessions_folder(resumed):
    """W&B offline cannot delete a row: the resumed session retired the interrupted session's folder and
    wrote the whole history again from the log, without the superseded steps."""
    run_dir, expected, from_step, _ = resumed
    stored = wandb_run(run_dir)
    assert len(stored["files"]) == 1  # one live session folder: the rebuilt one
    for key, points in expected.items():
        same_points(_wandb_points(run_dir, key), points, f"W&B {key}")
    assert stored["summary"]["run_status"] == "completed" and stored["exit_codes"] == [0]
    # The interrupted session's system samples came again (from system.jsonl), each at the step the trainer
    # had logged last at its time: a superseded step's is at a step of the history.
    probes = [(row["system/probe"], row["global_step"]) for row in stored["history"] if "system/probe" in row]
    assert len(probes) == 3
    for taken_at, step in probes:
        assert step == taken_at if taken_at <= from_step else step <= from_step, (taken_at, step, from_step)
    retired = run_dir / "wandb" / "superseded"
    assert not list(retired.glob("*offline-run-*"))  # deleted once the rebuilt run closed whole
    assert json.loads((retired / f"{record(run_dir)['id']}.json").read_text())["complete"] is True


def _copy_without(run_dir: Path, dest: Path, *backends: str) -> Path:
    """The run directory copied elsewhere, as if `backends` had never had it."""
    copy = dest / run_dir.name
    shutil.copytree(run_dir, copy, symlinks=True)
    for name in backends:
        (copy / "shipper" / f"{name}.json").unlink(missing_ok=True)
    return copy


def test_sync_of_the_resumed_run_into_backends_that_never_had_it_writes_one_history(resumed, tmp_path):
    """The superseded events are handed to no backend: W&B (which cannot delete a row) and a new MLflow
    store get one history from `runs sync`, each step once."""
    run_dir, expected, _, _ = resumed
    copy = _copy_without(run_dir, tmp_path, "wandb", "mlflow", "tensorboard")
    for folder in ("wandb", "tensorboard"):
        shutil.rmtree(copy / folder)
    config = (copy / "config.yaml").read_text()
    store = f"sqlite:///{tmp_path / 'new.db'}"
    config = config.replace(record(run_dir)["backends"]["mlflow"]["tracking_uri"], store)
    (copy / "config.yaml").write_text(config)
    for name in ("wandb", "mlflow", "tensorboard"):
        assert f"synced {record(copy)['id']} -> {name}" in runs_cli("sync", str(copy), "--to", name).stdout
    assert len(wandb_run(copy)["files"]) == 1
    ids = record(copy)["backends"]["mlflow"]
    assert ids["tracking_uri"] == store
    stored = mlflow_run(store, ids["run_id"])
    scalars = tb_scalars(copy / "tensorboard")
    for key, points in expected.items():
        same_points(_wandb_points(copy, key), points, f"W&B {key}")
        same_points(stored["metrics"][key], points, f"MLflow {key}")
        same_points(scalars[key], points, f"TensorBoard {key}", float32=True)


def _mlflow_at(run_dir: Path, dest: Path, uri: str) -> Path:
    """A copy of the run that MLflow at `uri` has never had."""
    copy = _copy_without(run_dir, dest, "mlflow")
    config = (copy / "config.yaml").read_text()
    (copy / "config.yaml").write_text(
        config.replace(record(run_dir)["backends"]["mlflow"]["tracking_uri"], uri)
    )
    return copy


def test_an_mlflow_server_keeps_what_it_had_and_tags_the_resume_point(resumed, tmp_path):
    """A server cannot delete a point. One that had the interrupted session's points (synced after the kill,
    before the resume) keeps them next to the resumed session's, and the run's tag `resumed_from_step` says
    from where; one that never had them (the resumed run synced whole) holds one history and no such tag."""
    run_dir, expected, from_step, _ = resumed
    port = free_port()
    server = start_mlflow_server(tmp_path, port, f"sqlite:///{tmp_path / 'server.db'}")
    uri = f"http://127.0.0.1:{port}"
    try:
        whole = _mlflow_at(run_dir, tmp_path / "whole", uri)
        runs_cli("sync", str(whole), "--to", "mlflow")
        stored = mlflow_run(uri, record(whole)["backends"]["mlflow"]["run_id"])
        assert "resumed_from_step" not in stored["tags"]
        for key, points in expected.items():
            same_points(stored["metrics"][key], points, f"MLflow {key}")

        split = _mlflow_at(run_dir, tmp_path / "split", uri)
        log = (split / "events.jsonl").read_bytes()
        lines = log.splitlines(keepends=True)
        before = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "resume")
        (split / "events.jsonl").write_bytes(b"".join(lines[:before]))  # the log as the kill left it
        runs_cli("sync", str(split), "--to", "mlflow")
        (split / "events.jsonl").write_bytes(log)  # then the resumed session's
        runs_cli("sync", str(split), "--to", "mlflow")
        stored = mlflow_run(uri, record(split)["backends"]["mlflow"]["run_id"])
        assert stored["tags"]["resumed_from_step"] == str(from_step)
        loss = stored["metrics"]["train/loss"]
        assert (
            len(loss) > len(expected["train/loss"])
            and max(s for s, _ in loss) == expected["train/loss"][-1][0]
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_a_rebuild_cut_short_is_done_again_by_runs_sync(resumed, tmp_path):
    """The resumed session's shipper killed in the middle of the rebuild (as it leaves things: the state
    file says the rebuild is not done, the cursor is mid-log and not closed, the run file is cut): `runs
    sync` rebuilds again from the log's start and ends with one whole history."""
    run_dir, expected, _, _ = resumed
    copy = _copy_without(run_dir, tmp_path)
    run_id = record(copy)["id"]
    state = copy / "wandb" / "superseded" / f"{run_id}.json"
    state.write_text(json.dumps({"covered": json.loads(state.read_text())["covered"], "complete": False}))
    (live,) = copy.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    live.write_bytes(live.read_bytes()[: live.stat().st_size // 2])
    cursor_file = copy / "shipper" / "wandb.json"
    cursor = json.loads(cursor_file.read_text())
    cursor.update(offset=cursor["offset"] // 2, closed=None)
    cursor_file.write_text(json.dumps(cursor))
    assert f"synced {run_id} -> wandb" in runs_cli("sync", str(copy), "--to", "wandb").stdout
    stored = wandb_run(copy)
    assert len(stored["files"]) == 1 and stored["files"][0].parent != live.parent
    assert sum("system/probe" in row for row in stored["history"]) == 3  # the samples once, not per replay
    for key, points in expected.items():
        same_points(_wandb_points(copy, key), points, f"W&B {key}")
    assert not list((copy / "wandb" / "superseded").glob("*offline-run-*"))
    assert json.loads(state.read_text())["complete"] is True
