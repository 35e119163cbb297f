"""Fault injection, delivery: the trainer and its shipper (W&B's writer with it) killed together, then
`runs sync`; a damaged events.jsonl. After each fault, every backend's own storage is read back."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runkit.storage.events import EventWriter, read_events, scan_damage
from runkit.tracking.sync import sync_run

from backend_readers import wandb_run
from conftest import project_env
from fault_helpers import LONG, backends_hold_the_log, kill_family, runs_cli
from tracking_runs import (
    BACKENDS,
    api_run,
    first_run,
    metric_lines,
    needs,
    record,
    start_train,
    tracker_overrides,
    wait_for,
)


# --- 1. the whole process family killed: every backend ends with every step after `runs sync` -------------
def _killed_mid_run(tmp_path, backends, name, env=None, metrics=0, delay=0.0):
    """A run of `backends` whose trainer and shipper (W&B's writer with it) are killed together once W&B's
    cursor has moved (the shipper believes W&B holds those events), `delay` seconds later."""
    runs = tmp_path / "runs"
    overrides = [*tracker_overrides(backends), *LONG, f"name={name}"]
    proc = start_train(runs, *overrides, log=tmp_path / "out.txt", env=env)
    try:
        run_dir = wait_for(lambda: first_run(runs), what="the run")
        wait_for(lambda: metric_lines(run_dir) >= metrics, 180, "metrics")
        wait_for(
            lambda: json.loads((run_dir / "shipper" / "wandb.json").read_text())["seq"] > 20,
            120,
            "W&B cursor",
        )
        time.sleep(delay)
    finally:
        kill_family(proc.pid)
        proc.wait(timeout=60)
        proc.log_file.close()
    return run_dir


@pytest.mark.slow
@needs("tensorboard", "mlflow", "wandb")
def test_killing_trainer_and_shipper_together_loses_nothing_once_synced(tmp_path):
    run_dir = _killed_mid_run(tmp_path, BACKENDS, "killpg", metrics=80)
    assert record(run_dir)["status"] == "running"
    for name in BACKENDS:
        result = runs_cli("sync", str(run_dir), "--to", name)
        assert f"synced {record(run_dir)['id']} -> {name}" in result.stdout
    stored = backends_hold_the_log(run_dir, BACKENDS, "crashed")
    assert stored["mlflow"]["status"] == "FAILED"
    assert stored["wandb"]["exit_codes"][-1] == 1
    # A second sync changes nothing anywhere.
    before = len(wandb_run(run_dir)["history"])
    for name in BACKENDS:
        assert "up to date" in runs_cli("sync", str(run_dir), "--to", name).stdout
    assert len(wandb_run(run_dir)["history"]) == before
    backends_hold_the_log(run_dir, BACKENDS, "crashed")


@pytest.mark.slow
@needs("tensorboard", "mlflow", "wandb")
@pytest.mark.parametrize("delay", [0.8])
def test_a_kill_while_backends_take_a_batch_leaves_no_repeat_after_sync(tmp_path, delay):
    """Killed at a moment of the shipper's work, not right after a cursor moved: W&B's writer (a process of
    its own session) may write out a batch its cursor was never saved for; `runs sync` must not resend it."""
    run_dir = _killed_mid_run(tmp_path, BACKENDS, "killpg", delay=delay)
    for name in BACKENDS:
        runs_cli("sync", str(run_dir), "--to", name)
    backends_hold_the_log(run_dir, BACKENDS, "crashed")


@needs("wandb")
def test_a_batch_w_and_b_holds_twice_is_found_by_sync_and_rebuilt(tmp_path, caplog):
    """Whatever made a session send a batch again (the orphaned writer of a killed run writing on after the
    check of its run file; here a cursor reset to the start, as an older copy of shipper/ would be), `runs
    sync` reads back what W&B holds, finds metrics held twice and rebuilds the history: each step once."""
    run_dir = api_run(tmp_path / "runs", status="failed")
    sync_run(run_dir, "wandb")
    cursor = run_dir / "shipper" / "wandb.json"
    cursor.write_text(json.dumps({**json.loads(cursor.read_text()), "offset": 0, "seq": 0, "closed": None}))
    with caplog.at_level(logging.WARNING, logger="runkit.tracking.backends.wandb_rebuild"):
        sync_run(run_dir, "wandb")
    assert any("points twice" in r.getMessage() for r in caplog.records)
    stored = backends_hold_the_log(run_dir, ["wandb"], "failed")["wandb"]
    assert len(stored["files"]) == 1 and stored["exit_codes"] == [1]
    assert sync_run(run_dir, "wandb")["up_to_date"]


@pytest.mark.slow
@needs("wandb")
def test_a_run_started_under_someone_elses_wandb_service_syncs_after_a_kill(tmp_path):
    """W&B hands its service to the children of a process that uses W&B itself (`WANDB_SERVICE`: a notebook,
    a test process, `wandb beta core start`). A run started from there and killed must not have left its
    stream in that service, or `runs sync` finds the run id "in use" for as long as the service lives."""
    import psutil

    wandb_cli = str(Path(sys.executable).with_name("wandb"))
    started = subprocess.run(
        [wandb_cli, "beta", "core", "start", "--idle-timeout", "5m"],
        env={k: v for k, v in project_env().items() if k != "WANDB_SERVICE"},  # none of this process's
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = started.stdout.strip()
    launcher = token.split("-")[1]
    service = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "wandb-core" and launcher in (p.info["cmdline"] or [])
    ]
    assert service, token
    env = project_env(OMP_NUM_THREADS="1", WANDB_SERVICE=token)
    try:
        run_dir = _killed_mid_run(tmp_path, ["wandb"], "inherited", env=env)
        runs_cli("sync", str(run_dir), "--to", "wandb", env=env)
        backends_hold_the_log(run_dir, ["wandb"], "crashed")
    finally:
        for process in service:
            process.kill()


# --- 3. a damaged events.jsonl: readers skip the damage, say where it is, and read on ----------------------
def _log(path, steps=100):
    writer = EventWriter(path)
    writer.write("params", {"lr": 0.1})
    for step in range(1, steps + 1):
        writer.write_metrics(("loss",), (1.0 / step,), step)
    writer.close()


def test_nul_bytes_inside_the_log_are_skipped_and_reported_with_the_lost_events(tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    _log(path)
    data = bytearray(path.read_bytes())
    data[2000:2300] = b"\0" * 300  # a block the file system lost
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="runkit.storage.events"):
        seqs = [e["seq"] for _, e in read_events(path)]
        [e for _, e in read_events(path)]  # a second read does not warn again
    assert seqs[0] == 1 and seqs[-1] == 101 and 90 < len(seqs) < 101  # the events after the damage are read
    damage = scan_damage(path)
    assert len(damage) == 1 and damage[0].kind == "nul bytes"
    lost = set(range(1, 102)) - set(seqs)
    assert damage[0].seqs == (min(lost), max(lost)) and damage[0].start <= 2000 < 2300 <= damage[0].end
    assert f"{path}: nul bytes at bytes {damage[0].start}-{damage[0].end}" in damage[0].describe()
    warnings = [r.getMessage() for r in caplog.records if "damaged event log" in r.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0]


def test_a_garbage_line_is_reported_with_its_seq_and_a_missing_line_as_a_gap(tmp_path):
    path = tmp_path / "events.jsonl"
    _log(path, 20)
    lines = path.read_bytes().split(b"\n")
    lines[5] = b"not json at all"  # seq 6
    del lines[10]  # seq 11 gone without a trace
    path.write_bytes(b"\n".join(lines))
    damage = scan_damage(path)
    assert [(d.kind, d.seqs) for d in damage] == [("unreadable line", (6, 6)), ("missing events", (11, 11))]
    assert "events seq 6 lost" in damage[0].describe()


def test_a_live_writers_unwritten_window_is_the_end_not_damage(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    for step in range(1, 11):
        writer.write_metrics(("loss",), (float(step),), step)
    assert path.stat().st_size > 1000 and path.read_bytes().endswith(b"\0")  # the mapped window's NUL tail
    assert [e["step"] for _, e in read_events(path)] == list(range(1, 11)) and scan_damage(path) == []
    writer.close()
    assert scan_damage(path) == [] and scan_damage(tmp_path / "none.jsonl") == []


@pytest.mark.slow
def test_runs_show_says_the_log_is_damaged(tmp_path):
    from conftest import FAST, only_run, train

    runs = tmp_path / "runs"
    train(runs, *FAST, "tracker=local")
    run_dir = only_run(runs)
    data = bytearray((run_dir / "events.jsonl").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\0" * 64
    (run_dir / "events.jsonl").write_bytes(bytes(data))
    shown = json.loads(runs_cli("show", str(run_dir), "--json").stdout)
    assert len(shown["log_damage"]) == 1 and "nul bytes at bytes" in shown["log_damage"][0]
    text = runs_cli("show", str(run_dir)).stdout
    assert "event log" in text and "DAMAGED:" in text  # what a person sees, not only --json
