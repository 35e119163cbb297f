"""A sweep in every chosen backend, read back with each backend's own reader: jobs grouped by sweep (MLflow
parent run with a child per job, W&B group, TensorBoard log dirs under the sweep with HParams), and each job's
backend run finished with that job's status. Job 1 fails (scheduler.T_max=0), so a status mix is checked."""

from __future__ import annotations

import pytest

from sweep_helpers import TINY, backend_available, run_record, run_sweep

pytestmark = pytest.mark.slow

BACKENDS = [name for name in ("tensorboard", "mlflow", "wandb") if backend_available(name)]
if not BACKENDS:
    pytest.skip("no tracking backend other than the run directory in this project", allow_module_level=True)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("backends")
    overrides = ["scheduler.T_max=1,0", *TINY, f"tracker=[{','.join(BACKENDS)}]"]
    if "mlflow" in BACKENDS:
        overrides += [
            f"tracker.mlflow.tracking_uri=sqlite:///{root}/mlruns.db",
            f"tracker.mlflow.artifact_location={root}/mlartifacts",
        ]
    return run_sweep(root / "runs", *overrides, check=False)


@pytest.fixture(scope="module")
def jobs(sweep):
    """(status, run dir) per job, from the sweep's own record."""
    assert sweep.proc.returncode == 1, sweep.proc.stderr  # one job failed
    return [(job["status"], sweep.dir / job["run_dir"]) for job in sweep.record["jobs"]]


def test_each_job_is_finished_with_its_own_status_in_the_run_directory(jobs):
    assert [status for status, _ in jobs] == ["completed", "failed"]
    first, second = (run_record(d) for _, d in jobs)
    assert first["end_time"] <= second["start_time"]
    assert set(first["backends"]) >= set(BACKENDS) and set(second["backends"]) >= set(BACKENDS)


@pytest.mark.skipif("mlflow" not in BACKENDS, reason="MLflow not chosen")
def test_mlflow_parent_run_with_one_child_per_job(sweep, jobs):
    from mlflow.tracking import MlflowClient

    from backend_readers import mlflow_run

    grouping = sweep.record["backends"]["mlflow"]
    uri, parent_id = grouping["tracking_uri"], grouping["run_id"]
    parent = mlflow_run(uri, parent_id)
    assert parent["status"] == "FAILED" and parent["tags"]["sweep_id"] == sweep.record["id"]
    client = MlflowClient(tracking_uri=uri)
    children = client.search_runs(
        [grouping["experiment_id"]], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    by_run_id = {r.data.tags["run_id"]: r.info.status for r in children}
    expected = {"completed": "FINISHED", "failed": "FAILED"}
    assert by_run_id == {run_record(d)["id"]: expected[status] for status, d in jobs}


@pytest.mark.skipif("wandb" not in BACKENDS, reason="W&B not chosen")
def test_wandb_runs_are_grouped_by_the_sweep(sweep, jobs):
    from backend_readers import wandb_run

    group = sweep.record["backends"]["wandb"]["group"]
    assert sweep.record["id"] in group
    for status, run_dir in jobs:
        stored = wandb_run(run_dir)
        assert set(stored["groups"]) == {group}
        assert stored["exit_codes"][-1] == (0 if status == "completed" else 1)


@pytest.mark.skipif("tensorboard" not in BACKENDS, reason="TensorBoard not chosen")
def test_tensorboard_log_dirs_live_under_the_sweep_with_hparams(sweep, jobs):
    from backend_readers import tb_hparams

    statuses = {"completed": "STATUS_SUCCESS", "failed": "STATUS_FAILURE"}
    t_max = set()
    for status, run_dir in jobs:
        log_dir = run_dir / "tensorboard"
        assert sweep.dir in log_dir.parents and list(log_dir.glob("events.out.tfevents.*"))
        hparams, end = tb_hparams(log_dir)
        assert end == statuses[status]
        t_max.add(hparams["scheduler.T_max"])
    assert t_max == {1, 0}  # the swept knob is an hparam the HParams view compares
