"""Resume (`resume=<run>`: continue the same run in place) and warm starts (`init_from=<run or file>`: a new
run from old weights). Every check happens before anything is written, so a refused resume changes nothing.

A resumed run gets the run's own config back: the run's recorded overrides are composed again, the overrides
given on the resume command line are applied on top, and the seed is the one the run used. Keys that would
change the model or the data it sees must not differ from the run's saved config.yaml.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from runkit.errors import UserError
from runkit.hydra_context import hydra_context
from runkit.overrides import override_key
from runkit.plain import plain
from runkit.repro.checkpoint import load_checkpoint
from runkit.repro.config_keys import SESSION_KEYS
from runkit.storage.jsonio import CorruptRunFileError
from runkit.storage.layout import CHECKPOINTS_DIR, LAST_CHECKPOINT, RUN_FILE
from runkit.storage.liveness import is_dead
from runkit.storage.lookup import find_run, iter_run_dirs
from runkit.storage.run_dir import RunDir, id_from_name
from runkit.storage.status import Status

log = logging.getLogger(__name__)

# Config that shapes the model or the data it sees (or what the checkpoint's optimizer/scheduler state means):
# it must be the same as the run's when resuming it.
MUST_MATCH = ("model", "data", "seed", "optimizer._target_", "scheduler._target_")
REQUIRED_STATE = ("model", "optimizer", "scheduler", "epoch", "step", "rng")


@dataclass
class ResumePoint:
    """A validated resume: the run, its record, and the checkpoint to continue from."""

    run_dir: RunDir
    record: dict[str, Any]
    checkpoint: Path
    state: dict[str, Any] = field(repr=False)
    overrides: list[str]  # the run's effective overrides, as overrides.yaml will record them

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])

    @property
    def step(self) -> int:
        return int(self.state["step"])

    @property
    def summary(self) -> dict[str, Any] | None:
        """The metric summary as it was when the checkpoint was written (None for older checkpoints)."""
        return self.state.get("summary")


def merge_overrides(saved: list[str], new: list[str]) -> list[str]:
    """The run's recorded overrides without the session-only ones and those set again, then the new ones."""
    new_keys = {override_key(o) for o in new}
    kept = [o for o in saved if override_key(o) not in new_keys and override_key(o) not in SESSION_KEYS]
    return [*kept, *new]


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): data}


def _select(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return "<absent>"
        data = data[part]
    return data


def config_differences(
    saved: dict[str, Any], current: dict[str, Any], keys: tuple[str, ...] = MUST_MATCH
) -> list[str]:
    """`key (run: a, now: b)` for every leaf under `keys` that differs between two resolved configs."""
    diffs = []
    for key in keys:
        old, new = _flatten(_select(saved, key), f"{key}."), _flatten(_select(current, key), f"{key}.")
        for leaf in sorted(set(old) | set(new)):
            a, b = old.get(leaf, "<absent>"), new.get(leaf, "<absent>")
            if a != b:
                diffs.append(f"{leaf} (run: {a}, now: {b})")
    return diffs


def _recompose(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Compose the app's config again from `overrides` (inside a Hydra app; otherwise `cfg` is kept)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    if not (HydraConfig.initialized() and GlobalHydra.instance().is_initialized()):
        return cfg
    from hydra import compose

    try:
        return compose(config_name=HydraConfig.get().job.config_name, overrides=overrides)
    except Exception as exc:
        raise UserError(
            f"cannot rebuild the run's config from its overrides {overrides}: {exc}".replace("\n", " ")
        ) from exc


def last_resumable(runs_dir: Path) -> RunDir:
    """`resume=last`: the newest run that can be continued (it has a checkpoint and is not completed, and no
    live process owns it), not merely the newest run (a finished Optuna trial, say)."""
    newest_first = sorted(iter_run_dirs(runs_dir), key=lambda r: r.path.name.split("-", 2)[:2], reverse=True)
    for run_dir in newest_first:
        if not (run_dir.checkpoints / LAST_CHECKPOINT).is_file():
            continue
        try:
            record = run_dir.read()
        except (OSError, CorruptRunFileError):
            continue
        status = record.get("status")
        if status == Status.COMPLETED.value or (status == Status.RUNNING.value and not is_dead(record)):
            continue
        return run_dir
    raise UserError(
        f"no run under {runs_dir} can be continued (each is completed, running, or has no checkpoint); "
        "`runkit runs list` shows them"
    )


def load_run(ref: str, runs_dir: Path) -> tuple[RunDir, dict[str, Any]]:
    run_dir = last_resumable(runs_dir) if str(ref) == "last" else find_run(ref, runs_dir)
    try:
        return run_dir, run_dir.read()
    except (OSError, CorruptRunFileError) as exc:
        raise UserError(f"cannot read run {run_dir.path}: {exc}") from exc


def prepare_resume(cfg: DictConfig) -> tuple[DictConfig, ResumePoint]:
    """Find and check the run named by `cfg.resume`; return its config for this session and the resume point.

    Raises UserError (nothing written) when the run does not exist, is still running, has no readable
    checkpoint, or when this session's config differs from the run's in a way that changes the model.
    """
    run_dir, record = load_run(str(cfg.resume), Path(cfg.paths.runs_dir))
    run_id = record.get("id", id_from_name(run_dir.path))
    if record.get("status") == Status.RUNNING.value and not is_dead(record):
        raise UserError(f"run {run_id} is still running (pid {record.get('pid')}); not resuming it")
    checkpoint = run_dir.checkpoints / LAST_CHECKPOINT
    if not checkpoint.is_file():
        raise UserError(
            f"cannot resume run {run_id}: it has no checkpoint ({checkpoint} is missing; a run saves one at "
            f"the end of every epoch). Start a new run instead"
        )
    try:
        state = load_checkpoint(checkpoint)
    except UserError as exc:
        raise UserError(f"cannot resume run {run_id}: {exc}") from exc
    missing = [k for k in REQUIRED_STATE if not isinstance(state, dict) or k not in state]
    if missing:
        raise UserError(f"cannot resume run {run_id}: {checkpoint} lacks {', '.join(missing)}")
    if state.get("run_id") not in (None, run_id):
        raise UserError(f"cannot resume run {run_id}: {checkpoint} was written by run {state['run_id']}")
    if not run_dir.config_file.is_file():
        raise UserError(f"cannot resume run {run_id}: {run_dir.config_file} is missing")
    loaded = OmegaConf.to_container(OmegaConf.load(run_dir.config_file), resolve=False)
    if not isinstance(loaded, dict):
        raise UserError(f"cannot resume run {run_id}: {run_dir.config_file} does not hold a config mapping")
    saved_cfg = {str(k): v for k, v in loaded.items()}
    saved_overrides = (
        yaml.safe_load(run_dir.overrides_file.read_text()) if run_dir.overrides_file.is_file() else None
    ) or list(record.get("overrides") or [])

    new_overrides = list(hydra_context().overrides)
    new_keys = {override_key(o) for o in new_overrides}
    if "seed" not in new_keys and saved_cfg.get("seed") is not None:
        new_overrides.append(f"seed={saved_cfg['seed']}")  # the seed the run actually used
    overrides = merge_overrides(list(saved_overrides), new_overrides)
    session_cfg = _recompose(cfg, overrides)
    with open_dict(session_cfg):
        session_cfg.resume = str(run_dir.path)  # the run itself, so `last` cannot move meanwhile
    sections = {key.split(".")[0] for key in MUST_MATCH}
    current = {k: plain(session_cfg[k]) for k in sections if k in session_cfg}
    diffs = config_differences(saved_cfg, current)
    if diffs:
        raise UserError(
            f"cannot resume run {run_id}: the config differs in what shapes the model or its data: "
            f"{'; '.join(diffs)}. Drop those overrides, or start a new run with init_from={run_id}"
        )
    kept = [o for o in overrides if override_key(o) not in SESSION_KEYS]
    point = ResumePoint(run_dir, record, checkpoint, state, kept)
    # A resume continues the run as it was defined: its schedules (a cosine learning rate, say) were built
    # for its own number of epochs, so a longer run is a new run from these weights.
    planned, asked = saved_cfg.get("epochs"), session_cfg.get("epochs")
    extend = f"to train longer, start a new run from its weights: python train.py init_from={run_id} epochs=N"
    if planned is not None and asked != planned:
        raise UserError(
            f"cannot resume run {run_id} with epochs={asked}: it was planned for epochs={planned} "
            f"(its learning-rate schedule too); resume it without epochs=, or {extend}"
        )
    # A run that trained every epoch but did not complete (a full disk, a bug in what follows training)
    # resumes with no epoch left: the session runs what follows the loop (the test report) and completes it.
    done = record.get("status") == Status.COMPLETED.value
    if planned is not None and point.epoch >= int(planned) and done:
        raise UserError(
            f"run {run_id} has trained all its {point.epoch} epochs: nothing left to do; {extend}"
        )
    log.info("resuming run %s from epoch %d (step %d)", run_id, point.epoch, point.step)
    return session_cfg, point


def restore_training_state(state: dict[str, Any], model: Any, optimizer: Any, scheduler: Any) -> None:
    """Load model, optimizer and scheduler state from a checkpoint; a mismatch is a UserError."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"the checkpoint does not fit this model/optimizer: {first}") from exc


def resolve_init_from(ref: str, runs_dir: Path) -> tuple[Path, str | None, Path | None]:
    """`init_from=<checkpoint file | run dir | run id | last>` -> (checkpoint file, run id, run dir)."""
    path = Path(str(ref)).expanduser()
    if path.is_file():
        folder = path.parent.parent if path.parent.name == CHECKPOINTS_DIR else None
        run_id = id_from_name(folder) if folder and (folder / RUN_FILE).is_file() else None
        return path.resolve(), run_id, folder.resolve() if run_id and folder else None
    run, record = load_run(str(ref), runs_dir)
    checkpoint = run.checkpoints / LAST_CHECKPOINT
    if not checkpoint.is_file():
        raise UserError(
            f"init_from={ref}: run {record.get('id')} has no checkpoint ({checkpoint} is missing)"
        )
    found = record.get("id")
    return checkpoint, None if found is None else str(found), run.path


def init_weights(ref: str, runs_dir: Path, model: Any) -> dict[str, Any]:
    """Load only the model weights named by `init_from` into `model`; return what run.json records."""
    checkpoint, run_id, run_dir = resolve_init_from(ref, runs_dir)
    state = load_checkpoint(checkpoint)
    weights = state.get("model") if isinstance(state, dict) and "model" in state else state
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"init_from={ref}: the weights in {checkpoint} do not fit this model: {first}"
        ) from exc
    run_id = run_id or (state.get("run_id") if isinstance(state, dict) else None)
    info = {
        "ref": str(ref),
        "run_id": run_id,
        "checkpoint": str(checkpoint),
        "path": str(run_dir) if run_dir else None,
        "epoch": state.get("epoch") if isinstance(state, dict) else None,
        "step": state.get("step") if isinstance(state, dict) else None,
    }
    log.info("initialised the model from %s", checkpoint)
    return info
