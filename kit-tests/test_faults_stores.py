"""Fault injection, MLflow's store: a process killed while creating the sqlite store, and a damaged store
left by an older kit. Neither may break MLflow for the rest of the project, nor let training go on
silently."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import FAST, ROOT, only_run, project_env, train
from fault_helpers import backends_hold_the_log
from tracking_runs import needs, wait_for

CREATE = """
import sys
from pathlib import Path
from mlflow.tracking import MlflowClient
from runkit.tracking.backends.mlflow import _create_store
_create_store(Path(sys.argv[1]), MlflowClient)
"""


def _mlflow(db):
    return ["tracker=mlflow", f"tracker.mlflow.tracking_uri=sqlite:///{db}",
            f"tracker.mlflow.artifact_location={db.parent / 'art'}"]  # fmt: skip


@pytest.mark.slow
@needs("mlflow")
def test_a_kill_while_the_store_is_created_leaves_no_half_built_store(tmp_path):
    db = tmp_path / "mlruns.db"
    proc = subprocess.Popen([sys.executable, "-c", CREATE, str(db)], cwd=ROOT, env=project_env())
    try:
        # MLflow builds its schema in the aside file for seconds: kill it in the middle.
        wait_for(lambda: any(p.stat().st_size > 0 for p in tmp_path.glob(".mlruns.db.creating-*")), 120,
                 "the store being created")  # fmt: skip
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not db.exists()  # only the aside copy was half-built
    runs = tmp_path / "runs"
    train(runs, *FAST, *_mlflow(db))
    run_dir = only_run(runs)
    backends_hold_the_log(run_dir, ["mlflow"], "completed")
    assert not list(tmp_path.glob(".mlruns.db.creating-*"))  # the debris was cleared


@pytest.mark.slow
@needs("mlflow")
def test_a_damaged_store_is_named_with_its_fix_before_training(tmp_path):
    db = tmp_path / "mlruns.db"
    runs = tmp_path / "runs"
    train(runs, *FAST, *_mlflow(db), "name=first")
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num = '0584bdc529eb'")  # a stale schema version
    con.commit()
    con.close()
    proc = train(runs, *FAST, *_mlflow(db), "name=second", check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, proc.stderr
    assert f"the MLflow store {db} cannot be used" in errors[0] and f"mv {db} {db}.damaged" in errors[0]
    assert "Traceback" not in proc.stderr + proc.stdout
