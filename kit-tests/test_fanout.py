"""One run, every backend of this project at once: each holds exactly what events.jsonl holds, under our run
id. And choosing a backend imports that backend's library only (the shipper feeds each in its own process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from backend_readers import mlflow_run, steps_by_metric, tb_scalars, wandb_run, wandb_series
from conftest import ROOT, project_env
from tracking_runs import BACKENDS, events, fanout_run, mlflow_uri, record

pytestmark = pytest.mark.skipif(not BACKENDS, reason="no tracking backend besides the run directory")


@pytest.fixture(scope="module")
def run():
    return fanout_run()


def stored_points(run_dir, name):
    """metric -> [(step, value)] as backend `name` stored it."""
    rec = record(run_dir)
    if name == "tensorboard":
        return tb_scalars(run_dir / "tensorboard")
    if name == "mlflow":
        ids = rec["backends"]["mlflow"]
        return mlflow_run(ids["tracking_uri"], ids["run_id"])["metrics"]
    history = wandb_run(run_dir)["history"]
    return {key: wandb_series(history, key) for key in steps_by_metric(events(run_dir))}


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_holds_exactly_the_log(run, name):
    expected = steps_by_metric(events(run))
    stored = stored_points(run, name)
    # Not from this log: system/* (sampled into system.jsonl) and best/* (the best-so-far series).
    stored = {k: v for k, v in stored.items() if not k.startswith(("system/", "best/"))}
    assert set(stored) == set(expected)
    for metric, points in expected.items():
        assert [s for s, _ in stored[metric]] == [s for s, _ in points], (name, metric)
        assert [v for _, v in stored[metric]] == pytest.approx([v for _, v in points], rel=1e-6), (
            name,
            metric,
        )


@pytest.mark.slow
def test_one_identity_everywhere_and_nothing_left_behind(run):
    rec = record(run)
    assert rec["status"] == "completed" and set(rec["backends"]) == set(BACKENDS)
    size = (run / "events.jsonl").stat().st_size
    last_seq = events(run)[-1]["seq"]
    for name in BACKENDS:
        info = rec["backends"][name]
        assert info["error"] is None and info["shipped_seq"] == last_seq
        cursor = json.loads((run / "shipper" / f"{name}.json").read_text())
        assert cursor["offset"] == size and cursor["closed"] == "completed"
    if "wandb" in BACKENDS:
        assert rec["backends"]["wandb"]["id"] == rec["id"]
    if "mlflow" in BACKENDS:
        assert (
            mlflow_run(rec["backends"]["mlflow"]["tracking_uri"], rec["backends"]["mlflow"]["run_id"])[
                "tags"
            ]["run_id"]
            == rec["id"]
        )
    if "tensorboard" in BACKENDS:
        assert rec["backends"]["tensorboard"]["log_dir"].startswith(str(run))
    log = (run / "shipper.log").read_text()
    assert "ERROR" not in log and "Traceback" not in log


SYNC_AND_LIST = """
import json, sys
from pathlib import Path
from runkit.tracking.sync import sync_run
sync_run(Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]))
print(json.dumps(sorted(m for m in ("torch", "tensorboard", "mlflow", "wandb") if m in sys.modules)))
"""


def tiny_run(tmp_path):
    """A run directory written by hand: run.json, config.yaml, a few events."""
    run_dir = tmp_path / "20260101-000000-tiny-0badcafe"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"id": "0badcafe", "name": "tiny", "status": "completed"}))
    (run_dir / "config.yaml").write_text("lr: 0.1\n")
    lines = [{"seq": 1, "time": 1.0, "type": "params", "step": None, "data": {"lr": 0.1}}]
    lines += [
        {"seq": s, "time": 1.0 + s, "type": "metrics", "step": s, "data": {"loss": 1.0 / s}}
        for s in range(2, 6)
    ]
    lines.append({"seq": 6, "time": 7.0, "type": "status", "step": None, "data": {"status": "completed"}})
    (run_dir / "events.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run_dir


@pytest.mark.parametrize("name", BACKENDS)
def test_choosing_a_backend_imports_its_library_only(tmp_path, name):
    """The shipper's code path (build, open, write, close) for one backend, in a fresh interpreter."""
    pkg = "runkit"
    cfg = {
        "tensorboard": {"_target_": f"{pkg}.tracking.backends.tensorboard.TensorBoardBackend"},
        "mlflow": {"_target_": f"{pkg}.tracking.backends.mlflow.MlflowBackend", "tracking_uri": mlflow_uri()},
        "wandb": {"_target_": f"{pkg}.tracking.backends.wandb.WandbBackend", "project": "imports"},
    }[name]
    proc = subprocess.run(
        [sys.executable, "-c", SYNC_AND_LIST, str(tiny_run(tmp_path)), name, json.dumps(cfg)],
        cwd=ROOT, env=project_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [name]


def test_the_tracking_package_and_the_shipper_import_no_backend_library():
    pkg = "runkit"
    code = (
        f"import sys; import {pkg}.tracking.shipper, {pkg}.tracking.sync;"
        " heavy = ('torch', 'tensorboard', 'mlflow', 'wandb', 'matplotlib');"
        " print(sorted(m for m in heavy if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=project_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_train_help_does_not_import_torch_or_any_backend():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "train.py"), "--help"],
        cwd=ROOT, env=project_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and "Powered by Hydra" in proc.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line
    }
    assert "hydra" in imported and not imported & {"torch", "tensorboard", "mlflow", "wandb"}
