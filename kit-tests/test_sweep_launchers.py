"""Parallel and cluster launchers: the same sweep through joblib (local processes) and submitit_local (the
local flavour of the SLURM launcher). Jobs run in other processes yet share one sweep directory and summary.
"""

from __future__ import annotations

import pytest

from sweep_helpers import TINY, run_record, run_sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    runs = tmp_path_factory.mktemp("joblib") / "runs"
    return run_sweep(
        runs, "seed=1,2,3,4", *TINY, "tracker=local", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"
    )


@pytest.fixture(scope="module")
def submitit_sweep(tmp_path_factory):
    pytest.importorskip("submitit")
    runs = tmp_path_factory.mktemp("submitit") / "runs"
    return run_sweep(runs, "lr=1e-3,1e-2", *TINY, "tracker=local", "hydra/launcher=submitit_local")


def test_joblib_runs_four_jobs_in_worker_processes(joblib_sweep):
    record = joblib_sweep.record
    assert record["launcher"].endswith("JoblibLauncher")
    runs = [run_record(d) for d in joblib_sweep.run_dirs()]
    assert [r["sweep"]["job_num"] for r in runs] == [0, 1, 2, 3]
    assert all(r["status"] == "completed" and r["pid"] != record["pid"] for r in runs)
    assert {r["seed"] for r in runs} == {1, 2, 3, 4}


def test_joblib_jobs_share_one_sweep_id_and_directory(joblib_sweep):
    ids = {run_record(d)["sweep"]["id"] for d in joblib_sweep.run_dirs()}
    assert ids == {joblib_sweep.record["id"]}
    assert len(list((joblib_sweep.runs / "sweeps").iterdir())) == 1


def test_joblib_sweep_is_summarised(joblib_sweep):
    rows = joblib_sweep.csv_rows()
    assert [r["status"] for r in rows] == ["completed"] * 4 and [r["seed"] for r in rows] == [
        "1",
        "2",
        "3",
        "4",
    ]
    assert sum(r["is_best"] == "true" for r in rows) == 1
    # seed is the only swept key: one group over all four seeds
    [group] = joblib_sweep.record["seed_groups"]
    assert group["n"] == 4 and group["params"] == {} and group["std"] is not None
    assert "over seeds" in joblib_sweep.proc.stderr


def test_submitit_local_runs_each_job_as_a_submitit_job(submitit_sweep):
    record = submitit_sweep.record
    assert record["launcher"].endswith("LocalLauncher") and record["status"] == "completed"
    runs = [run_record(d) for d in submitit_sweep.run_dirs()]
    assert len(runs) == 2 and all(r["status"] == "completed" for r in runs)
    assert all(r["pid"] != record["pid"] for r in runs)
    assert {r["sweep"]["id"] for r in runs} == {record["id"]}
    assert (submitit_sweep.dir / ".submitit").is_dir()  # submitit's own logs stay inside the sweep


def test_submitit_local_sweep_is_summarised(submitit_sweep):
    rows = submitit_sweep.csv_rows()
    assert [(r["lr"], r["status"]) for r in rows] == [("0.001", "completed"), ("0.01", "completed")]
    assert all(float(r["best"]) > 0 for r in rows)


def test_joblib_jobs_say_which_job_each_line_is_from(joblib_sweep):
    """Parallel jobs share the terminal: each job's log lines carry its number, and the launcher's raw
    `Joblib.Parallel(n_jobs=...)` line is not shown."""
    out = joblib_sweep.proc.stdout + joblib_sweep.proc.stderr
    assert "Joblib.Parallel(" not in out
    for job in range(4):
        assert f"[job {job}] epoch 1/1" in out, out[-3000:]
