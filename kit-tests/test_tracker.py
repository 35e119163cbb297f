"""The tracker's own parts: the hot-path line encoder, `sync_run` (the shipper's code path after the fact:
idempotent, continues where a backend stopped, finishes a crashed run), and every bad input as one line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from runkit.errors import UserError
from runkit.storage.events import EventWriter, read_events
from runkit.storage.jsonio import CorruptRunFileError
from runkit.tracking.backends.base import BackendError
from runkit.tracking.shipper import build_backend
from runkit.tracking.sync import sync_run

from backend_readers import tb_scalars, tb_texts
from conftest import FAST, ROOT, project_env, train
from tracking_runs import BACKENDS, api_run, events, metric_lines, needs, record


# --- the hot path ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [
        {
            "train/loss": 0.123456789012345,
            "lr": 1e-300,
            "big": 1.7976931348623157e308,
            "neg": -0.0,
            "one": 1.0,
        },
        {"ünï/cødé": 2.5, 'quote"and\\slash': 3.0, "tab\tkey": -1e-7, "100%": 0.5, "%(x)s": 1.5},
        {"nan": float("nan"), "ok": 1.0},
        {"inf": float("inf"), "minus_inf": float("-inf")},
        {},
    ],
)
def test_the_fast_metrics_line_reads_back_like_the_generic_one(tmp_path, values):
    writer = EventWriter(tmp_path / "events.jsonl")
    writer.write_metrics(tuple(values), tuple(values.values()), 7)
    writer.write("metrics", dict(values), 7)
    writer.close()
    (_, fast), (_, generic) = list(read_events(tmp_path / "events.jsonl"))
    assert (fast["seq"], generic["seq"]) == (1, 2)
    for event in (fast, generic):
        assert event["type"] == "metrics" and event["step"] == 7 and isinstance(event["time"], float)
        assert list(event["data"]) == list(values)
        for key, value in values.items():
            stored = event["data"][key]
            assert stored == value or (math.isnan(stored) and math.isnan(value)), key


def test_log_metrics_appends_one_line_per_call_with_gap_free_seq(tmp_path):
    run = api_run(tmp_path / "runs", steps=50)
    lines = (run / "events.jsonl").read_bytes().splitlines()
    assert metric_lines(run) == 51 and all(line.startswith(b'{"seq":') for line in lines)
    assert [e["seq"] for e in events(run)] == list(range(1, len(lines) + 1))
    assert record(run)["status"] == "completed" and events(run)[-1]["data"]["status"] == "completed"


# --- sync_run ----------------------------------------------------------------------------------------------
@needs("tensorboard")
def test_sync_twice_sends_nothing_twice_and_continues_where_it_stopped(tmp_path):
    run = api_run(tmp_path / "runs", steps=10)
    first = sync_run(run, "tensorboard")
    files = sorted((run / "tensorboard").iterdir())
    again = sync_run(run, "tensorboard")
    assert first["shipped"] == len(events(run)) and not first["up_to_date"]
    assert again["up_to_date"] and again["shipped"] == 0 and sorted((run / "tensorboard").iterdir()) == files
    assert record(run)["backends"]["tensorboard"]["log_dir"] == str(run / "tensorboard")

    # A later session of the run (e.g. resumed) logs more; sync sends only the new events.
    writer = EventWriter(run / "events.jsonl")
    for step in range(11, 16):
        writer.write_metrics(("train/loss",), (1.0 / step,), step)
    writer.write("status", {"status": "completed", "error": None})
    writer.close()
    third = sync_run(run, "tensorboard")
    assert third["shipped"] == 6
    assert [s for s, _ in tb_scalars(run / "tensorboard")["train/loss"]] == list(range(1, 16))


@needs("tensorboard")
def test_sync_finishes_a_run_whose_process_died_as_crashed(tmp_path):
    run = api_run(tmp_path / "runs", steps=5)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rec = record(run)
    rec.update(status="running", pid=dead.pid, end_time=None)
    (run / "run.json").write_text(json.dumps(rec))
    lines = (run / "events.jsonl").read_text().splitlines(keepends=True)
    (run / "events.jsonl").write_text("".join(lines[:-1]) + lines[-1][:10])  # no status; a cut last line
    result = sync_run(run, "tensorboard")
    assert result["status"] == "crashed" and record(run)["status"] == "crashed"
    logged = [event for _, event in read_events(run / "events.jsonl")]  # the cut line is skipped
    assert logged[-1]["data"]["status"] == "crashed"
    assert [e["seq"] for e in logged] == list(range(1, len(logged) + 1))
    assert tb_texts(run / "tensorboard")["run/status"][-1][1] == "crashed"


@pytest.mark.skipif(not BACKENDS, reason="no tracking backend besides the run directory")
def test_sync_refuses_a_run_that_is_still_running(tmp_path):
    run = api_run(tmp_path / "runs", steps=2)
    rec = record(run)
    rec.update(status="running", pid=os.getpid())
    (run / "run.json").write_text(json.dumps(rec))
    with pytest.raises(UserError, match="is still running"):
        sync_run(run, BACKENDS[0])


def test_a_corrupt_run_file_is_named_and_other_runs_still_sync(tmp_path):
    bad, good = api_run(tmp_path / "a", steps=2), api_run(tmp_path / "b", steps=2)
    (bad / "run.json").write_text('{"id": "abc", "sta')  # truncated
    with pytest.raises(CorruptRunFileError, match=f"{bad / 'run.json'} is corrupt or truncated"):
        sync_run(bad, "local")
    assert sync_run(good, "local")["up_to_date"]


def test_unknown_backends_and_bad_targets_are_one_line(tmp_path):
    run = api_run(tmp_path / "runs", steps=2)
    with pytest.raises(BackendError, match="unknown backend 'nosuch'.*configs/tracker/nosuch.yaml") as info:
        sync_run(run, "nosuch")
    with pytest.raises(
        BackendError, match="cannot build the x backend from tracker.x: Error loading 'no.such"
    ) as bad:
        build_backend("x", {"_target_": "no.such.Backend"})
    with pytest.raises(BackendError, match="tracker.y has no _target_"):
        build_backend("y", {"mode": "offline"})
    assert "\n" not in str(info.value) and "\n" not in str(bad.value)


# --- bad input end to end: one clear line before training ---------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not BACKENDS, reason="no tracking backend besides the run directory")
def test_a_backend_whose_package_is_missing_fails_before_training(tmp_path):
    """As if the chosen backend's package were not installed: an import hook refuses it in the subprocess."""
    name = BACKENDS[-1]
    module = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}[name]
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, fullname, path=None, target=None):\n"
        f"        if fullname.split('.')[0] == {module!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {fullname!r}', name=fullname)\n"
        "sys.meta_path.insert(0, Refuse())\n"
    )
    env = project_env()
    env["PYTHONPATH"] = os.pathsep.join([str(hook), env["PYTHONPATH"]])
    proc = train(tmp_path / "runs", *FAST, f"tracker={name}", f"tracker.mlflow.tracking_uri=sqlite:///{tmp_path}/m.db"
                 if name == "mlflow" else "name=missing", check=False, env=env)  # fmt: skip
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert errors == [
        f"ERROR: tracker={name} needs the {module} package, which is not installed: "
        f"pip install -e '.[{name}]' (or choose another tracker)"
    ], proc.stderr
    assert not list((tmp_path / "runs").glob("*/run.json"))  # a refusal before training writes no run
    assert ROOT.exists()
