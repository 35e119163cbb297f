"""start_run(cfg): create (or reopen) the run directory, capture everything, open the backends."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from runkit.errors import UserError
from runkit.hydra_context import hydra_context
from runkit.plain import plain_dict
from runkit.storage.layout import RUN_FILE
from runkit.storage.liveness import is_dead
from runkit.storage.run_dir import RunDir, id_from_name
from runkit.storage.run_lock import DEFAULT_LOCK_TIMEOUT, RunLock
from runkit.storage.secrets import Secrets
from runkit.storage.status import Status
from runkit.tracking.tracker import NO_SPACE, ExperimentTracker, _now, base_record

if TYPE_CHECKING:
    from runkit.distributed import Distributed
    from runkit.repro.resume import ResumePoint

log = logging.getLogger(__name__)

LOCAL = "local"


def chosen_backends(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config of each chosen backend other than the always-on run directory."""
    trackers = plain_dict(cfg.get("tracker"))
    return {name: spec for name, spec in trackers.items() if name != LOCAL}


_Kept = tuple[dict[Path, "bytes | None"], "set[Path] | None"]


def _keep(run_dir: RunDir) -> _Kept:
    """What a resume rewrites before the run restarts: run.json, config.yaml, overrides.yaml (None: absent)
    and the session folders under resumes/ (None: no such folder yet)."""
    files = [run_dir.path / RUN_FILE, run_dir.config_file, run_dir.overrides_file]
    resumes = run_dir.path / "resumes"
    folders = set(resumes.iterdir()) if resumes.is_dir() else None
    return {p: p.read_bytes() if p.is_file() else None for p in files}, folders


def _put_back(run_dir: RunDir, kept: _Kept) -> None:
    """Undo what a refused resume wrote: the files as they were, no new session folder."""
    files, folders = kept
    resumes = run_dir.path / "resumes"
    if folders is None:
        shutil.rmtree(resumes, ignore_errors=True)
    elif resumes.is_dir():
        for folder in set(resumes.iterdir()) - folders:
            shutil.rmtree(folder, ignore_errors=True)
    for path, data in files.items():
        try:
            if data is None:
                path.unlink(missing_ok=True)
            else:
                tmp = path.with_name(f".{path.name}.restore")
                tmp.write_bytes(data)
                os.replace(tmp, path)
        except OSError as exc:
            log.error("could not restore %s after the refused resume: %s", path, exc)


def start_run(
    cfg: DictConfig,
    resume: ResumePoint | None = None,
    init_from: dict[str, Any] | None = None,
    distributed: Distributed | None = None,
) -> ExperimentTracker:
    """Start (or, with `resume=...`, continue) the run described by `cfg` and return its tracker.

    `distributed` (runkit.distributed.init_distributed()) makes this one rank of a multi-process run: rank 0
    starts the run as a single process would and tells the other ranks its directory; they get a
    PeerTracker, which writes nothing but `ranks/<rank>.json`. Every rank must call this (it is a collective).

    `init_from` is what `repro.resume.init_weights` loaded for `init_from=...` (a new run started from old
    weights): it is recorded in run.json and as a tag in every backend.

    Everything that identifies and reproduces the run is on disk before this returns: run.json (status
    `running`), config.yaml, overrides.yaml, the repro captures, and each backend's run ids. `resume` is the
    checked resume point (train.main makes it before building the model); without it, `cfg.resume` is checked
    here.
    """
    if distributed is None or not distributed.enabled:
        return _start_run(cfg, resume, init_from, None)
    if not distributed.is_main:
        from runkit.tracking.tracker import PeerTracker

        path, run_id, name = distributed.receive()  # rank 0's run, or its error raised here
        monitor = cfg.get("monitor") or {}
        peer = PeerTracker(
            RunDir(Path(path)), run_id, name, distributed, monitor.get("metric"), monitor.get("mode", "max")
        )
        peer.begin()
        return peer
    try:
        tracker = _start_run(cfg, resume, init_from, distributed)
    except BaseException as exc:
        distributed.announce_error(exc)
        raise
    try:
        distributed.announce((str(tracker.path), tracker.run_id, tracker.name))
    except BaseException as exc:  # a peer died before the run began: the run says so
        tracker.__exit__(type(exc), exc, exc.__traceback__)
        raise
    return tracker


def _start_run(
    cfg: DictConfig,
    resume: ResumePoint | None,
    init_from: dict[str, Any] | None,
    distributed: Distributed | None,
) -> ExperimentTracker:
    from runkit.repro.capture import backend_tags, capture_run, project_root

    if OmegaConf.select(cfg, "git.require_clean", default=False):
        from runkit.repro.git import require_clean

        require_clean(project_root(cfg))  # refuses a dirty tree before anything is created

    from runkit.tracking.delivery.launch import preflight_backends

    preflight_backends(chosen_backends(cfg))  # a backend that refuses (one line) leaves no run behind

    ctx = hydra_context()
    runs_dir = Path(cfg.paths.runs_dir)
    resume_ref = cfg.get("resume")
    overrides = list(ctx.overrides)
    lock_timeout = float(OmegaConf.select(cfg, "tracking.lock_timeout", default=DEFAULT_LOCK_TIMEOUT))
    lock: RunLock | None = None
    kept: _Kept | None = None
    run_dir: RunDir | None = None
    try:
        if resume_ref:
            if resume is None:
                from runkit.repro.resume import prepare_resume

                _, resume = prepare_resume(cfg)
            run_dir = resume.run_dir
            # An earlier session's shipper may still be draining the log (after a kill): wait for it, then
            # read the record as it left it.
            lock = RunLock.acquire(run_dir.events_file, lock_timeout, str(resume.record.get("id")))
            record = run_dir.read()
            if record.get("status") == Status.RUNNING.value and not is_dead(record):
                raise UserError(
                    f"run {record['id']} is still running (pid {record.get('pid')}); not resuming it"
                )
            # A refusal from here on (a damaged file, a capture that fails) must leave the run as it was.
            kept = _keep(run_dir)
            overrides = list(resume.overrides)
            session: dict[str, Any] = {"time": _now(), "overrides": ctx.overrides, "from_step": resume.step}
            session["from_epoch"] = resume.epoch
            record.update(
                status=Status.RUNNING.value,
                heartbeat=_now(),
                end_time=None,
                error=None,
                resumed=True,
                resume_step=resume.step,
                resumes=[*record.get("resumes", []), session],
            )
            # This session's captures go next to the run's first ones, with the config it had until now.
            session_dir = run_dir.path / "resumes" / str(len(record["resumes"]))
            session_dir.mkdir(parents=True, exist_ok=True)
            if run_dir.config_file.is_file():
                shutil.copy2(run_dir.config_file, session_dir / "config.before.yaml")
        else:
            parent = ctx.sweep_dir if ctx.sweep_dir is not None else runs_dir
            run_dir = RunDir.create(parent, cfg.name)
            run_id = id_from_name(run_dir.path)
            lock = RunLock.acquire(run_dir.events_file, 0, run_id)
            record = base_record(run_id, str(cfg.name), list(cfg.get("tags") or []))
            record["rerun_of"] = cfg.get("rerun_of")  # set by `runs rerun`: the run this one repeats
            if init_from is not None:
                record["init_from"] = init_from
            if ctx.sweep_dir is not None:
                record["sweep"] = {
                    "dir": str(ctx.sweep_dir),
                    "id": id_from_name(ctx.sweep_dir),
                    "job_num": ctx.job_num,
                }

        # What is recorded has secret values masked (storage/secrets.py); training keeps the real ones.
        secrets = Secrets(OmegaConf.select(cfg, "tracking.secret_keys", default=None))
        recorded_cfg = OmegaConf.create(secrets.mapping(plain_dict(cfg)))
        OmegaConf.save(recorded_cfg, run_dir.config_file, resolve=True)
        overrides = secrets.overrides(overrides)
        if resume_ref:
            session["overrides"] = secrets.overrides(session["overrides"])
        run_dir.overrides_file.write_text(OmegaConf.to_yaml(OmegaConf.create(overrides)), encoding="utf-8")
        record.update(
            seed=cfg.get("seed"), overrides=overrides, argv=secrets.overrides(record.get("argv") or [])
        )
        multi = distributed is not None and distributed.enabled
        layout = distributed.record(int(cfg.seed)) if distributed is not None and multi else None
        if resume is None:
            if layout is not None:
                record["distributed"] = layout
        else:  # each session says how many processes it had (None: one)
            session["distributed"] = layout
        if resume is None:
            record.update(capture_run(run_dir, cfg))
        else:
            captured = capture_run(run_dir, cfg, dest=session_dir)
            session.update(
                git=captured["git"],
                config_hash=captured["config_hash"],
                captures=f"resumes/{session_dir.name}",
            )
            record["warnings"] = [*record.get("warnings", []), *captured["warnings"]]
            if captured["git"]["commit"] != (record.get("git") or {}).get("commit"):
                log.warning("run %s is resumed on a different git commit than it started on", record["id"])
            if captured["config_hash"] != record.get("config_hash"):
                log.warning(
                    "run %s is resumed with a different config (hash %s, was %s)",
                    record["id"],
                    captured["config_hash"],
                    record.get("config_hash"),
                )
        run_dir.write(record)

        monitor = cfg.get("monitor") or {}
        memory_map = bool(OmegaConf.select(cfg, "tracking.memory_map", default=True))
        tracker = ExperimentTracker(
            run_dir,
            record,
            monitor=monitor.get("metric"),
            mode=monitor.get("mode", "max"),
            memory_map=memory_map,
            lock=lock,
            # A resumed run continues its metric summary and step counter from the checkpoint.
            summary_state=resume.summary if resume is not None else None,
            start_step=resume.step if resume is not None else None,
        )
    except BaseException as exc:
        if kept is not None and run_dir is not None:
            _put_back(run_dir, kept)
        if lock is not None:  # the tracker did not take it over
            lock.release()
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            where = exc.filename or (run_dir.path if run_dir is not None else runs_dir)
            if run_dir is not None and kept is None:  # a new run: nothing of it is kept
                shutil.rmtree(run_dir.path, ignore_errors=True)
            what = "the run is as it was" if kept is not None else "no run was created"
            raise UserError(
                f"no space left on device writing {where}: {what}; free space and start again"
            ) from None
        raise
    try:
        if not resume_ref:
            tracker.log_params(plain_dict(recorded_cfg))
            if record["tags"]:
                tracker.set_tags(record["tags"])
            if init_from is not None:
                tracker.set_tags({"init_from": init_from.get("run_id") or init_from.get("checkpoint")})
            # The capture summary (code version, config hash, seed) as key/value tags, the diff as a file.
            tracker.set_tags(backend_tags(record, cfg.get("seed")))
            if record["git"].get("diff"):
                tracker.log_artifact(run_dir.path / "git.diff", kind="git-diff")
        elif resume is not None:
            tracker.mark_resume(resume.step, resume.epoch, session=len(record["resumes"]))
            if session.get("git", {}).get("diff"):
                tracker.log_artifact(session_dir / "git.diff", kind="git-diff")
        backends = chosen_backends(cfg)
        if backends:
            from runkit.tracking.shipper import Shipper

            def record_backends(ids: dict[str, Any]) -> None:
                # Merged: a resumed run keeps the ids of the backends it used in an earlier session only.
                tracker.update_record(backends={**(tracker.run_dir.read().get("backends") or {}), **ids})

            options = plain_dict(cfg.get("tracking"))
            tracker.attach_delivery(
                Shipper.launch(run_dir, backends, options, on_ready=record_backends, lock=tracker.lock)
            )
    except BaseException as exc:
        tracker.finish(Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    if distributed is not None and distributed.enabled:
        tracker.attach_distributed(distributed)
    tracker.begin()
    log.info("run %s -> %s", record["id"], run_dir.path)
    return tracker
