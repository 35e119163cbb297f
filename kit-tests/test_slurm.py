"""Sweeps on a real single-node SLURM cluster (kit-tests/slurm_cluster.py): array jobs submitted through
sbatch, and preempted jobs that requeue themselves and continue the same run.
Skipped where SLURM is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend_readers import mlflow_runs_tagged
from conftest import ROOT, project_env, read_events
from repro_helpers import metric_history
from slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401 - the session fixture
from sweep_helpers import TINY, Sweep, run_record
from tracking_runs import wait_for

pytestmark = pytest.mark.slow


def slurm_overrides(cluster: SlurmCluster, timeout_min: int = 10) -> list[str]:
    return [
        "hydra/launcher=slurm",
        f"hydra.launcher.partition={cluster.partition}",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        "hydra.launcher.gpus_per_node=0",
        f"hydra.launcher.timeout_min={timeout_min}",
    ]


def start_multirun(runs: Path, cluster: SlurmCluster, *overrides: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", f"paths.runs_dir={runs}", *overrides]
    env = project_env(OMP_NUM_THREADS="1", **cluster.env())
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(proc: subprocess.Popen[str], cluster: SlurmCluster, timeout: float = 240) -> str:
    """Wait for the launching process; a requeued job is made eligible at once (SLURM holds a requeued job
    for about two minutes before it may start again)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0]
            raise AssertionError(f"sweep timed out; jobs {cluster.jobs()}\n{out}\n{cluster.log('slurmctld')}")
        for line in cluster.jobs():
            job, state = line.split("|")
            if state == "PENDING":
                cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)
        time.sleep(0.5)
    out = proc.communicate()[0]
    assert proc.returncode == 0, f"sweep failed ({proc.returncode}):\n{out}"
    return out


def test_a_sweep_runs_as_slurm_array_jobs(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:  # noqa: F811
    runs = tmp_path / "runs"
    proc = start_multirun(
        runs, slurm_cluster, *slurm_overrides(slurm_cluster), "seed=1,2", "tracker=local", *TINY
    )
    out = finish(proc, slurm_cluster)
    sweep = Sweep(runs, subprocess.CompletedProcess([], 0, out, out))
    record = sweep.record
    assert record["launcher"].endswith("runkit_slurm_launcher.launcher.SlurmLauncher")
    assert record["status"] == "completed" and record["counts"] == {"completed": 2}
    assert [job["status"] for job in record["jobs"]] == ["completed", "completed"]
    dirs = sweep.run_dirs()
    assert len(dirs) == 2 and {run_record(d)["status"] for d in dirs} == {"completed"}
    # Each job ran as a SLURM array task: submitit's logs are in the sweep directory, one folder per task.
    logs = sorted(p.name for p in (sweep.dir / ".submitit").iterdir() if "_" in p.name and p.is_dir())
    assert len(logs) == 2 and len({name.split("_")[0] for name in logs}) == 1, logs
    assert {json.loads((d / "run.json").read_text())["sweep"]["job_num"] for d in dirs} == {0, 1}


LONG = ["epochs=12", "batch_size=8", "data.n_samples=512", "seed=3", "tracking.poll_interval=0.1"]


@pytest.mark.parametrize("how", ["scontrol requeue", "SIGUSR2"])
def test_a_preempted_job_is_requeued_and_continues_the_same_run(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
    how: str,
) -> None:
    """`scontrol requeue` (SIGTERM, as preemption with PreemptMode=REQUEUE) or SIGUSR2 (submitit's signal
    before a time limit, or preemption on clusters that send it): the run ends `preempted` with its
    checkpoint, the job is requeued with resume=<run id>, and the same run ends `completed`."""
    runs = tmp_path / "runs"
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    tracker = ["tracker=mlflow", f"tracker.mlflow.tracking_uri={uri}"]
    proc = start_multirun(runs, slurm_cluster, *slurm_overrides(slurm_cluster), *LONG, *tracker)

    def run_with_two_epochs() -> Path | None:
        for run_file in runs.glob("sweeps/*/*/run.json"):
            ckpt = run_file.parent / "checkpoints" / "last.pt"
            events = (run_file.parent / "events.jsonl").read_bytes()
            if ckpt.is_file() and b'"epoch"' in events and events.count(b'"type":"metrics"') > 100:
                return run_file.parent
        return None

    run_dir = wait_for(run_with_two_epochs, 180, "a checkpointed run on the cluster")
    job = slurm_cluster.jobs()[0].split("|")[0]
    if how == "SIGUSR2":
        slurm_cluster.run("scancel", "--signal=USR2", job)
    else:
        slurm_cluster.run("scontrol", "requeue", job)
    finish(proc, slurm_cluster)

    sweep_dir = run_dir.parent
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["status"] == "completed" and record["counts"] == {"completed": 1}
    assert [p.parent for p in sweep_dir.glob("*/run.json")] == [run_dir]  # one run: the same directory
    run = run_record(run_dir)
    assert run["status"] == "completed" and run["resumed"] is True and len(run["resumes"]) == 1
    assert record["jobs"][0]["run_id"] == run["id"] and record["jobs"][0]["status"] == "completed"
    statuses = [e["data"]["status"] for e in read_events(run_dir) if e["type"] == "status"]
    assert statuses == ["preempted", "completed"]
    history = metric_history(run_dir)
    steps = sorted({step for step, name in history if name == "train/loss"})
    assert steps == list(range(1, steps[-1] + 1))  # every step once, no gap
    # Equal to an uninterrupted run of the same configuration.
    full_runs = tmp_path / "full"
    subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"paths.runs_dir={full_runs}", *LONG, "tracker=local"],
        cwd=ROOT,
        env=project_env(OMP_NUM_THREADS="1"),
        check=True,
        capture_output=True,
    )
    (full,) = [p.parent for p in full_runs.glob("*/run.json")]
    assert metric_history(full) == history
    # The same MLflow run, continued and finished.
    (mlrun,) = mlflow_runs_tagged(uri, run["id"])
    assert mlrun.info.status == "FINISHED"
    from mlflow.tracking import MlflowClient

    logged = [m.step for m in MlflowClient(uri).get_metric_history(mlrun.info.run_id, "val/acc")]
    assert sorted(set(logged)) == sorted({step for step, name in history if name == "val/acc"})


def test_a_multi_task_job_trains_as_one_ddp_run(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:  # noqa: F811
    """`hydra.launcher.tasks_per_node=2`: SLURM starts the job as two tasks (srun): two ranks, one run."""
    runs = tmp_path / "runs"
    overrides = [*slurm_overrides(slurm_cluster), "hydra.launcher.tasks_per_node=2", "seed=4"]
    proc = start_multirun(runs, slurm_cluster, *overrides, "tracker=local", *TINY)
    out = finish(proc, slurm_cluster)
    sweep = Sweep(runs, subprocess.CompletedProcess([], 0, out, out))
    assert sweep.record["counts"] == {"completed": 1}
    assert len(list((sweep.dir / "jobs").glob("*.json"))) == 1  # rank 1 wrote no job record
    (run_dir,) = sweep.run_dirs()
    rec = run_record(run_dir)
    assert rec["status"] == "completed"
    assert rec["distributed"]["world_size"] == 2 and rec["distributed"]["launcher"] == "submitit"
    assert json.loads((run_dir / "ranks" / "1.json").read_text())["status"] == "completed"
