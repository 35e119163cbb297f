"""Fault injection, secrets: a secret given on the command line is masked everywhere the run is recorded
(run directory, every backend's own files, MLflow's params), while training still gets the real value."""

from __future__ import annotations

import pytest

from runkit.storage.secrets import MASK, Secrets

from backend_readers import mlflow_run
from conftest import FAST, only_run, train
from fault_helpers import every_file_text
from tracking_runs import BACKENDS, needs, record, tracker_overrides

SECRET = "clipass999"
TOKEN = "tok-4f2a9c1e"


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("db_password", True),
        ("tracker.wandb.api_key", True),
        ("hf_token", True),
        ("client_secret", True),
        ("aws.AccessKey", True),
        ("credentials", True),
        ("key", False),  # a bare `key` names many things (a sort key, a dict key)
        ("monitor.key_x", False),
        ("tokenizer", False),
        ("max_tokens", False),
        ("keys", False),
        ("tracking.secret_keys", True),  # a list: looked at, never masked as a whole
    ],
)
def test_which_keys_are_secret(key, secret):
    assert Secrets().is_secret(key) is secret


def test_masking_a_config_and_overrides():
    secrets = Secrets(["db.uri", "*_dsn"])
    cfg = {
        "db": {"uri": "postgres://u:p@h/x", "password": "pw", "port": 5},
        "sentry_dsn": "https://k@s",
        "lr": 0.1,
    }
    cfg["tracking"] = {"secret_keys": ["db.uri"]}
    masked = secrets.mapping(cfg)
    assert masked["db"] == {"uri": MASK, "password": MASK, "port": 5} and masked["sentry_dsn"] == MASK
    assert masked["lr"] == 0.1 and masked["tracking"]["secret_keys"] == ["db.uri"]
    assert cfg["db"]["password"] == "pw"  # a copy
    assert secrets.overrides(["+db_password=x", "lr=0.1", "+db.uri=y", "-m"]) == [
        f"+db_password={MASK}",
        "lr=0.1",
        f"+db.uri={MASK}",
        "-m",
    ]


@pytest.mark.slow
@needs("tensorboard", "mlflow", "wandb")
def test_a_secret_override_is_recorded_nowhere(tmp_path):
    runs = tmp_path / "runs"
    proc = train(
        runs,
        *FAST,
        *tracker_overrides(BACKENDS),
        f"+db_password={SECRET}",
        f"+service.auth_token={TOKEN}",
        "+tracking.secret_keys=[service.auth_token]",
    )
    run_dir = only_run(runs)
    leaks = [
        str(p)
        for p, data in every_file_text(run_dir).items()
        if SECRET.encode() in data or TOKEN.encode() in data
    ]
    assert leaks == []
    assert SECRET not in proc.stdout + proc.stderr
    rec = record(run_dir)
    assert f"+db_password={MASK}" in rec["overrides"]
    ids = rec["backends"]["mlflow"]
    stored = mlflow_run(ids["tracking_uri"], ids["run_id"])
    assert stored["params"]["db_password"] == MASK and SECRET not in str(stored["params"])
    db = ids["tracking_uri"][len("sqlite:///") :]
    with open(db, "rb") as f:
        assert SECRET.encode() not in f.read()


def test_a_secret_override_of_a_sweep_is_recorded_nowhere_in_the_sweep(tmp_path):
    """sweep.json, the job records (.jobs/), the summaries and every job's run directory."""
    from sweep_helpers import TINY, run_sweep

    sweep = run_sweep(tmp_path / "runs", "lr=1e-3,1e-2", *TINY, "tracker=local", f"+db_password={SECRET}")
    leaks = [str(p) for p, data in every_file_text(sweep.dir).items() if SECRET.encode() in data]
    assert leaks == []
    assert len(sweep.run_dirs()) == 2 and SECRET not in sweep.proc.stdout + sweep.proc.stderr
