"""Everything captured at the start of a run, written into the run directory; returns run.json fields.

    git.json          commit, branch, remote (credentials stripped), dirty flag, changed and untracked files
    git.diff          the diff of tracked changes against HEAD (only when the tree is dirty; size-capped)
    environment.json  interpreter, OS, hardware, torch/CUDA/GPUs, packages, command line, allow-listed env

The whole capture takes a few tens of milliseconds (benchmarks/bench_capture.py measures it).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runkit.hydra_context import hydra_context
from runkit.repro import environment as env_capture
from runkit.repro.config_hash import config_hash
from runkit.repro.git import git_state, write_diff
from runkit.storage.jsonio import write_json
from runkit.storage.layout import ENVIRONMENT_FILE, GIT_DIFF_FILE, GIT_FILE
from runkit.storage.run_dir import RunDir

log = logging.getLogger(__name__)

DEFAULT_DIFF_MAX_BYTES = 1_000_000


def project_root(cfg: DictConfig) -> Path:
    """The folder whose git repository is captured: `paths.root` (Hydra's original cwd), else the cwd."""
    root = OmegaConf.select(cfg, "paths.root", default=None, throw_on_resolution_failure=False)
    return Path(root) if root else Path(os.getcwd())


def capture_run(run_dir: RunDir, cfg: DictConfig, dest: Path | None = None) -> dict[str, Any]:
    """Write the run's capture files into `dest` (the run directory unless given) and return the summary
    fields for run.json: `git`, `config_hash`, `environment`, `capture_seconds`, `capture_timings`, and
    `warnings` (a list, empty when everything could be captured)."""
    started = time.perf_counter()
    dest = Path(dest) if dest is not None else run_dir.path
    dest.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    timings: dict[str, float] = {}

    t = time.perf_counter()
    root = project_root(cfg)
    git = git_state(root)
    max_bytes = OmegaConf.select(cfg, "git.diff_max_bytes", default=DEFAULT_DIFF_MAX_BYTES)
    diff = write_diff(git.root or root, git, dest / GIT_DIFF_FILE, max_bytes)
    git_record = {**git.to_dict(), "diff": diff}
    write_json(dest / GIT_FILE, git_record)
    if git.warning:
        warnings.append(git.warning)
        log.warning("%s", git.warning)
    if diff["truncated"]:
        note = f"git.diff was cut at git.diff_max_bytes={max_bytes} bytes"
        warnings.append(note)
        log.warning("%s", note)
    timings["git"] = time.perf_counter() - t

    t = time.perf_counter()
    env = env_capture.environment(hydra_context().overrides)
    write_json(dest / ENVIRONMENT_FILE, env)
    timings["environment"] = time.perf_counter() - t

    t = time.perf_counter()
    chash = config_hash(cfg)
    timings["config_hash"] = time.perf_counter() - t

    seconds = time.perf_counter() - started
    log.debug("capture took %.3f s (%s)", seconds, timings)
    return {
        "git": {**git.summary(), "diff": diff["file"] is not None, "diff_truncated": diff["truncated"]},
        "config_hash": chash,
        "environment": env_capture.summary(env),
        "deterministic": bool(cfg.get("deterministic", False)),
        "capture_seconds": round(seconds, 4),
        "capture_timings": {k: round(v, 4) for k, v in timings.items()},
        "warnings": warnings,
    }


def backend_tags(fields: dict[str, Any], seed: Any) -> dict[str, str]:
    """The capture summary as key/value tags for every backend (None values are left out)."""
    git = fields.get("git") or {}
    tags = {
        "git.commit": git.get("commit"),
        "git.branch": git.get("branch"),
        "git.dirty": None
        if git.get("commit") is None and not git.get("dirty")
        else str(git["dirty"]).lower(),
        "git.remote": git.get("remote"),
        "config_hash": fields.get("config_hash"),
        "seed": None if seed is None else str(seed),
    }
    return {k: str(v) for k, v in tags.items() if v is not None}
