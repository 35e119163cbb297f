"""Multi-process training: `torchrun --nproc_per_node=2 train.py` on the CPU (gloo) is ONE run: one run
directory, one run per backend, metrics reduced over ranks; a rank's failure, death or preemption reaches
the run; a resumed DDP run continues exactly."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml

from backend_readers import mlflow_runs_tagged, tb_scalars, wandb_run
from conftest import FAST, only_run, read_events
from ddp_helpers import FAULTY, history, start_torchrun, torchrun
from tracking_runs import BACKENDS, session_dir, tracker_overrides

pytestmark = pytest.mark.slow


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.fixture(scope="module")
def full_run() -> Path:
    """seed=7, 2 epochs on 2 processes, every backend of the project at once."""
    runs = session_dir() / "ddp-full"
    torchrun(runs, *FAST, "seed=7", *tracker_overrides(BACKENDS), "tracking.finish_timeout=120")
    return only_run(runs)


def test_one_run_directory_owned_by_rank_0(full_run: Path) -> None:
    rec = record(full_run)
    assert rec["status"] == "completed"
    assert rec["distributed"] == {
        "world_size": 2,
        "backend": "gloo",
        "launcher": "torchrun",
        "rank_seeds": [7, 8],
    }
    assert [p.name for p in (full_run / "ranks").iterdir()] == ["1.json"]
    assert json.loads((full_run / "ranks" / "1.json").read_text())["status"] == "completed"
    assert sorted(p.name for p in (full_run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert sum(e["type"] == "params" for e in read_events(full_run)) == 1


def test_each_step_is_logged_once_with_global_metrics(full_run: Path) -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(full_run / "config.yaml")
    data = instantiate(cfg.data)
    # 2 ranks: each sees ceil(n_train / 2) samples per epoch (DistributedSampler pads), in batches.
    per_rank = -(-len(data.train_set) // 2)
    steps_per_epoch = -(-per_rank // cfg.batch_size)
    loss = history(full_run, "train/loss")
    assert [s for s, _ in loss] == list(range(1, 2 * steps_per_epoch + 1))
    events = [e for e in read_events(full_run) if e["type"] == "metrics" and "train/loss" in e["data"]]
    assert len(events) == 2 * steps_per_epoch  # each step once (rank 1 logs nothing)

    # val/acc of the last epoch is the global accuracy of the last checkpoint on the whole validation set.
    model = instantiate(cfg.model, in_features=data.num_features, num_classes=data.num_classes)
    model.load_state_dict(torch.load(full_run / "checkpoints" / "last.pt", weights_only=False)["model"])
    model.eval()
    x, y = data.val_set.tensors
    with torch.no_grad():
        acc = (model(x).argmax(dim=1) == y).sum().item() / len(y)
    assert history(full_run, "val/acc")[-1][1] == acc


@pytest.mark.skipif(not BACKENDS, reason="no backend in this project")
def test_one_run_in_each_backend(full_run: Path) -> None:
    from tracking_runs import mlflow_uri

    rec = record(full_run)
    loss_steps = [s for s, _ in history(full_run, "train/loss")]
    if "tensorboard" in BACKENDS:
        runs = list((full_run / "tensorboard").rglob("events.out.tfevents.*"))
        assert len(runs) == 1
        assert [s for s, _ in tb_scalars(full_run / "tensorboard")["train/loss"]] == loss_steps
    if "mlflow" in BACKENDS:
        found = mlflow_runs_tagged(mlflow_uri(), rec["id"])
        assert len(found) == 1 and found[0].info.status == "FINISHED"
    if "wandb" in BACKENDS:
        stored = wandb_run(full_run)
        assert len(stored["files"]) == 1 and set(stored["ids"]) == {rec["id"]}
        assert stored["exit_codes"] == [0]


def test_resumed_ddp_run_equals_uninterrupted(full_run: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    torchrun(runs, *FAST, "seed=7", "tracker=local", "stop_after_epochs=1")
    split = only_run(runs)
    assert record(split)["status"] == "preempted"
    # The first epoch of the interrupted run is the first epoch of the uninterrupted one: same seed, same
    # world size, same result.
    first = history(split, "train/loss")
    assert first == history(full_run, "train/loss")[: len(first)]
    torchrun(runs, f"resume={record(split)['id']}")
    assert only_run(runs) == split
    rec = record(split)
    assert rec["status"] == "completed" and rec["resumed"] is True
    assert rec["resumes"][0]["distributed"]["world_size"] == 2
    for key in ("train/loss", "val/acc", "val/loss", "test/acc"):
        assert history(split, key) == history(full_run, key), key
    a = torch.load(split / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(full_run / "checkpoints" / "last.pt", weights_only=False)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert len(a["rng_ranks"]) == 2


def test_init_from_under_ddp(full_run: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    torchrun(runs, *FAST, "epochs=1", "tracker=local", f"init_from={full_run}")
    rec = record(only_run(runs))
    assert rec["status"] == "completed" and rec["init_from"]["run_id"] == record(full_run)["id"]


def test_a_failing_rank_fails_the_run_with_its_traceback(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    backends = [b for b in BACKENDS if b == "mlflow"]
    overrides = [*FAST, *tracker_overrides(backends), FAULTY, "+model.fail_rank=1", "+model.fail_at=3"]
    proc = torchrun(runs, *overrides, check=False)
    assert proc.returncode != 0
    run = only_run(runs)
    rec = record(run)
    assert rec["status"] == "failed", (rec, proc.stderr[-3000:])
    text = (run / "traceback.txt").read_text()
    assert "rank 1 of 2 failed" in text and "injected failure on rank 1 at step 3" in text
    assert "RuntimeError: injected failure on rank 1 at step 3" in rec["error"]
    statuses = [e["data"]["status"] for e in read_events(run) if e["type"] == "status"]
    assert statuses == ["failed"]
    if backends:  # the backend's one run is closed as failed too
        from tracking_runs import mlflow_uri

        found = mlflow_runs_tagged(mlflow_uri(), rec["id"])
        assert len(found) == 1 and found[0].info.status == "FAILED"


def test_a_killed_rank_crashes_the_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    overrides = [
        *FAST,
        "tracker=local",
        FAULTY,
        "+model.fail_rank=1",
        "+model.fail_at=3",
        "+model.fail_how=kill",
    ]
    proc = torchrun(runs, *overrides, check=False)
    assert proc.returncode != 0
    run = only_run(runs)
    rec = record(run)
    assert rec["status"] == "crashed", (rec, proc.stderr[-3000:])
    assert "rank 1 of 2" in rec["error"] and "died without a word" in rec["error"]


def test_sigterm_to_the_job_preempts_the_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = start_torchrun(runs, *FAST, "epochs=3", "tracker=local", FAULTY, "+model.delay=0.2")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = list(runs.glob("*/ranks/1.json"))
            if found and any(e["type"] == "metrics" for e in read_events(found[0].parent.parent)):
                break
            time.sleep(0.2)
        else:
            pytest.fail("training never started")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = only_run(runs)
    rec = record(run)
    assert rec["status"] == "preempted", (rec, out[-3000:])
    assert json.loads((run / "ranks" / "1.json").read_text())["status"] == "preempted"
    # Preempted at a step, not at an epoch boundary: the resume command is the way on.
    assert yaml.safe_load((run / "config.yaml").read_text())["epochs"] == 3
