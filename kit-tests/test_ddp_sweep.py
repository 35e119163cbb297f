"""A sweep whose jobs are multi-process: submitit with `tasks_per_node=2` starts each job as two tasks, which
train it as the two ranks of ONE DDP run. The sweep has one record and one run per job (rank 0's), the run
equals the same training under torchrun, and a rank that fails fails its job, with that rank's traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FAST, only_run, read_events
from ddp_helpers import FAULTY, ddp_env, history, torchrun
from sweep_helpers import Sweep, run_record

pytestmark = [pytest.mark.slow]

TASKS = ["hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2", "tracker=local"]


def multitask_sweep(runs: Path, *overrides: str) -> Sweep:
    import subprocess
    import sys

    from conftest import ROOT

    cmd = [sys.executable, str(ROOT / "train.py"), "-m", f"paths.runs_dir={runs}", *TASKS, *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, env=ddp_env(), capture_output=True, text=True, timeout=600)
    return Sweep(runs, proc)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    pytest.importorskip("submitit")
    done = multitask_sweep(tmp_path_factory.mktemp("tasks") / "runs", *FAST, "seed=7,8")
    assert done.proc.returncode == 0, done.proc.stdout + done.proc.stderr
    return done


def test_each_job_is_one_ddp_run_with_one_record(sweep: Sweep) -> None:
    record = sweep.record
    assert record["status"] == "completed" and record["counts"] == {"completed": 2}
    jobs = sorted((sweep.dir / "jobs").glob("*.json"))
    assert [json.loads(p.read_text())["job_num"] for p in jobs] == [0, 1]  # rank 1 wrote no record
    runs = sweep.run_dirs()
    assert len(runs) == 2
    for job_num, run_dir in enumerate(runs):
        rec = run_record(run_dir)
        seed = 7 + job_num
        assert rec["status"] == "completed" and rec["sweep"]["job_num"] == job_num
        assert rec["distributed"] == {
            "world_size": 2,
            "backend": "gloo",
            "launcher": "submitit",
            "rank_seeds": [seed, seed + 1],
        }
        assert json.loads((run_dir / "ranks" / "1.json").read_text())["status"] == "completed"
    rows = sweep.csv_rows()
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert all(r["run_id"] for r in rows), rows


def test_a_job_trains_as_the_same_run_under_torchrun(sweep: Sweep, tmp_path: Path) -> None:
    """Same seed, same world size: the submitit job's run and a torchrun run log the same history."""
    torchrun(tmp_path / "runs", *FAST, "seed=7", "tracker=local")
    alone = only_run(tmp_path / "runs")
    job = sweep.run_dirs()[0]
    for key in ("train/loss", "val/acc"):
        assert history(job, key) == history(alone, key)


def test_a_failing_rank_fails_its_job_with_its_traceback(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    done = multitask_sweep(
        tmp_path / "runs", *FAST, "seed=1", FAULTY, "+model.fail_rank=1", "+model.fail_at=3"
    )
    assert done.record["counts"] == {"failed": 1}, done.proc.stderr[-3000:]
    (run_dir,) = done.run_dirs()
    rec = run_record(run_dir)
    assert rec["status"] == "failed"
    assert "rank 1 of 2 failed" in (run_dir / "traceback.txt").read_text()
    assert "injected failure on rank 1 at step 3" in rec["error"]
    statuses = [e["data"]["status"] for e in read_events(run_dir) if e["type"] == "status"]
    assert statuses == ["failed"]
    (job,) = [json.loads(p.read_text()) for p in (done.dir / "jobs").glob("*.json")]
    assert job["status"] == "failed" and job["run_id"] == rec["id"]
