"""Exact resume: a run interrupted after 2 of 4 epochs and resumed ends bit for bit where an uninterrupted
run ends; `init_from` starts a new run from old weights; a resume that cannot be exact is refused, changing
nothing.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml
from omegaconf import OmegaConf

from runkit.errors import UserError
from runkit.repro.resume import merge_overrides, prepare_resume

from repro_helpers import (
    checkpoint_state,
    metric_history,
    read_events,
    record,
    shared_runs,
    snapshot,
    tensors_equal,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """full: seed=7, 4 epochs in one go. split: the same run stopped after epoch 2 (as a SIGTERM at that epoch
    boundary would), then resumed by id with no other override. warm: a new run initialised from full's
    weights, trained with lr=0. (Made once per session in repro_helpers.shared_runs.)"""
    shared = shared_runs(tmp_path_factory)
    return {**shared, "before": shared["split_before"]}


def test_the_interrupted_run_was_preempted_after_two_epochs(runs):
    assert runs["before"]["record"]["status"] == "preempted"
    epochs = [e["data"]["epoch"] for e in runs["before"]["events"] if "epoch" in (e["data"] or {})]
    assert epochs == [1, 2]
    assert checkpoint_state(runs["full"])["epoch"] == 4


def test_resume_continues_the_same_run(runs):
    split, before = runs["split"], runs["before"]["record"]
    rec = record(split)
    assert rec["id"] == before["id"] == split.name.rsplit("-", 1)[-1]
    assert rec["status"] == "completed" and rec["resumed"] is True
    assert rec["start_time"] == before["start_time"]
    last_epoch2_step = max(e["step"] for e in runs["before"]["events"] if e["type"] == "metrics")
    assert rec["resume_step"] == last_epoch2_step
    assert [s["from_step"] for s in rec["resumes"]] == [last_epoch2_step]
    config = yaml.safe_load((split / "config.yaml").read_text())
    assert config["epochs"] == 4 and config["seed"] == 7 and config["data"]["n_samples"] == 512
    # The run's overrides, without the session-only stop_after_epochs, with this session's and the seed used.
    assert yaml.safe_load((split / "overrides.yaml").read_text()) == [
        "data.n_samples=512",
        "tracker=local",
        "epochs=4",
        f"paths.runs_dir={split.parent}",
        "seed=7",
    ]
    assert (split / "resumes" / "1" / "git.json").is_file()


def test_the_log_marks_where_the_resumed_session_takes_over(runs):
    events = read_events(runs["split"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # one gap-free log across sessions
    marks = [e for e in events if e["type"] == "resume"]
    assert len(marks) == 1
    mark = marks[0]
    assert mark["data"]["from_step"] == mark["step"] == record(runs["split"])["resume_step"]
    assert mark["data"]["from_epoch"] == 2
    statuses = [e["data"]["status"] for e in events if e["type"] == "status"]
    assert statuses == ["preempted", "completed"]
    assert sum(e["type"] == "params" for e in events) == 1  # params are not logged again


def test_resumed_metrics_are_bit_for_bit_those_of_an_uninterrupted_run(runs):
    full, split = metric_history(runs["full"]), metric_history(runs["split"])
    assert len(full) > 40
    assert split == full  # every metric at every step, compared exactly (JSON floats round-trip exactly)
    full_summary = json.loads((runs["full"] / "summary.json").read_text())
    assert json.loads((runs["split"] / "summary.json").read_text()) == full_summary


def test_resumed_weights_optimizer_and_rng_are_bit_for_bit_identical(runs):
    for name in ("last.pt", "best.pt"):
        full, split = checkpoint_state(runs["full"], name), checkpoint_state(runs["split"], name)
        assert full["epoch"] == split["epoch"] and full["step"] == split["step"]
        for part in ("model", "optimizer", "scheduler"):
            assert tensors_equal(full[part], split[part]), f"{name}: {part}"
        assert tensors_equal(full["rng"]["torch"], split["rng"]["torch"])
        assert tensors_equal(full["rng"]["loader"], split["rng"]["loader"])


def test_init_from_starts_a_new_run_from_old_weights(runs):
    warm, full = runs["warm"], runs["full"]
    rec, source = record(warm), record(full)
    assert rec["id"] != source["id"] and not rec.get("resumed")
    assert rec["init_from"]["run_id"] == source["id"]
    assert rec["init_from"]["checkpoint"] == str(full / "checkpoints" / "last.pt")
    assert rec["init_from"]["path"] == str(full) and rec["init_from"]["epoch"] == 4
    tags = {k: v for e in read_events(warm) if e["type"] == "tags" for k, v in e["data"].items()}
    assert tags["init_from"] == source["id"]
    # Trained with lr=0, the new run's weights are exactly the ones it started from.
    assert tensors_equal(checkpoint_state(warm)["model"], checkpoint_state(full)["model"])
    assert checkpoint_state(warm)["epoch"] == 1  # its own counters, not the old run's


def test_a_resume_that_changes_the_model_is_refused_and_changes_nothing(runs):
    full, proc = runs["full"], runs["refused_resume"]  # `resume=<full> model.hidden_sizes=[8]`
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert "cannot resume run" in errors[0] and "model.hidden_sizes (run: [64, 64], now: [8])" in errors[0]
    assert snapshot(full) == runs["full_before"]
    assert len(list(full.parent.iterdir())) == 1


# --- refusals, checked in-process against copies of a real run ------------------------------------
def resume_cfg(runs_dir, ref, **changes):
    saved = OmegaConf.load(next(runs_dir.glob("*/config.yaml")))
    cfg = OmegaConf.merge(saved, {"resume": ref, "paths": {"runs_dir": str(runs_dir)}})
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value)
    return cfg


@pytest.fixture
def copy_of_full(runs, tmp_path):
    runs_dir = tmp_path / "runs"
    shutil.copytree(runs["full"], runs_dir / runs["full"].name)
    return runs_dir, runs_dir / runs["full"].name


def test_the_copy_itself_resumes_once_it_has_epochs_left(copy_of_full):
    """`resume=last` is the newest run that can be continued: not a completed one."""
    runs_dir, run = copy_of_full
    with pytest.raises(UserError, match="can be continued"):
        prepare_resume(resume_cfg(runs_dir, "last"))
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("epochs: 4", "epochs: 6"))
    (run / "run.json").write_text(json.dumps({**record(run), "status": "preempted"}))
    cfg, point = prepare_resume(resume_cfg(runs_dir, "last"))
    assert point.run_dir.path == run and point.epoch == 4 and cfg.resume == str(run) and cfg.epochs == 6


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("nothing", "no run matches 'nosuchrun'"),
        ("delete", "it has no checkpoint"),
        ("truncate", "is corrupt or unreadable"),
        ("garbage", "is corrupt or unreadable"),
        ("running", "is still running"),
        ("model", "model.hidden_sizes (run: [64, 64], now: [8])"),
        ("data", "data.n_features (run: 20, now: 7)"),
        ("seed", "seed (run: 7, now: 8)"),
        ("epochs", "cannot resume run {id} with epochs=6: it was planned for epochs=4"),
        ("completed", "run {id} has trained all its 4 epochs: nothing left to do; to train longer"),
    ],
)
def test_a_resume_that_cannot_be_exact_is_refused_before_anything_is_written(copy_of_full, damage, message):
    runs_dir, run = copy_of_full
    ckpt = run / "checkpoints" / "last.pt"
    ref, changes = run.name.rsplit("-", 1)[-1], {}
    if damage == "nothing":
        ref = "nosuchrun"
    elif damage == "delete":
        ckpt.unlink()
    elif damage == "truncate":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    elif damage == "garbage":
        ckpt.write_bytes(b"not a checkpoint")
    elif damage == "running":
        rec = record(run)
        (run / "run.json").write_text(json.dumps({**rec, "status": "running", "pid": os.getpid()}))
    elif damage == "model":
        changes = {"model.hidden_sizes": [8]}
    elif damage == "data":
        changes = {"data.n_features": 7}
    elif damage == "seed":
        changes = {"seed": 8}
    elif damage == "epochs":
        changes = {"epochs": 6}
    before = snapshot(runs_dir)
    with pytest.raises(UserError) as err:
        prepare_resume(resume_cfg(runs_dir, ref, **changes))
    assert message.format(id=ref) in str(err.value) and "\n" not in str(err.value)
    assert snapshot(runs_dir) == before


def test_overrides_of_a_resume_replace_the_runs_own():
    saved = ["epochs=4", "optimizer=sgd", "stop_after_epochs=2", "+extra=1", "seed=3"]
    assert merge_overrides(saved, ["epochs=6", "resume=abc"]) == [
        "optimizer=sgd",
        "+extra=1",
        "seed=3",
        "epochs=6",
        "resume=abc",
    ]
