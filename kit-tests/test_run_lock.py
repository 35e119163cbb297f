"""One session at a time: a run's training process and its shipper hold a lock on events.jsonl until both have
exited. A resume (or `runs sync`) that comes while an earlier session's shipper is still at work (draining the
log after a kill, closing a slow backend) waits for it, instead of writing over its lines and racing it on the
backend cursors; past tracking.lock_timeout it stops with one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from runkit.errors import UserError
from runkit.storage.events import decode
from runkit.storage.run_lock import RunLock
from runkit.tracking.sync import sync_run

from conftest import ROOT, project_env, train
from tracking_runs import api_run, first_run, record, start_train, wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX only")

HOLD = (
    "import sys, time\n"
    "from runkit.storage.run_lock import RunLock\n"
    "RunLock.acquire(sys.argv[1], 0, 'holder')\n"
    "print('held', flush=True)\n"
    "time.sleep(120)\n"
)
SLOW = {"_target_": "slow_backend.SlowBackend", "close_seconds": 0}


def hold_lock(events_file) -> subprocess.Popen:
    """Another process holding the run's lock, as a shipper still at work would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(events_file)], env=project_env(), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_a_run_in_use_is_waited_for_then_refused_in_one_line(tmp_path):
    events_file = tmp_path / "events.jsonl"
    holder = hold_lock(events_file)
    try:
        started = time.monotonic()
        with pytest.raises(UserError) as excinfo:
            RunLock.acquire(events_file, 0.5, "r1")
        assert time.monotonic() - started >= 0.5
        message = str(excinfo.value)
        assert "\n" not in message
        assert message.startswith("run r1 is still in use") and "tracking.lock_timeout" in message
    finally:
        stop(holder)
    lock = RunLock.acquire(events_file, 5, "r1")  # the holder's exit let go
    assert lock.held
    lock.release()


def test_a_lock_let_go_while_waiting_is_taken(tmp_path):
    events_file = tmp_path / "events.jsonl"
    holder = hold_lock(events_file)
    threading.Timer(0.5, stop, args=(holder,)).start()
    started = time.monotonic()
    lock = RunLock.acquire(events_file, 60, "r1")
    assert lock.held and 0.4 < time.monotonic() - started < 30
    lock.release()


def test_a_session_holds_its_run_until_it_finishes(tmp_path):
    from runkit.tracking import start_run

    from tracking_runs import compose

    tracker = start_run(compose(tmp_path / "runs", "name=held"))
    with pytest.raises(UserError, match="still in use"):
        RunLock.acquire(tracker.run_dir.events_file, 0, tracker.run_id)
    tracker.finish()
    RunLock.acquire(tracker.run_dir.events_file, 0, tracker.run_id).release()


def test_runs_sync_waits_for_a_shipper_at_work(tmp_path):
    run_dir = api_run(tmp_path / "runs")
    holder = hold_lock(run_dir / "events.jsonl")
    try:
        with pytest.raises(UserError, match="still in use"):
            sync_run(run_dir, "slow", SLOW, lock_timeout=0.3)
        assert not (run_dir / "shipper" / "slow.json").exists()  # nothing was sent, no cursor was moved
    finally:
        stop(holder)
    result = sync_run(run_dir, "slow", SLOW)
    assert result["status"] == "completed" and result["shipped"] > 0


@pytest.mark.slow
def test_a_resume_right_after_a_kill_waits_for_the_old_shipper(tmp_path):
    runs_dir = tmp_path / "runs"
    # The slow backend is importable by the trainer and its shipper; its close() takes 5 s, as a backend
    # with a backlog would, so the killed session's shipper is still at work when the resume starts.
    kit_tests = os.path.dirname(os.path.abspath(__file__))  # where slow_backend.py lives
    env = project_env(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT / "src"), kit_tests]))
    slow = ["+tracker.slow._target_=slow_backend.SlowBackend", "+tracker.slow.close_seconds=5"]
    long_run = ["epochs=400", "batch_size=16", "data.n_samples=512", "tracking.poll_interval=0.1"]
    proc = start_train(
        runs_dir, "tracker=local", *slow, *long_run, "name=killed", log=tmp_path / "killed.out", env=env
    )
    run_dir = wait_for(lambda: first_run(runs_dir), what="the run")
    wait_for(lambda: (run_dir / "checkpoints" / "last.pt").exists(), what="a checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.log_file.close()

    resumed = train(runs_dir, f"resume={run_dir}", "stop_after_epochs=1", check=False, env=env)
    assert record(run_dir)["status"] == "preempted", resumed.stderr

    calls = [json.loads(line) for line in (run_dir / "slow_backend.jsonl").read_text().splitlines()]
    old_pid, new_pid = calls[0]["pid"], calls[-1]["pid"]
    assert old_pid != new_pid
    old_closed = next(c for c in calls if c["pid"] == old_pid and c["call"] == "closed")
    new_opened = next(c for c in calls if c["pid"] == new_pid and c["call"] == "open")
    assert old_closed["status"] == "crashed" and new_opened["time"] > old_closed["time"]

    # One writer at a time: every line is whole, `crashed` comes before the resumed session, which started
    # only once the old shipper had finished.
    lines = (run_dir / "events.jsonl").read_bytes().splitlines()
    decoded = [decode(line) for line in lines]
    assert None not in decoded
    kinds = [(e["type"], (e.get("data") or {}).get("status")) for e in decoded]
    crashed, resume = kinds.index(("status", "crashed")), kinds.index(("resume", None))
    assert crashed < resume and decoded[resume]["time"] > old_closed["time"]
    seqs = [e["seq"] for e in decoded]
    assert len(set(seqs)) == len(seqs)
