"""`python train.py` end to end: what a user runs, and what it leaves in the run directory."""

from __future__ import annotations

import json
import math
import sys

import pytest
import yaml

from conftest import FAST, read_events, run_dirs

pytestmark = pytest.mark.slow


def test_default_run_completes_with_a_full_run_directory(default_run):
    record = json.loads((default_run / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["id"] == default_run.name.rsplit("-", 1)[-1]
    assert record["end_time"] >= record["start_time"] and record["duration_s"] >= 0
    for name in (
        "config.yaml",
        "overrides.yaml",
        "events.jsonl",
        "summary.json",
        "train.log",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (default_run / name).is_file(), name


def test_config_and_overrides_are_saved_resolved(default_run):
    config = yaml.safe_load((default_run / "config.yaml").read_text())
    assert config["epochs"] == 2 and config["optimizer"]["lr"] == config["lr"]  # interpolations resolved
    assert "${" not in (default_run / "config.yaml").read_text()
    overrides = yaml.safe_load((default_run / "overrides.yaml").read_text())
    assert "epochs=2" in overrides and "tracker=local" in overrides


def test_events_log_is_gap_free_and_ends_with_the_status(default_run):
    events = read_events(default_run)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "params" and events[0]["data"]["lr"] == 0.001
    assert events[-1] == {**events[-1], "type": "status", "data": {"status": "completed", "error": None}}
    steps = [e["step"] for e in events if e["type"] == "metrics" and "train/loss" in e["data"]]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > 10


def test_summary_holds_last_and_best(default_run):
    summary = json.loads((default_run / "summary.json").read_text())
    assert summary["best"]["metric"] == "val/acc" and 0 < summary["best"]["value"] <= 1
    assert summary["last"]["val/acc"] <= summary["best"]["value"]
    assert not math.isnan(summary["last"]["test/acc"])


def test_two_runs_in_the_same_second_get_two_directories(tmp_path, run_train):
    import subprocess

    from conftest import ROOT, project_env

    runs = tmp_path / "runs"
    cmd = [sys.executable, "train.py", f"paths.runs_dir={runs}", "tracker=local", *FAST, "epochs=1"]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    dirs = run_dirs(runs)
    assert len(dirs) == 2 and dirs[0].name != dirs[1].name


def test_a_bad_override_gives_one_clear_error(tmp_path, run_train):
    proc = run_train(tmp_path / "runs", "no_such_key=1", check=False)
    assert proc.returncode != 0
    assert "Could not override 'no_such_key'" in proc.stderr
    assert not (tmp_path / "runs").exists() or not run_dirs(tmp_path / "runs")


def test_an_unknown_tracker_is_refused_before_anything_starts(tmp_path, run_train):
    proc = run_train(tmp_path / "runs", "tracker=nosuchbackend", check=False)
    assert proc.returncode != 0
    assert proc.stderr.startswith("ERROR: tracker: no option 'nosuchbackend'; choose from local, ")
    assert not run_dirs(tmp_path / "runs")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("monitor.metric=val/f1", "ERROR: monitor.metric='val/f1' is not one of val/loss, val/acc"),
        ("lr=abc", "ERROR: lr='abc' is not a number"),
        ("lr=0", "ERROR: lr must be positive, not 0.0"),
        ("epochs=-1", "ERROR: epochs must be at least 1, not -1"),
        ("batch_size=0", "ERROR: batch_size must be at least 1, not 0"),
        (
            "tracker=[local,nosuch]",
            "ERROR: tracker: no option 'nosuch'; choose from local, mlflow, tensorboard",
        ),
    ],
)
def test_bad_input_is_one_line_before_anything_is_written(tmp_path, run_train, override, message):
    proc = run_train(tmp_path / "runs", *FAST, "tracker=local", override, check=False)
    assert proc.returncode in (1, 2)
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [message] or (
        message.startswith("ERROR: tracker") and proc.stderr.strip().startswith(message)
    ), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not run_dirs(tmp_path / "runs")
