"""MLflow, read back with MlflowClient: the project's sqlite store, and an MLflow server on 127.0.0.1 that
goes away in the middle of a run (set aside, training goes on, `sync_run` completes the run afterwards)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from runkit.flatten import flatten
from runkit.storage.events import log_size
from runkit.tracking.sync import sync_run

from backend_readers import mlflow_run, mlflow_runs_tagged, steps_by_metric, tb_scalars
from conftest import project_env, train
from tracking_runs import (
    MlflowServer,
    api_run,
    events,
    fanout_run,
    first_run,
    free_port,
    has_backend,
    metric_lines,
    mlflow_uri,
    record,
    start_train,
    wait_for,
)


@pytest.fixture(scope="module")
def run():
    return fanout_run()


@pytest.mark.slow
def test_params_metrics_tags_and_status(run):
    rec = record(run)
    ids = rec["backends"]["mlflow"]
    stored = mlflow_run(ids["tracking_uri"], ids["run_id"])
    assert stored["status"] == "FINISHED" and stored["name"] == f"fanout-{rec['id']}"
    assert stored["tags"]["run_id"] == rec["id"] and stored["tags"]["run_status"] == "completed"
    assert {"fan", "out", "seed", "config_hash"} <= set(stored["tags"])
    config = flatten(yaml.safe_load((run / "config.yaml").read_text()))
    assert set(stored["params"]) == set(config)
    assert (
        stored["params"]["lr"] == str(config["lr"])
        and stored["params"]["optimizer._target_"] == "torch.optim.Adam"
    )
    logged = {k: v for k, v in stored["metrics"].items() if not k.startswith("system/")}  # the shipper's
    assert logged == steps_by_metric(events(run))  # every point once, exact values
    assert len(mlflow_runs_tagged(ids["tracking_uri"], rec["id"])) == 1


@pytest.mark.slow
def test_checkpoints_are_artifacts_under_their_aliases(run, tmp_path):
    rec = record(run)
    ids = rec["backends"]["mlflow"]
    stored = mlflow_run(ids["tracking_uri"], ids["run_id"])
    assert {"checkpoints/best.pt", "checkpoints/last.pt"} <= set(stored["artifacts"])
    local = stored["client"].download_artifacts(ids["run_id"], "checkpoints/last.pt", str(tmp_path))
    assert Path(local).read_bytes() == (run / "checkpoints" / "last.pt").read_bytes()


def test_figures_text_files_and_a_failed_status(tmp_path):
    run = api_run(tmp_path / "runs", status="failed")
    (run / "traceback.txt").write_text("Traceback: boom\n")
    result = sync_run(run, "mlflow", {**_config(run), "tracking_uri": mlflow_uri()})
    stored = mlflow_run(mlflow_uri(), result["ids"]["run_id"])
    assert stored["status"] == "FAILED" and stored["tags"]["run_status"] == "failed"
    assert stored["tags"]["team"] == "vision"
    assert {"figures/curve.png", "artifacts/notes.txt", "artifacts/extra.csv", "traceback.txt"} <= set(
        stored["artifacts"]
    )
    assert stored["metrics"]["train/loss"] == steps_by_metric(events(run))["train/loss"]
    assert stored["metrics"]["val/acc"][0][0] == 20  # NaN kept as NaN
    assert sync_run(run, "mlflow", {**_config(run), "tracking_uri": mlflow_uri()})["up_to_date"]


def _config(run):
    from runkit.storage.run_dir import RunDir
    from runkit.tracking.sync import backend_config

    return backend_config(RunDir(run), "mlflow")


@pytest.mark.slow
def test_an_unreachable_server_is_one_error_line_before_training(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    proc = train(tmp_path / "runs", "tracker=mlflow", f"tracker.mlflow.tracking_uri={url}", check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: the MLflow server at {url} is unreachable"), (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "runs").glob("*/run.json"))  # a refusal before training writes no run


# --- a server, and losing it mid-run ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def server_run(tmp_path_factory):
    """A run against `mlflow server`: training is paused once MLflow has its first metrics, the server is
    stopped, training resumes and completes; then the server comes back and sync_run completes MLflow."""
    root = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(root).start(seed_db=mlflow_uri())
    try:
        names = ["tensorboard", "mlflow"] if has_backend("tensorboard") else ["mlflow"]
        overrides = [
            f"tracker=[{','.join(names)}]",
            f"tracker.mlflow.tracking_uri={server.url}",
            "tracking.wait_for_backends=true",  # the run's MLflow ids are in run.json before training starts
            "tracking.retries=1",
            "tracking.poll_interval=0.1",
            "epochs=20",
            "batch_size=16",
            "data.n_samples=512",
        ]
        env = project_env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5")
        proc = start_train(root / "runs", *overrides, log=root / "train.out", env=env)
        run_dir = wait_for(lambda: first_run(root / "runs"), what="the run directory")
        wait_for(lambda: metric_lines(run_dir) >= 3, what="the first metrics")
        os.killpg(proc.pid, signal.SIGSTOP)  # hold training while MLflow catches up, then lose the server
        try:
            cursor = run_dir / "shipper" / "mlflow.json"
            wait_for(
                lambda: json.loads(cursor.read_text())["offset"] == log_size(run_dir / "events.jsonl"),
                what="MLflow to have everything logged so far",
            )
            live_ids = record(run_dir)["backends"]["mlflow"]
            live = mlflow_run(server.url, live_ids["run_id"])
            server.stop()
        finally:
            os.killpg(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=300) == 0, (root / "train.out").read_text()
        after_run = record(run_dir)
        server.start()
        first = sync_run(run_dir, "mlflow")
        second = sync_run(run_dir, "mlflow")
        stored = mlflow_run(server.url, live_ids["run_id"])
        yield SimpleNamespace(
            run_dir=run_dir, server=server, live=live, live_ids=live_ids, after_run=after_run, first=first,
            second=second, stored=stored, output=(root / "train.out").read_text(), names=names,
        )  # fmt: skip
    finally:
        server.stop()


@pytest.mark.slow
def test_the_server_run_has_our_ids_while_running(server_run):
    ids, live = server_run.live_ids, server_run.live
    assert ids["tracking_uri"] == server_run.server.url and ids["url"].startswith(server_run.server.url)
    assert live["status"] == "RUNNING" and live["tags"]["run_id"] == record(server_run.run_dir)["id"]
    assert live["params"]["tracker.mlflow.tracking_uri"] == server_run.server.url
    assert len(live["metrics"]["train/loss"]) >= 3


@pytest.mark.slow
def test_losing_the_server_sets_mlflow_aside_and_training_goes_on(server_run):
    rec = server_run.after_run
    assert rec["status"] == "completed"
    assert "failed 2 times in a row" in rec["backends"]["mlflow"]["error"]
    assert "set aside" in server_run.output and "`runs sync`" in server_run.output
    assert "the mlflow backend is set aside" in (server_run.run_dir / "train.log").read_text()
    expected = steps_by_metric(events(server_run.run_dir))
    steps = [s for s, _ in expected["train/loss"]]
    assert steps == list(range(1, 20 * 23 + 1))  # the run directory is complete
    if "tensorboard" in server_run.names:
        assert rec["backends"]["tensorboard"]["error"] is None
        assert [s for s, _ in tb_scalars(server_run.run_dir / "tensorboard")["train/loss"]] == steps


@pytest.mark.slow
def test_sync_completes_the_same_mlflow_run_once(server_run):
    first, second, stored = server_run.first, server_run.second, server_run.stored
    assert first["ids"]["run_id"] == server_run.live_ids["run_id"] and first["shipped"] > 0
    assert second["up_to_date"] and second["shipped"] == 0
    assert stored["status"] == "FINISHED"
    assert stored["metrics"] == steps_by_metric(events(server_run.run_dir))
    assert {"checkpoints/best.pt", "checkpoints/last.pt"} <= set(stored["artifacts"])
    assert record(server_run.run_dir)["backends"]["mlflow"]["error"] is None
    assert len(mlflow_runs_tagged(server_run.server.url, record(server_run.run_dir)["id"])) == 1
