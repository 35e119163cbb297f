"""Fault injection, an MLflow outage: a server lost mid-run and back before the end is retried and gets
everything without `runs sync`; one still down at the end leaves a run marked incomplete and one command
that completes it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from backend_readers import mlflow_run
from fault_helpers import backends_hold_the_log, runs_cli
from tracking_runs import (
    MlflowServer,
    first_run,
    metric_lines,
    mlflow_uri,
    needs,
    record,
    start_train,
    wait_for,
)

pytestmark = [pytest.mark.slow, needs("mlflow")]


def _outage(tmp_path: Path, back_before_the_end: bool):
    server = MlflowServer(tmp_path).start(seed_db=mlflow_uri())
    overrides = [
        "tracker=[mlflow]",
        f"tracker.mlflow.tracking_uri={server.url}",
        "tracking.wait_for_backends=true",
        "tracking.retries=1",
        "tracking.revisit=1",
        "tracking.poll_interval=0.1",
        # Long enough to outlast the outage; it is then stopped with SIGTERM (preempted).
        "epochs=400" if back_before_the_end else "epochs=3",
        "batch_size=16",
        "data.n_samples=512",
    ]
    env = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"}
    from conftest import project_env

    proc = start_train(tmp_path / "runs", *overrides, log=tmp_path / "out.txt", env=project_env(**env))
    try:
        run_dir = wait_for(lambda: first_run(tmp_path / "runs"), what="the run")
        wait_for(lambda: metric_lines(run_dir) >= 3, what="the first metrics")
        os.killpg(proc.pid, signal.SIGSTOP)  # hold training while the server goes away
        try:
            cursor = run_dir / "shipper" / "mlflow.json"
            wait_for(lambda: json.loads(cursor.read_text())["seq"] > 3, what="MLflow's first metrics")
            server.stop()
        finally:
            os.killpg(proc.pid, signal.SIGCONT)
        if back_before_the_end:
            wait_for(lambda: "set aside" in (run_dir / "train.log").read_text(), 120, "MLflow set aside")
            os.killpg(proc.pid, signal.SIGSTOP)  # the server comes back while the run still goes on
            try:
                server.start()
                wait_for(lambda: "works again" in (run_dir / "train.log").read_text(), 120, "the retry")
            finally:
                os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(1)
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(timeout=600) == 143, (tmp_path / "out.txt").read_text()
        else:
            assert proc.wait(timeout=600) == 0, (tmp_path / "out.txt").read_text()
        proc.log_file.close()
        return server, run_dir, (tmp_path / "out.txt").read_text()
    except BaseException:
        server.stop()
        raise


def test_a_backend_set_aside_is_retried_and_completed_when_its_server_returns(tmp_path):
    server, run_dir, output = _outage(tmp_path, back_before_the_end=True)
    try:
        assert "set aside" in output and "works again" in output
        rec = record(run_dir)
        assert rec["backends"]["mlflow"]["error"] is None and rec["backends"]["mlflow"]["missing"] is None
        stored = backends_hold_the_log(run_dir, ["mlflow"], "preempted")["mlflow"]
        assert stored["status"] == "KILLED" and "incomplete" not in stored["tags"]
    finally:
        server.stop()


def test_a_server_down_at_the_end_gives_the_command_that_completes_the_run(tmp_path):
    server, run_dir, output = _outage(tmp_path, back_before_the_end=False)
    try:
        rec = record(run_dir)
        command = f"runs sync {rec['id']} --to mlflow"
        assert command in output and command in rec["backends"]["mlflow"]["missing"]
        assert "--port 5000" not in output or server.port == 5000
        server.start()
        runs_cli("sync", rec["id"], "--to", "mlflow", "--runs-dir", str(tmp_path / "runs"))
        stored = backends_hold_the_log(run_dir, ["mlflow"], "completed")["mlflow"]
        assert stored["status"] == "FINISHED" and "incomplete" not in stored["tags"]
        assert record(run_dir)["backends"]["mlflow"]["missing"] is None
    finally:
        server.stop()


def test_a_run_closed_without_every_event_is_marked_incomplete_in_mlflow(tmp_path):
    """The adapter's side, on the sqlite store: the mark, then its removal by the session that completes
    it."""
    from runkit.storage.status import Status
    from runkit.tracking.backends.base import RunInfo
    from runkit.tracking.backends.mlflow import INCOMPLETE_TAG, MlflowBackend

    uri = mlflow_uri()
    info = RunInfo(run_id="aincompl", name="partial", run_dir=tmp_path)
    backend = MlflowBackend(uri, experiment="faults", artifact_location=str(tmp_path / "art"))
    ids = backend.open(info)
    backend.log_metrics(1, {"loss": 1.0}, 0.0)
    backend.flush()
    backend.mark_complete(
        "it lacks the run's events after seq 2; complete it with: runs sync aincompl --to mlflow"
    )
    backend.close(Status.COMPLETED)
    stored = mlflow_run(uri, ids["run_id"])
    assert "runs sync aincompl --to mlflow" in stored["tags"][INCOMPLETE_TAG]
    again = MlflowBackend(uri, experiment="faults", artifact_location=str(tmp_path / "art"))
    assert again.open(RunInfo(run_id="aincompl", name="partial", run_dir=tmp_path))["run_id"] == ids["run_id"]
    again.mark_complete(None)
    again.close(Status.COMPLETED)
    assert INCOMPLETE_TAG not in mlflow_run(uri, ids["run_id"])["tags"]
