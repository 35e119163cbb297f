"""Unit tests of our Optuna sweeper plugin's pieces (no training): search space, override values, seeding,
what counts as a score, and its registration with Hydra."""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")

from hydra_plugins.runkit_optuna_sweeper.sweeper import (  # noqa: E402
    OptunaSweeper,
    override_value,
    trial_value,
)


def make_sweeper(**kwargs) -> OptunaSweeper:
    options = dict(
        direction="max",
        n_trials=3,
        n_jobs=1,
        sampler="tpe",
        seed=7,
        n_startup_trials=2,
        storage=None,
        study_name=None,
        params={"lr": "tag(log, interval(1e-5, 1e-1))", "epochs": "3"},
    )
    return OptunaSweeper(**{**options, **kwargs})


def test_search_space_from_params_and_command_line():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space, fixed = make_sweeper().search_space(
        ["batch_size=choice(32,64)", "layers=int(interval(1,4))", "epochs=1"]
    )
    assert space["lr"][1] == FloatDistribution(1e-5, 1e-1, log=True)
    assert space["batch_size"][1] == CategoricalDistribution([32, 64])
    assert space["layers"][1] == IntDistribution(1, 4)
    assert fixed == ["epochs=1"]  # the command line wins over hydra.sweeper.params


def test_override_values_read_back_as_what_was_sampled():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for value in (0.0013292918943162175, 3, "adam", "a b", "it's"):
        [override] = parser.parse_overrides([f"x={override_value(value)}"])
        assert override.value() == value


def test_the_seeded_sampler_proposes_the_same_trials():
    from optuna.distributions import FloatDistribution

    def proposals():
        study = optuna.create_study(direction="maximize", sampler=make_sweeper()._sampler())
        return [study.ask({"lr": FloatDistribution(1e-5, 1e-1, log=True)}).params["lr"] for _ in range(3)]

    assert proposals() == proposals()


@pytest.mark.parametrize(
    ("value", "expected"), [(0.5, 0.5), (float("nan"), None), (float("inf"), None), ("x", None), (None, None)]
)
def test_only_a_finite_number_is_a_score(value, expected):
    from hydra.core.utils import JobReturn, JobStatus

    ret = JobReturn()
    ret.status, ret.return_value = JobStatus.COMPLETED, value
    assert trial_value(ret) == expected


def test_a_job_that_raised_is_a_failed_trial():
    from hydra.core.utils import JobReturn, JobStatus

    ret = JobReturn()
    ret.status, ret.return_value = JobStatus.FAILED, RuntimeError("boom")
    assert trial_value(ret) is None


def test_the_sweeper_config_is_registered_with_hydra():
    from hydra.core.config_store import ConfigStore

    import hydra_plugins.runkit_optuna_sweeper.config  # noqa: F401

    node = ConfigStore.instance().load("hydra/sweeper/runkit_optuna.yaml").node
    assert node._target_.endswith("_optuna_sweeper.sweeper.OptunaSweeper") and node.n_trials == 10
