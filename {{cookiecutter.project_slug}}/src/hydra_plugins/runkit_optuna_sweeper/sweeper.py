"""OptunaSweeper: ask Optuna for trials, run them through Hydra's launcher, tell Optuna the results.

Each trial is one Hydra job (any launcher: basic, joblib, submitit); its job number is the trial number. The
task function returns the monitored metric; NaN, an exception or a non-number marks the trial FAIL (never a
score). The study lives in `storage` (sqlite in the sweep directory by default), so re-running the same
search with `sweep.resume=<sweep dir>` continues it: only the missing trials run.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from runkit.overrides import override_key
from runkit.storage.layout import OPTUNA_RESULTS_FILE, SWEEP_STOP_FILE

log = logging.getLogger(__name__)

DIRECTIONS: dict[str, Literal["maximize", "minimize"]] = {
    "max": "maximize",
    "maximize": "maximize",
    "min": "minimize",
    "minimize": "minimize",
}
_PLAIN = re.compile(r"[\w./:@+-]+")


def _config_error(message: str) -> NoReturn:
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


def override_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back."""
    if isinstance(value, str) and not _PLAIN.fullmatch(value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value) if isinstance(value, float) else str(value)


def distribution(override: Override) -> Any:
    """The Optuna distribution of a sweep override: choice/range -> categorical, interval -> float or int
    (tag(log, ...) for a log scale); None for a plain (fixed) value."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not override.is_sweep_override():
        return None
    if override.is_choice_sweep() or override.is_range_sweep():
        return CategoricalDistribution(
            list(cast(Any, override.sweep_iterator(transformer=Transformer.encode)))
        )
    if override.is_interval_sweep():
        value = cast(Any, override.value())
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{override.input_line}: not a search space Optuna understands")


class OptunaSweeper(Sweeper):
    def __init__(
        self,
        direction: str,
        n_trials: int,
        n_jobs: int,
        sampler: str,
        seed: int | None,
        n_startup_trials: int,
        storage: str | None,
        study_name: str | None,
        params: DictConfig | dict[str, Any] | None,
    ) -> None:
        self.direction = str(direction)
        self.n_trials, self.n_jobs = int(n_trials), max(1, int(n_jobs))
        self.sampler_name, self.seed, self.n_startup_trials = str(sampler), seed, int(n_startup_trials)
        self.storage, self.study_name = storage, study_name
        plain = OmegaConf.to_container(params, resolve=True) if OmegaConf.is_config(params) else params
        self.params: dict[str, Any] | None = (
            {str(k): v for k, v in plain.items()} if isinstance(plain, dict) else None
        )
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    # --- search space ------------------------------------------------------------------------------------
    def search_space(self, arguments: list[str]) -> tuple[dict[str, tuple[str, Any]], list[str]]:
        """({param: (override key, distribution)}, fixed overrides); the command line wins over `params`."""
        lines = [f"{k}={v}" for k, v in (self.params or {}).items()] + list(arguments)
        loader = self.hydra_context.config_loader if self.hydra_context is not None else None
        parser = OverridesParser.create(config_loader=loader)
        by_key: dict[str, Override] = {}
        for override in parser.parse_overrides(lines):
            by_key[override_key(override.get_key_element())] = override
        space: dict[str, tuple[str, Any]] = {}
        fixed: list[str] = []
        for name, override in by_key.items():
            dist = distribution(override)
            if dist is None:
                fixed.append(override.input_line or f"{override.get_key_element()}={override.value()}")
            else:
                space[name] = (override.get_key_element(), dist)
        return space, fixed

    def _sampler(self) -> Any:
        import optuna

        if self.sampler_name == "tpe":
            return optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=self.n_startup_trials)
        if self.sampler_name == "random":
            return optuna.samplers.RandomSampler(seed=self.seed)
        _config_error(f"hydra.sweeper.sampler={self.sampler_name}: use tpe or random")

    # --- the search --------------------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> Any:
        import optuna
        from optuna.trial import TrialState

        assert self.config is not None and self.launcher is not None
        direction = DIRECTIONS.get(self.direction.lower())
        if direction is None:
            _config_error(f"hydra.sweeper.direction={self.direction}: use maximize/max or minimize/min")
        try:
            space, fixed = self.search_space(arguments)
        except ValueError as exc:
            _config_error(f"hydra.sweeper.params: {exc}")
        if not space:
            _config_error("hparams_search: no search space (hydra.sweeper.params holds no interval/choice)")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            storage=self.storage,
            study_name=self.study_name,
            sampler=self._sampler(),
            direction=direction,
            load_if_exists=True,
        )
        # Trials left RUNNING by an interrupted session will never report: they failed.
        for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(stale.number, state=TrialState.FAIL, skip_if_finished=True)
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        to_go = self.n_trials - done
        log.info(
            "Optuna study %r (%s, %s): %d trials done, %d to run, %d at a time; storage %s",
            study.study_name,
            direction,
            self.sampler_name,
            done,
            max(to_go, 0),
            self.n_jobs,
            self.storage or "in memory",
        )
        distributions = {name: dist for name, (_, dist) in space.items()}
        returns: list[JobReturn] = []
        while to_go > 0:
            trials = [study.ask(distributions) for _ in range(min(self.n_jobs, to_go))]
            batch = [
                [f"{space[name][0]}={override_value(value)}" for name, value in t.params.items()] + fixed
                for t in trials
            ]
            results = self.launcher.launch(batch, initial_job_idx=trials[0].number)
            for trial, overrides, ret in zip(trials, batch, results, strict=True):
                value = trial_value(ret)
                trial.set_user_attr("overrides", overrides)
                if value is None:
                    study.tell(trial, state=TrialState.FAIL)
                    log.warning("trial %d failed (%s)", trial.number, " ".join(overrides))
                else:
                    study.tell(trial, value)
                    log.info("trial %d: %.6g (%s)", trial.number, value, " ".join(overrides))
            returns.extend(results)
            to_go -= len(trials)
            failed = any(trial_value(r) is None for r in results)
            if (sweep_dir / SWEEP_STOP_FILE).exists() or (failed and self._fail_fast()):
                log.warning("search stopped after trial %d", trials[-1].number)
                break
        self._write_results(study, sweep_dir)
        return returns

    def _fail_fast(self) -> bool:
        assert self.config is not None
        return bool(OmegaConf.select(self.config, "sweep.fail_fast", default=False))

    def _write_results(self, study: Any, sweep_dir: Path) -> None:
        from optuna.trial import TrialState

        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        results: dict[str, Any] = {
            "name": "optuna",
            "study_name": study.study_name,
            "storage": self.storage,
            "direction": study.direction.name.lower(),
            "trials": {
                state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
                for state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
            },
        }
        if completed:
            best = study.best_trial
            results.update(best_trial=best.number, best_value=best.value, best_params=best.params)
            log.info("best trial %d: %.6g with %s", best.number, best.value, best.params)
        OmegaConf.save(OmegaConf.create(results), sweep_dir / OPTUNA_RESULTS_FILE)


def trial_value(ret: JobReturn) -> float | None:
    """The trial's score, or None when the job failed (exception, NaN, infinite, not a number)."""
    if ret.status != JobStatus.COMPLETED:
        return None
    try:
        value = float(ret.return_value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
