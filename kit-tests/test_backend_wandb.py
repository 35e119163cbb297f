"""Weights & Biases, read back from its offline run files (run-<id>.wandb) inside the run directory."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from runkit.flatten import flatten
from runkit.tracking.backends.base import BackendError
from runkit.tracking.backends.wandb import WandbBackend
from runkit.tracking.sync import sync_run

from backend_readers import steps_by_metric, wandb_run, wandb_series
from tracking_runs import api_run, events, fanout_run, record


@pytest.fixture(scope="module")
def run():
    return fanout_run()


@pytest.mark.slow
def test_run_identity_config_and_exit_code(run):
    rec = record(run)
    stored = wandb_run(run)
    assert set(stored["ids"]) == {rec["id"]} and set(stored["names"]) == {f"fanout-{rec['id']}"}
    ids = rec["backends"]["wandb"]
    assert ids["id"] == rec["id"] and ids["mode"] == "offline" and ids["dir"].startswith(str(run / "wandb"))
    config = flatten(yaml.safe_load((run / "config.yaml").read_text()))
    assert (
        stored["config"]["lr"] == config["lr"]
        and stored["config"]["optimizer._target_"] == "torch.optim.Adam"
    )
    # the config, plus the overrides, the real start time and the dataset (dataset.json)
    extra = set(stored["config"]) - set(config)
    assert set(config) <= set(stored["config"]) and {"overrides", "run_start_time"} <= extra
    assert all(key in ("overrides", "run_start_time") or key.startswith("dataset.") for key in extra)
    assert {"fan", "out"} <= set(stored["tags"][-1])
    assert stored["exit_codes"] == [0] and stored["summary"]["run_status"] == "completed"


@pytest.mark.slow
def test_every_metric_against_our_global_step(run):
    stored = wandb_run(run)
    assert ("*", "global_step") in stored["metrics"]
    for name, points in steps_by_metric(events(run)).items():
        assert wandb_series(stored["history"], name) == points, name


@pytest.mark.slow
def test_checkpoints_are_a_model_artifact_with_last_and_best(run):
    rec = record(run)
    artifacts = [a for a in wandb_run(run)["artifacts"] if a["type"] == "model"]  # not the tables' own
    assert {a["name"] for a in artifacts} == {f"model-{rec['id']}"} and {a["type"] for a in artifacts} == {
        "model"
    }
    by_alias = {alias: a["files"] for a in artifacts for alias in a["aliases"]}
    assert by_alias["last"] == ["last.pt"] and by_alias["best"] == ["best.pt"]


def test_figures_files_failure_and_sweep_group(tmp_path):
    run = api_run(tmp_path / "runs", status="failed")
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / "sweep.json").write_text(json.dumps({"backends": {"wandb": {"group": "sweep-abc123"}}}))
    rec = record(run)
    rec["sweep"] = {"dir": str(sweep_dir), "id": "abc123", "job_num": 0}
    (run / "run.json").write_text(json.dumps(rec))
    sync_run(run, "wandb")
    stored = wandb_run(run)
    assert stored["groups"][0] == "sweep-abc123"
    assert stored["exit_codes"] == [1] and stored["summary"]["run_status"] == "failed"
    image = next(row for row in stored["history"] if "figures/curve/_type" in row)
    assert image["figures/curve/_type"] == "image-file" and image["global_step"] == 20
    assert {"artifacts/notes.txt", "artifacts/extra.csv"} <= set(stored["saved"])
    assert (
        next(run.glob("wandb/offline-run-*/files/artifacts/notes.txt"))
    ).read_text() == "hello from the tracker"
    assert math.isnan(wandb_series(stored["history"], "val/acc")[0][1])
    assert "team:vision" in stored["tags"][-1]


def test_online_mode_without_an_api_key_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    (tmp_path / "netrc").write_text("")
    with pytest.raises(BackendError, match="needs a W&B API key: run `wandb login` or set WANDB_API_KEY"):
        WandbBackend(project="p", mode="online").preflight()
    with pytest.raises(BackendError, match="tracker.wandb.mode='sideways' is not one of"):
        WandbBackend(project="p", mode="sideways")
