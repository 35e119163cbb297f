"""Preflight checks: bad group options and bad science knobs are one-line UserErrors, before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from omegaconf import OmegaConf

from runkit.errors import UserError
from runkit.preflight import check_group_options, check_knobs, require

from conftest import ROOT

CONFIGS = ROOT / "configs"


@pytest.mark.parametrize(
    "override",
    ["tracker=[mlflow,nosuch]", "tracker=nosuch", "tracker=local,nosuch", "optimizer=adamw", "data=[x]"],
)
def test_an_unknown_group_option_names_the_valid_ones(override):
    with pytest.raises(UserError) as error:
        check_group_options([override], CONFIGS)
    group = override.split("=")[0]
    valid = sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))
    assert str(error.value).endswith("choose from " + ", ".join(valid))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "override", ["tracker=[tensorboard,mlflow]", "tracker=local", "lr=1e-3", "+x=1", "~tags", "seed=1,2"]
)
def test_valid_overrides_pass(override):
    check_group_options([override], CONFIGS)


@dataclass(frozen=True)
class Knobs:
    lr: float
    epochs: int
    seed: int | None
    metric: str = field(metadata={"key": "monitor.metric"})

    def __post_init__(self) -> None:
        require(self.lr > 0, f"lr must be positive, not {self.lr}")
        require(self.epochs >= 1, f"epochs must be at least 1, not {self.epochs}")


def cfg(**over):
    base = {"lr": 1e-3, "epochs": 2, "seed": None, "monitor": {"metric": "val/acc"}}
    return OmegaConf.create({**base, **over})


def test_good_knobs_come_back_typed():
    knobs = check_knobs(cfg(lr=1), Knobs)
    assert knobs == Knobs(lr=1.0, epochs=2, seed=None, metric="val/acc") and isinstance(knobs.lr, float)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"lr": "abc"}, "lr='abc' is not a number"),
        ({"epochs": 1.5}, "epochs=1.5 is not an integer"),
        ({"epochs": True}, "epochs=True is not an integer"),
        ({"epochs": -1}, "epochs must be at least 1, not -1"),
        ({"lr": 0}, "lr must be positive, not 0.0"),
        ({"monitor": {"metric": 3}}, "monitor.metric=3 is not a string"),
    ],
)
def test_bad_knobs_are_one_line(over, message):
    with pytest.raises(UserError, match="^" + message.replace("(", r"\(").replace(".", r"\.") + "$"):
        check_knobs(cfg(**over), Knobs)
