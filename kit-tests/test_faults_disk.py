"""Fault injection, a full disk: at the start (one line, no run left behind) and at the end (one line that
says what was kept; the status the run really ended with, also once space is freed and `runs sync` runs).
The runs are written on a small tmpfs mounted for the test (root only; skipped with the reason otherwise)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from backend_readers import steps_by_metric, tb_scalars
from conftest import FAST, train
from ddp_helpers import ddp_env
from fault_helpers import same_points
from tracking_runs import compose, events, needs


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, and `fill()` to use up its space."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")

    class Disk:
        path = mount

        @staticmethod
        def fill() -> Path:
            filler = mount / f"filler-{uuid.uuid4().hex[:6]}"
            with open(filler, "wb") as f, contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            return filler

    try:
        yield Disk
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_at_the_start_is_one_line_and_leaves_no_run(small_disk):
    runs = small_disk.path / "runs"
    runs.mkdir()
    small_disk.fill()
    proc = train(runs, *FAST, "tracker=local", check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert (
        len(errors) == 1
        and "no space left on device writing" in errors[0]
        and "no run was created" in errors[0]
    )
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert list(runs.iterdir()) == []


def test_a_full_disk_at_the_end_is_absorbed_by_the_logs_reserved_window(small_disk):
    """The log's window is reserved on disk: cutting its unwritten rest at the end frees room for the
    run's last files, so a disk that filled up during training still gets a whole ending."""
    from runkit.tracking import start_run

    tracker = start_run(compose(small_disk.path / "runs", "name=full"))
    for step in range(1, 201):
        tracker.log_metrics({"train/loss": 1.0 / step}, step=step)
    small_disk.fill()
    tracker.finish("completed")
    assert json.loads((tracker.path / "run.json").read_text())["status"] == "completed"
    assert json.loads((tracker.path / "summary.json").read_text())["last_step"] == 200


@needs("tensorboard")
def test_a_full_disk_at_the_end_keeps_the_status_and_sync_settles_it(small_disk):
    from runkit.errors import UserError
    from runkit.tracking import start_run
    from runkit.tracking.sync import sync_run

    runs = small_disk.path / "runs"
    tracker = start_run(compose(runs, "name=full", "tracking.memory_map=false"))  # no reserved window
    for step in range(1, 201):
        tracker.log_metrics({"train/loss": 1.0 / step}, step=step)
    filler = small_disk.fill()
    with pytest.raises(UserError) as raised:
        tracker.finish("completed")
    message = str(raised.value)
    assert message.startswith("no space left on device:") and "\n" not in message
    assert "The run is completed" in message and f"runs sync {tracker.run_id}" in message
    run_dir = tracker.path
    log = events(run_dir)
    assert log[-1]["type"] == "status" and log[-1]["data"]["status"] == "completed"
    assert [s for s, _ in steps_by_metric(log)["train/loss"]] == list(range(1, 201))

    filler.unlink()  # space again: the run's end is recorded from its log, not as a crash
    gone = subprocess.run(["true"], check=True)  # the training process has exited since: a pid that is gone
    rec = json.loads((run_dir / "run.json").read_text())
    rec["pid"] = int(subprocess.check_output(["sh", "-c", "echo $$"]).strip())
    (run_dir / "run.json").write_text(json.dumps(rec))
    assert gone.returncode == 0 and rec["status"] == "running"
    result = sync_run(run_dir, "tensorboard")
    assert result["status"] == "completed"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    same_points(
        tb_scalars(run_dir / "tensorboard")["train/loss"], steps_by_metric(log)["train/loss"], "TB", True
    )


@pytest.mark.slow
@needs("tensorboard")
def test_a_disk_that_fills_after_training_is_one_line_and_resume_completes_the_run(small_disk):
    """A real `python train.py` whose disk fills once its epochs are done, as its test report is written:
    one line that names the file and what was kept, the same status everywhere; then, with space again,
    `resume=` runs what was left (the report) and completes the run."""
    runs = small_disk.path / "runs"
    filling = [
        "model._target_=disk_faults.DiskFillingMLP",
        f"+model.fill_dir={small_disk.path}",
        "+model.fill_at_eval=3",  # epochs=2: two validations, then the test report
    ]
    proc = train(runs, *FAST, "tracker=tensorboard", *filling, check=False, env=ddp_env())
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("ERROR:")]
    (run_dir,) = [p.parent for p in runs.glob("*/run.json")]
    run_id = run_dir.name.rsplit("-", 1)[-1]
    assert f"no space left on device writing {run_dir.name}/media/confusion_matrix.png" in line, line
    assert (
        f"run {run_id} failed" in line
        and "kept: events.jsonl, checkpoints/best.pt, checkpoints/last.pt" in line
    )
    assert f"python train.py resume={run_id}" in line
    log = events(run_dir)
    assert log[-1]["type"] == "status" and log[-1]["data"]["status"] == "failed"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    assert json.loads((run_dir / "shipper" / "tensorboard.json").read_text())["closed"] == "failed"
    same_points(
        tb_scalars(run_dir / "tensorboard")["train/loss"], steps_by_metric(log)["train/loss"], "TB", True
    )

    (small_disk.path / "filler").unlink()
    again = train(runs, f"resume={run_id}", check=False, env=ddp_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert (run_dir / "media" / "confusion_matrix.png").stat().st_size > 0
    assert events(run_dir)[-1]["data"]["status"] == "completed"
