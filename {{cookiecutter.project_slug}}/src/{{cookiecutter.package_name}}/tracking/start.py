"""start_run(cfg): create (or reopen) the run directory, capture everything, open the backends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..errors import UserError
from .hydra_context import hydra_context
from .liveness import is_dead
from .lookup import find_run
from .run_dir import RunDir
from .status import Status
from .tracker import ExperimentTracker, _now, base_record

log = logging.getLogger(__name__)

LOCAL = "local"


def chosen_backends(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config of each chosen backend other than the always-on run directory."""
    trackers = OmegaConf.to_container(cfg.get("tracker") or {}, resolve=True)
    return {name: spec for name, spec in trackers.items() if name != LOCAL}


def start_run(cfg: DictConfig) -> ExperimentTracker:
    """Start (or, with `resume=...`, continue) the run described by `cfg` and return its tracker.

    Everything that identifies and reproduces the run is on disk before this returns: run.json (status
    `running`), config.yaml, overrides.yaml, the repro captures, and each backend's run ids.
    """
    from ..repro.capture import capture_run

    ctx = hydra_context()
    runs_dir = Path(cfg.paths.runs_dir)
    resume_ref = cfg.get("resume")
    if resume_ref:
        run_dir = find_run(resume_ref, runs_dir)
        record = run_dir.read()
        if record.get("status") == Status.RUNNING.value and not is_dead(record):
            raise UserError(f"run {record['id']} is still running (pid {record.get('pid')}); not resuming it")
        record.update(
            status=Status.RUNNING.value,
            heartbeat=_now(),
            end_time=None,
            error=None,
            resumed=True,
            resumes=[*record.get("resumes", []), {"time": _now(), "overrides": ctx.overrides}],
        )
    else:
        parent = ctx.sweep_dir if ctx.sweep_dir is not None else runs_dir
        run_dir = RunDir.create(parent, cfg.name)
        record = base_record(run_dir.path.name.rsplit("-", 1)[-1], str(cfg.name), list(cfg.get("tags") or []))
        if ctx.sweep_dir is not None:
            record["sweep"] = {
                "dir": str(ctx.sweep_dir),
                "id": ctx.sweep_dir.name.rsplit("-", 1)[-1],
                "job_num": ctx.job_num,
            }

    OmegaConf.save(cfg, run_dir.config_file, resolve=True)
    run_dir.overrides_file.write_text(OmegaConf.to_yaml(OmegaConf.create(ctx.overrides)), encoding="utf-8")
    record.update(seed=cfg.get("seed"), overrides=ctx.overrides)
    record.update(capture_run(run_dir, cfg))
    run_dir.write(record)

    monitor = cfg.get("monitor") or {}
    tracker = ExperimentTracker(run_dir, record, monitor.get("metric"), monitor.get("mode", "max"))
    try:
        if not resume_ref:
            tracker.log_params(OmegaConf.to_container(cfg, resolve=True))
            if record["tags"]:
                tracker.set_tags(record["tags"])
        backends = chosen_backends(cfg)
        if backends:
            from .shipper import Shipper

            tracker._shipper = Shipper.launch(run_dir, backends)
            tracker.update_record(backends=tracker._shipper.backend_ids)
    except BaseException as exc:
        tracker.finish(Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    tracker._begin()
    log.info("run %s -> %s", record["id"], run_dir.path)
    return tracker
