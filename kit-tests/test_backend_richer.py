"""What researchers see in each tool, read back through the tools' own readers: the run's real start and end
times, the files that define a run, native source fields, system metrics of the trainer, images, tables,
the dataset, TensorBoard's HParams experiment for a sweep, sweep jobs named by their swept values, and an
MLflow sweep parent that does not answer queries meant for its jobs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from runkit.repro.dataset import describe
from runkit.tracking.media import confusion_image, encode_png, table_rows

from backend_readers import (
    mlflow_run,
    tb_hparams,
    tb_images,
    tb_scalars,
    tb_texts,
    wandb_records,
    wandb_run,
)
from conftest import FAST, only_run, read_events, train
from sweep_helpers import TINY, run_sweep
from tracking_runs import BACKENDS, needs, record, session_dir, tracker_overrides


# --- pure pieces -------------------------------------------------------------------------------------------
def test_png_encoder_and_tables_from_every_shape(tmp_path):
    from PIL import Image

    pixels = (np.arange(24, dtype=np.uint8).reshape(2, 4, 3) * 10).astype(np.uint8)
    (tmp_path / "a.png").write_bytes(encode_png(pixels))
    with Image.open(tmp_path / "a.png") as image:
        assert image.size == (4, 2) and np.array_equal(np.asarray(image), pixels)
    grey = confusion_image([[3, 1], [0, 4]], cell=5)
    assert grey.shape == (10, 10, 3) and grey.dtype == np.uint8
    assert table_rows([{"a": 1, "b": 2}, {"a": 3}]) == (["a", "b"], [[1, 2], [3, None]])
    assert table_rows({"x": [1, 2], "y": [3, 4]}) == (["x", "y"], [[1, 3], [2, 4]])
    assert table_rows([[1, 2]], columns=["p", "q"]) == (["p", "q"], [[1, 2]])


def test_dataset_fingerprint_tells_data_apart():
    from research_project.data import SyntheticClassification

    a = describe(SyntheticClassification(n_samples=64, batch_size=8, val_fraction=0.25, test_fraction=0.25))
    b = describe(SyntheticClassification(n_samples=64, batch_size=8, val_fraction=0.25, test_fraction=0.25))
    c = describe(
        SyntheticClassification(
            n_samples=64, batch_size=8, val_fraction=0.25, test_fraction=0.25, data_seed=1
        )
    )
    assert a == b and a["fingerprint"] != c["fingerprint"]
    assert a["splits"] == {"train": 32, "val": 16, "test": 16}
    assert sum(a["classes"]["train"].values()) == 32 and a["name"] == "SyntheticClassification"


# --- one run with every backend, sampled often -------------------------------------------------------------
@pytest.fixture(scope="module")
def run() -> Path:
    runs = session_dir() / "richer"
    overrides = [*tracker_overrides(BACKENDS), "tracking.system_metrics_interval=0.2", "name=rich"]
    train(runs, *FAST, "epochs=3", *overrides, "lr=0.002")
    return only_run(runs)


def test_the_run_directory_holds_history_dataset_media_and_system(run):
    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and {"step", "val/loss", "val/acc"} <= set(rows[0])
    dataset = json.loads((run / "dataset.json").read_text())
    assert dataset["name"] == "SyntheticClassification" and len(dataset["fingerprint"]) == 16
    assert (run / "media" / "confusion_matrix.png").is_file()
    assert (run / "media" / "test_predictions.csv").read_text().startswith("label,predicted,confidence")
    samples = [json.loads(line) for line in (run / "system.jsonl").read_text().splitlines()]
    assert samples and all(s["system/rss_mb"] > 10 for s in samples)
    assert all(s["system/children"] == 0 for s in samples)  # num_workers=0; the shipper is not counted
    assert {"system/cpu_percent", "system/children_rss_mb", "time"} <= set(samples[0])


@needs("mlflow")
def test_mlflow_times_files_native_fields_media_dataset_and_system(run):
    rec = record(run)
    ids = rec["backends"]["mlflow"]
    stored = mlflow_run(ids["tracking_uri"], ids["run_id"])
    info = stored["client"].get_run(ids["run_id"]).info
    assert abs(info.start_time / 1000 - rec["start_time"]) < 1.0  # the run's own start
    # ... and its own end: when the status was logged (run.json's end_time also counts the wait for backends)
    ended = [e for e in read_events(run) if e["type"] == "status"][-1]["time"]
    assert abs(info.end_time / 1000 - ended) < 0.01 and info.end_time / 1000 <= rec["end_time"]
    tags = stored["tags"]
    assert tags["mlflow.source.name"] == "train.py" and tags["mlflow.runName"] == f"rich-{rec['id']}"
    assert tags["mlflow.user"] and "lr=0.002" in tags["overrides"].split()
    if (rec.get("git") or {}).get("commit"):
        assert tags["mlflow.source.git.commit"] == rec["git"]["commit"]
    artifacts = set(stored["artifacts"])
    assert {"config.yaml", "overrides.yaml", "environment.json", "train.log", "dataset.json"} <= artifacts
    assert "tables/test_predictions.json" in artifacts and "media/test_predictions.csv" in artifacts
    assert any(a.startswith("images/confusion_matrix") for a in artifacts)  # MLflow's image series
    assert "system/rss_mb" in stored["metrics"] and "train/lr" in stored["metrics"]
    inputs = stored["client"].get_run(ids["run_id"]).inputs.dataset_inputs
    fingerprint = json.loads((run / "dataset.json").read_text())["fingerprint"]
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("SyntheticClassification", fingerprint)]


@needs("wandb")
def test_wandb_program_args_files_timestamps_media_and_our_system_metrics(run):
    stored = wandb_run(run)
    records = [r for path in stored["files"] for r in wandb_records(path)]
    env = next(r for kind, r in records if kind == "environment" and r.program)
    assert env.program == "train.py" and "lr=0.002" in list(env.args)
    assert not any(a.startswith("-m") or a.endswith("shipper") for a in env.args)
    assert {"config.yaml", "overrides.yaml", "environment.json", "output.log", "dataset.json"} <= set(
        stored["saved"]
    )
    assert not any(kind == "stats" for kind, _ in records)  # W&B's own stats (of the shipper) are off
    system = [row for row in stored["history"] if "system/rss_mb" in row]
    assert system and all(row["system/rss_mb"] > 10 for row in system)
    rec = record(run)
    metric_rows = [row for row in stored["history"] if "train/loss" in row]
    assert all(rec["start_time"] <= row["_timestamp"] <= rec["end_time"] for row in metric_rows)
    keys = {key for row in stored["history"] for key in row}
    assert {"images/confusion_matrix/_type", "tables/test_predictions/_type"} <= keys  # wandb.Image, Table
    assert (
        stored["config"]["dataset.fingerprint"]
        == json.loads((run / "dataset.json").read_text())["fingerprint"]
    )
    assert "lr=0.002" in stored["config"]["overrides"]


@needs("tensorboard")
def test_tensorboard_texts_images_system_checkpoints_and_one_status(run):
    log_dir = run / "tensorboard"
    texts = tb_texts(log_dir)
    assert "lr=0.002" in texts["run/overrides"][0][1] and "lr: 0.002" in texts["run/config"][0][1]
    assert texts["run/status"] == [(texts["run/status"][0][0], "completed")]  # written once
    assert "fingerprint" in texts["run/dataset"][0][1]
    assert texts["tables/test_predictions"][0][1].startswith("| label | predicted | confidence |")
    assert {"checkpoints/last", "checkpoints/best"} <= set(texts)
    assert "images/confusion_matrix" in tb_images(log_dir)
    scalars = tb_scalars(log_dir)
    assert "system/rss_mb" in scalars and "train/lr" in scalars and "lr" not in scalars
    hparams, status = tb_hparams(log_dir)
    assert status == "STATUS_SUCCESS" and hparams["lr"] == 0.002
    assert hparams["dataset.fingerprint"] == json.loads((run / "dataset.json").read_text())["fingerprint"]
    assert "best/val/acc" in scalars


# --- a sweep -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("richer-sweep")
    overrides = ["lr=0.001,0.01", *TINY, f"tracker=[{','.join(BACKENDS)}]"]
    if "mlflow" in BACKENDS:
        overrides += [
            f"tracker.mlflow.tracking_uri=sqlite:///{root}/mlruns.db",
            f"tracker.mlflow.artifact_location={root}/mlartifacts",
        ]
    return run_sweep(root / "runs", *overrides)


@needs("tensorboard")
def test_tensorboard_hparams_experiment_puts_the_swept_params_first(sweep):
    from tensorboard.plugins.hparams import metadata

    from backend_readers import tb_accumulator

    for run_dir in sweep.run_dirs():
        acc = tb_accumulator(run_dir / "tensorboard")
        content = acc.SummaryMetadata(metadata.EXPERIMENT_TAG).plugin_data.content
        experiment = metadata.parse_experiment_plugin_data(content)
        names = [info.name for info in experiment.hparam_infos]
        assert names[:2] == ["lr", "sweep"] and "train/lr" not in names
        # TensorBoard's dashboard sorts the columns by `differs`, then by name: only the swept ones differ.
        assert [info.name for info in experiment.hparam_infos if info.differs] == ["lr", "sweep"]
        assert "seed" in names and "epochs" in names  # the science knobs follow
        assert not [n for n in names if n.split(".")[0] in ("paths", "tracking", "git", "hydra", "tracker")]
        metrics = [info.name.tag for info in experiment.metric_infos]
        assert metrics[0] == "best/val/acc" and {"test/acc", "test/loss"} <= set(metrics)
        hparams, _ = tb_hparams(run_dir / "tensorboard")
        assert hparams["sweep"] == sweep.record["id"]


@needs("mlflow")
def test_mlflow_sweep_jobs_are_named_by_their_values_and_the_parent_keeps_to_itself(sweep):
    from mlflow.tracking import MlflowClient

    grouping = sweep.record["backends"]["mlflow"]
    client = MlflowClient(tracking_uri=grouping["tracking_uri"])
    experiments = [grouping["experiment_id"]]
    names = sorted(
        r.info.run_name
        for r in client.search_runs(experiments, f"tags.mlflow.parentRunId = '{grouping['run_id']}'")
    )
    assert names == ["train lr=0.001", "train lr=0.01"]
    found = client.search_runs(experiments, "params.lr = '0.001'")
    assert [r.data.tags["run_id"] for r in found] == [
        record(d)["id"] for d in sweep.run_dirs() if "lr=0.001" in record(d)["overrides"]
    ]
    parent = client.get_run(grouping["run_id"])
    assert not parent.data.params
    assert json.loads(parent.data.tags["sweep.grid"]) == {"lr": ["0.001", "0.01"]}
    best = json.loads(parent.data.tags["best"])
    assert best["run_id"] in {record(d)["id"] for d in sweep.run_dirs()}
    best_run = client.get_run(parent.data.tags["best_job_run_id"])
    assert best_run.data.tags["run_id"] == best["run_id"]
    assert {"summary.md", "summary.csv"} <= {a.path for a in client.list_artifacts(grouping["run_id"])}


@needs("wandb")
def test_wandb_sweep_jobs_are_named_by_their_values(sweep):
    names = sorted(wandb_run(d)["names"][0] for d in sweep.run_dirs())
    assert names == ["train lr=0.001", "train lr=0.01"]


@needs("tensorboard", "mlflow")
def test_runs_sync_brings_the_system_metrics_to_a_backend_that_gets_the_run_later(tmp_path):
    """system.jsonl (sampled by the live shipper) reaches a backend the run is synced into afterwards."""
    from runkit.tracking.sync import sync_run

    runs = tmp_path / "runs"
    train(runs, *FAST, "tracker=tensorboard", "tracking.system_metrics_interval=0.2")
    run = only_run(runs)
    samples = [json.loads(line) for line in (run / "system.jsonl").read_text().splitlines()]
    assert samples and "system/rss_mb" in samples[0]
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    spec = {"_target_": "runkit.tracking.backends.mlflow.MlflowBackend", "tracking_uri": uri}
    spec["artifact_location"] = str(tmp_path / "art")
    sync_run(run, "mlflow", spec)
    from mlflow.tracking import MlflowClient

    ids = record(run)["backends"]["mlflow"]
    history = MlflowClient(tracking_uri=uri).get_metric_history(ids["run_id"], "system/rss_mb")
    assert len(history) == len(samples)
    assert [round(m.value, 2) for m in history] == [s["system/rss_mb"] for s in samples]
