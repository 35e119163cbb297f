"""A project pointed at a team MLflow server (PostgreSQL store, artifacts proxied by the server): a sweep
and a DDP run land in it, a server restart mid-run loses nothing, and no credential lands in a run
directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backend_readers import mlflow_run, mlflow_runs_tagged
from conftest import FAST, ROOT, only_run, project_env
from ddp_helpers import history, torchrun
from repro_helpers import metric_history
from sweep_helpers import TINY, Sweep, run_record
from team_server import TeamServer, team_server  # noqa: F401 - the session fixture
from tracking_runs import metric_lines, start_train, wait_for

pytestmark = pytest.mark.slow

CLIENT_PASSWORD = "client-secret-" + "7f3a9c"  # MLFLOW_TRACKING_PASSWORD of the training processes


def client_env() -> dict[str, str]:
    return project_env(
        OMP_NUM_THREADS="1", MLFLOW_TRACKING_USERNAME="alice", MLFLOW_TRACKING_PASSWORD=CLIENT_PASSWORD
    )


def tracker(server: TeamServer) -> list[str]:
    return ["tracker=mlflow", f"tracker.mlflow.tracking_uri={server.url}"]


def assert_no_secret(directory: Path, *secrets: str) -> None:
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret!r} found in {path}"


def test_a_joblib_sweep_lands_in_the_team_server(team_server: TeamServer, tmp_path: Path) -> None:  # noqa: F811
    runs = tmp_path / "runs"
    env = client_env()
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", f"paths.runs_dir={runs}", "seed=1,2",
           "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *tracker(team_server), *TINY]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sweep = Sweep(runs, proc)
    assert sweep.record["counts"] == {"completed": 2}
    assert "mlflow" in sweep.record["backends"]
    for run_dir in sweep.run_dirs():
        ours = run_record(run_dir)
        (found,) = mlflow_runs_tagged(team_server.url, ours["id"])
        got = mlflow_run(team_server.url, found.info.run_id)
        assert got["status"] == "FINISHED"
        assert got["params"]["seed"] in ("1", "2") and got["params"]["epochs"] == "1"
        history = metric_history(run_dir)
        for name in ("train/loss", "val/acc"):
            assert got["metrics"][name] == sorted((s, v) for (s, n), v in history.items() if n == name)
        assert {"checkpoints/last.pt", "checkpoints/best.pt"} <= set(got["artifacts"])
        # The checkpoint went through the server into its artifact store (no shared disk), byte for byte.
        local = got["client"].download_artifacts(found.info.run_id, "checkpoints/last.pt", str(tmp_path))
        assert Path(local).read_bytes() == (run_dir / "checkpoints" / "last.pt").read_bytes()
        stored = list(team_server.artifacts.rglob("last.pt"))
        assert any(p.read_bytes() == Path(local).read_bytes() for p in stored)
        # ... and nowhere on the client's disk but in the run directory (other tests of this process may
        # have left a local store's mlartifacts/ in the example project: look for this run's only).
        assert found.info.artifact_uri.startswith("mlflow-artifacts:"), found.info.artifact_uri
        assert not any((ROOT / "mlartifacts").rglob(f"*{found.info.run_id}*"))
    assert_no_secret(sweep.dir, CLIENT_PASSWORD, team_server.db_password)


def test_a_server_restart_mid_run_loses_nothing(team_server: TeamServer, tmp_path: Path) -> None:  # noqa: F811
    runs = tmp_path / "runs"
    long = [
        "epochs=200",
        "batch_size=8",
        "data.n_samples=512",
        "tracking.poll_interval=0.1",
        "tracking.retries=12",
        "tracking.revisit=2",  # a backend set aside (or not yet open) is tried again every 2 s
    ]
    proc = start_train(runs, *tracker(team_server), *long, log=tmp_path / "train.log", env=client_env())
    try:
        run_dir = wait_for(lambda: next(iter(runs.glob("*/run.json")), None), 120, "the run").parent
        wait_for(lambda: metric_lines(run_dir) > 20, 120, "training to log")
        team_server.stop_mlflow()
        stopped_at = metric_lines(run_dir)
        wait_for(
            lambda: metric_lines(run_dir) > stopped_at + 100, 120, "training to go on without the server"
        )
        # Hold the trainer while the server restarts (seconds), so that the run outlasts the outage whatever
        # the machine's speed; its shipper goes on, trying MLflow again every 2 s.
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            assert proc.poll() is None, "the run ended before the server came back: make it longer"
            team_server.start_mlflow()
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(300) == 0, (tmp_path / "train.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert metric_lines(run_dir) > stopped_at  # training went on while the server was away
    ours = run_record(run_dir)
    assert ours["status"] == "completed"
    # The shipper set MLflow aside while the server was away and came back to it (tracking.revisit, and once
    # more at the end): the run is complete in MLflow without a `runs sync`.
    assert not (ours.get("backends") or {}).get("mlflow", {}).get("missing"), ours["backends"]
    (found,) = mlflow_runs_tagged(team_server.url, ours["id"])
    got = mlflow_run(team_server.url, found.info.run_id)
    assert got["status"] == "FINISHED"
    history = metric_history(run_dir)
    for name in ("train/loss", "val/acc"):
        assert got["metrics"][name] == sorted((s, v) for (s, n), v in history.items() if n == name)
    assert_no_secret(run_dir, CLIENT_PASSWORD, team_server.db_password)


def test_a_ddp_run_lands_in_the_team_server_as_one_run(team_server: TeamServer, tmp_path: Path) -> None:  # noqa: F811
    """`torchrun --nproc_per_node=2 train.py tracker=mlflow ...` against the server: one MLflow run, rank 0's,
    its metrics the global ones of events.jsonl, its checkpoints uploaded through the server."""
    runs = tmp_path / "runs"
    creds = {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": CLIENT_PASSWORD}
    torchrun(runs, *FAST, "seed=5", *tracker(team_server), env=creds)
    run_dir = only_run(runs)
    ours = run_record(run_dir)
    assert ours["status"] == "completed" and ours["distributed"]["world_size"] == 2
    assert not (ours.get("backends") or {}).get("mlflow", {}).get("missing"), ours["backends"]
    (found,) = mlflow_runs_tagged(team_server.url, ours["id"])  # one run, not one per rank
    got = mlflow_run(team_server.url, found.info.run_id)
    assert got["status"] == "FINISHED"
    assert got["params"]["seed"] == "5"
    for name in ("train/loss", "val/acc"):
        assert got["metrics"][name] == history(run_dir, name)
    local = got["client"].download_artifacts(found.info.run_id, "checkpoints/last.pt", str(tmp_path))
    assert Path(local).read_bytes() == (run_dir / "checkpoints" / "last.pt").read_bytes()
    assert found.info.artifact_uri.startswith("mlflow-artifacts:"), found.info.artifact_uri
    assert_no_secret(run_dir, CLIENT_PASSWORD, team_server.db_password)
