"""The sweeper's config, registered as `hydra/sweeper=<package>_optuna` (e.g. research_project_optuna)."""

# No `from __future__ import annotations`: Hydra's plugin scan executes this module without registering it
# in sys.modules, and a dataclass with string annotations then cannot be built.
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

PACKAGE = __name__.rsplit(".", 1)[0]
NAME = PACKAGE.rsplit(".", 1)[-1].removesuffix("_sweeper")


@dataclass
class OptunaSweeperConf:
    _target_: str = f"{PACKAGE}.sweeper.OptunaSweeper"
    # maximize | minimize (max | min accepted: hparams_search/optuna.yaml passes monitor.mode)
    direction: str = "maximize"
    # The study's size: finished trials (complete or pruned) it should hold. A continued search (same
    # storage and study name) runs only the missing ones; failed trials do not count.
    n_trials: int = 10
    # Trials asked and launched together: run in parallel by a parallel launcher (joblib, submitit).
    n_jobs: int = 1
    sampler: str = "tpe"  # tpe | random
    seed: int | None = None  # the sampler's seed: the same seed proposes the same trials
    n_startup_trials: int = 5  # TPE: random trials before its model is used
    # Optuna storage URL, e.g. sqlite:///<sweep dir>/optuna.db; null keeps the study in memory.
    storage: str | None = None
    study_name: str | None = None
    # Search space in Hydra's override syntax: `lr: tag(log, interval(1e-5, 1e-1))`,
    # `batch_size: choice(32, 64, 128)`, `layers: int(interval(1, 4))`; a plain value is fixed for all trials.
    params: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name=NAME, node=OptunaSweeperConf, provider=PACKAGE)
