"""TensorBoard, read back from its event files with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import math

import pytest
import yaml

from runkit.storage.status import Status
from runkit.tracking.backends.base import RunInfo
from runkit.tracking.backends.tensorboard import TensorBoardBackend
from runkit.tracking.sync import sync_run

from backend_readers import steps_by_metric, tb_hparams, tb_images, tb_scalars, tb_texts
from tracking_runs import api_run, events, fanout_run, record


@pytest.fixture(scope="module")
def run():
    return fanout_run()


@pytest.mark.slow
def test_every_metric_is_a_scalar_at_our_global_step(run):
    stored = tb_scalars(run / "tensorboard")
    expected = steps_by_metric(events(run))
    assert set(expected) <= set(stored) and len(expected["train/loss"]) > 10
    # besides the log's metrics: the trainer's system metrics and the monitored metric's best value
    assert all(name.startswith(("system/", "best/")) for name in set(stored) - set(expected))
    for name, points in expected.items():
        assert [s for s, _ in stored[name]] == [s for s, _ in points], name
        # TensorBoard keeps float32
        assert [v for _, v in stored[name]] == pytest.approx([v for _, v in points], rel=1e-6), name


@pytest.mark.slow
def test_log_dir_run_identity_status_and_hparams(run):
    rec = record(run)
    assert rec["backends"]["tensorboard"]["log_dir"] == str(run / "tensorboard")
    texts = tb_texts(run / "tensorboard")
    assert f"id: {rec['id']}" in texts["run/info"][0][1]
    assert texts["run/status"][-1][1] == "completed"
    # one record per alias: `best` is not hidden behind `last` when both are saved at one step
    assert texts["checkpoints/best"][-1][1].startswith("checkpoints/best.pt")
    assert texts["checkpoints/last"][-1][1].startswith("checkpoints/last.pt")
    assert [text for _, text in texts["run/status"]] == ["completed"]  # written once
    hparams, status = tb_hparams(run / "tensorboard")
    assert status == "STATUS_SUCCESS"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (
        hparams["lr"] == pytest.approx(config["lr"]) and hparams["optimizer._target_"] == "torch.optim.Adam"
    )
    assert hparams["tags"] == "[fan, out]"


def test_figures_text_tags_and_nan_through_the_shipper_code_path(tmp_path):
    run = api_run(tmp_path / "runs")
    result = sync_run(run, "tensorboard")
    assert result["status"] == "completed" and result["shipped"] == len(events(run))
    log_dir = run / "tensorboard"
    scalars = tb_scalars(log_dir)
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, 21))
    assert math.isnan(scalars["val/acc"][0][1])
    images = tb_images(log_dir)
    step, width, height, png = images["figures/curve"][0]
    assert step == 20 and width > 50 and height > 50 and png == (run / "figures" / "curve.png").read_bytes()
    texts = tb_texts(log_dir)
    assert texts["text/notes.txt"][0][1] == "hello from the tracker"
    assert texts["run/tags"][-1][1] == "team=vision"
    assert any(text.startswith("artifacts/extra.csv") for _, text in texts["artifacts/file"])


def test_a_resumed_session_replaces_the_steps_it_repeats(tmp_path):
    """The first session logged steps 1..8 and died; the second resumes from its checkpoint at step 4 (kept)
    and logs 5..8 again, which replace the first session's."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def session(resumed, start, value):
        backend = TensorBoardBackend(flush_secs=1)
        info = RunInfo("abcd1234", "t", run_dir, resumed=resumed, resume_step=start - 1 if resumed else None)
        backend.open(info)
        for s in range(start, 9):
            backend.log_metrics(s, {"m": value}, 1.0 + s)
        backend.close(Status.COMPLETED)

    session(False, 1, 1.0)
    session(True, 5, 2.0)
    assert tb_scalars(run_dir / "tensorboard")["m"] == [
        (1, 1.0),
        (2, 1.0),
        (3, 1.0),
        (4, 1.0),
        (5, 2.0),
        (6, 2.0),
        (7, 2.0),
        (8, 2.0),
    ]
