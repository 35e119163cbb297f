"""Building a backend from its config and describing the run it should open.

Used wherever a backend's run is opened: the trainer (build + preflight only, before training), the shipper
process and `runs sync`. Both read what they need from the run directory, never from the training process,
so that a replay long after the run opens the backend's run exactly as the live shipper did.
"""

from __future__ import annotations

import copy
import importlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from runkit.storage.jsonio import CorruptRunFileError, read_json
from runkit.storage.run_dir import RunDir
from runkit.tracking.backends.base import Backend, BackendError, RunInfo
from runkit.tracking.delivery.options import SWEEP_FILE, one_line

log = logging.getLogger(__name__)


def build_backend(name: str, spec: Mapping[str, Any]) -> Backend:
    """Build one backend from its resolved `tracker.<name>` config (`_target_` + settings)."""
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise BackendError(
            f"tracker.{name} has no _target_: expected a mapping like configs/tracker/{name}.yaml"
        )
    target = plain_target(spec)
    try:
        if target is not None:  # what hydra would do, without importing hydra (the shipper's start-up)
            backend = target(**copy.deepcopy({k: v for k, v in spec.items() if k != "_target_"}))
        else:
            from hydra.utils import instantiate  # not at import: the trainer's `--help` stays fast

            backend = instantiate(dict(spec), _convert_="all")
    except Exception as exc:  # hydra wraps both a bad _target_ and a bad setting
        cause = (exc.__cause__ or exc) if target is None else exc
        if isinstance(cause, BackendError):
            raise cause from None
        raise BackendError(
            f"cannot build the {name} backend from tracker.{name}: {one_line(cause)}"
        ) from None
    if not isinstance(backend, Backend):
        raise BackendError(
            f"tracker.{name}._target_ built a {type(backend).__name__}, not a tracking Backend"
        )
    return backend


def plain_target(spec: Mapping[str, Any]) -> Callable[..., Any] | None:
    """The callable `_target_` names when hydra's instantiate would only import it and call it with the other
    settings as they are (plain values: what a resolved config and the shipper's JSON pipe hold). None when
    hydra is needed (its own `_keys_`, a nested `_target_`, an interpolation or `???` left, another type) or
    the target is not found here: hydra then builds it, or reports the error as it always has."""
    target = spec.get("_target_")
    if not isinstance(target, str) or not all(_plain(v) for k, v in spec.items() if k != "_target_"):
        return None
    if any(str(key).startswith("_") and key != "_target_" for key in spec):
        return None
    module, _, attr = target.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attr) if module else None
    except Exception:  # not importable here: hydra's message says why
        return None
    return found if callable(found) else None


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return "${" not in value and value != "???"
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and not k.startswith("_") and _plain(v) for k, v in value.items())
    return False


def run_info(run_dir: RunDir, name: str, record: dict[str, Any] | None = None) -> RunInfo:
    """What a backend needs to (re)open its run, from run.json, config.yaml and the sweep's sweep.json."""
    from omegaconf import OmegaConf

    record = record if record is not None else run_dir.read()
    config: dict[str, Any] = {}
    if run_dir.config_file.exists():
        loaded = OmegaConf.to_container(OmegaConf.load(run_dir.config_file), resolve=False)
        if isinstance(loaded, dict):
            config = {str(key): value for key, value in loaded.items()}
    sweep = record.get("sweep")
    if sweep:
        sweep = dict(sweep)
        sweep_file = Path(sweep.get("dir", "")) / SWEEP_FILE
        if sweep.get("dir") and sweep_file.is_file():
            try:
                sweep["backends"] = read_json(sweep_file).get("backends") or {}
            except (CorruptRunFileError, AttributeError) as exc:
                log.warning("ignoring the sweep's backends: %s", exc)
        sweep.setdefault("backends", {})
    # This backend's ids from an earlier session: the backend reopens that run instead of starting another.
    previous = dict((record.get("backends") or {}).get(name) or {})
    previous.pop("error", None)
    return RunInfo(
        run_id=str(record["id"]),
        name=str(record.get("name", "run")),
        run_dir=run_dir.path,
        tags=[str(t) for t in record.get("tags") or []],
        config=config,
        previous=previous,
        resumed=bool(record.get("resumed")),
        resume_step=record.get("resume_step"),
        sweep=sweep,
        start_time=record.get("start_time"),
        record=dict(record),
    )
