"""Fault injection, refusals: what is refused before training says so in one line and leaves nothing
behind (no run directory, no change to the run it was about)."""

from __future__ import annotations

import hashlib

import pytest

from conftest import FAST, only_run, project_env, train
from tracking_runs import free_port, needs, record


def _one_error(proc) -> str:
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return errors[0]


@pytest.mark.slow
@needs("mlflow")
def test_an_unreachable_mlflow_server_writes_no_run_and_names_its_port(tmp_path):
    port = free_port()
    proc = train(tmp_path / "runs", *FAST, "tracker=mlflow", f"tracker.mlflow.tracking_uri=http://127.0.0.1:{port}",
                 check=False)  # fmt: skip
    error = _one_error(proc)
    assert "is unreachable" in error and f"--port {port}" in error and "--port 5000" not in error
    assert not list((tmp_path / "runs").glob("*/run.json")) and not list((tmp_path / "runs").glob("*"))


@pytest.mark.slow
@needs("wandb")
def test_wandb_online_without_a_key_writes_no_run(tmp_path):
    env = project_env(WANDB_MODE="online", NETRC=str(tmp_path / "no-netrc"), HOME=str(tmp_path))
    env.pop("WANDB_API_KEY", None)
    proc = train(tmp_path / "runs", *FAST, "tracker=wandb", "tracker.wandb.mode=online", check=False, env=env)
    assert "needs a W&B API key" in _one_error(proc)
    assert not list((tmp_path / "runs").glob("*"))


def _fingerprint(run_dir):
    return {
        p.relative_to(run_dir): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_a_refused_resume_changes_nothing(tmp_path):
    runs = tmp_path / "runs"
    train(runs, "epochs=3", "data.n_samples=512", "stop_after_epochs=1", "tracker=local")
    run_dir = only_run(runs)
    status = record(run_dir)["status"]
    # A checkpoint of an older kit (no summary in it): the resume would continue summary.json, now garbage.
    import torch

    checkpoint = run_dir / "checkpoints" / "last.pt"
    state = torch.load(checkpoint, weights_only=False)
    state.pop("summary", None)
    torch.save(state, checkpoint)
    (run_dir / "summary.json").write_text("{ not json")
    before = _fingerprint(run_dir)
    proc = train(runs, "tracker=local", f"resume={record(run_dir)['id']}", check=False)
    error = _one_error(proc)
    assert "summary.json" in error
    assert _fingerprint(run_dir) == before and record(run_dir)["status"] == status
    assert only_run(runs) == run_dir
