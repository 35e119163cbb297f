"""Config composition: every group option composes and builds its class; bad overrides are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from runkit.sweeps.resolvers import register_resolvers

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
register_resolvers()


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=False)


def test_defaults_compose_with_top_level_knobs():
    cfg = compose_train("lr=0.01", "epochs=3", "batch_size=16")
    assert cfg.optimizer.lr == 0.01 and cfg.epochs == 3 and cfg.data.batch_size == 16
    assert cfg.scheduler.T_max == 3
    assert cfg.seed == 42


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONFIGS / "data").glob("*.yaml")))
def test_each_data_option_builds(option):
    cfg = compose_train(f"data={option}")
    data = instantiate(cfg.data)
    x, y = next(iter(data.train_loader()))
    assert x.shape[1] == data.num_features and y.max() < data.num_classes


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONFIGS / "optimizer").glob("*.yaml")))
def test_each_optimizer_and_scheduler_builds(option):
    cfg = compose_train(f"optimizer={option}")
    model = instantiate(cfg.model, in_features=4, num_classes=3)
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    for scheduler in sorted(p.stem for p in (CONFIGS / "scheduler").glob("*.yaml")):
        instantiate(compose_train(f"scheduler={scheduler}").scheduler)(optimizer)
    assert optimizer.param_groups[0]["lr"] == cfg.lr


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONFIGS / "tracker").glob("*.yaml")))
def test_each_tracker_option_targets_a_backend_module(option):
    cfg = compose_train(f"tracker={option}")
    assert list(cfg.tracker) == [option]
    target = cfg.tracker[option]._target_
    assert target.endswith("Backend") and f".tracking.backends.{option}." in target


def test_experiment_overrides_defaults():
    cfg = compose_train("experiment=digits_mlp")
    assert cfg.name == "digits-mlp" and cfg.data._target_.endswith(".Digits")
    assert list(cfg.model.hidden_sizes) == [128, 64]
