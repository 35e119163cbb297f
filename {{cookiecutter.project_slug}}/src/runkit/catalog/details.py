"""Everything one run recorded, as one JSON-ready dict: what `runs show` prints and `runs report` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runkit.catalog.entry import RunEntry
from runkit.catalog.history import artifacts_of
from runkit.catalog.runs import read_json_or_empty
from runkit.flatten import flatten_raw
from runkit.storage.events import scan_damage
from runkit.storage.layout import (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    EVENTS_FILE,
    GIT_DIFF_FILE,
    GIT_FILE,
    TRACEBACK_FILE,
)

# What is shown of environment.json (dotted paths); the rest is in the file and in `show --json`.
ENV_KEYS = (
    "hostname",
    "python.version",
    "python.implementation",
    "python.executable",
    "os.distribution",
    "os.system",
    "os.release",
    "os.machine",
    "cpu.logical",
    "memory_bytes",
    "torch.version",
    "torch.cuda_version",
    "torch.cudnn_version",
    "torch.gpus",
    "torch.num_threads",
    "command.cwd",
)


def git_summary(run: RunEntry) -> dict[str, Any]:
    """run.json `git`, completed from git.json when the run directory has one."""
    git = dict(run.git)
    for key, value in read_json_or_empty(run.path / GIT_FILE).items():
        if key not in git and not isinstance(value, (dict, list)) and value is not None:
            git[key] = value
    if (run.path / GIT_DIFF_FILE).is_file():
        git["diff_file"] = str(run.path / GIT_DIFF_FILE)
    return git


def environment_summary(run: RunEntry) -> dict[str, Any]:
    """The main facts of environment.json; run.json `environment` (the capture's summary) without it."""
    env = read_json_or_empty(run.path / ENVIRONMENT_FILE)
    flat = flatten_raw(env)
    out: dict[str, Any] = {k: flat[k] for k in ENV_KEYS if flat.get(k) not in (None, "", [])}
    summary = run.record.get("environment")
    if not out and isinstance(summary, dict):
        out = {k: v for k, v in summary.items() if not isinstance(v, dict) and v not in (None, "")}
    if not out:  # an unknown layout: its top-level scalars
        out = {k: v for k, v in env.items() if not isinstance(v, (dict, list))}
    packages = env.get("packages")
    if isinstance(packages, (dict, list)):
        out["packages"] = f"{len(packages)} recorded in environment.json"
    return {k: (", ".join(map(str, v)) or "none") if isinstance(v, list) else v for k, v in out.items()}


def _read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def run_details(run: RunEntry) -> dict[str, Any]:
    """Everything `show` prints, as one JSON-ready dict."""
    rec = run.record
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "recorded_status": rec.get("status"),
        "path": str(run.path),
        "start_time": rec.get("start_time"),
        "end_time": rec.get("end_time"),
        "duration_s": run.duration,
        "host": rec.get("host"),
        "pid": rec.get("pid"),
        "seed": rec.get("seed"),
        "tags": run.tags,
        "sweep": rec.get("sweep"),
        "rerun_of": rec.get("rerun_of"),
        "init_from": rec.get("init_from"),
        "resumed": rec.get("resumed", False),
        "config_hash": rec.get("config_hash"),
        "argv": rec.get("argv"),
        "overrides": run.overrides,
        "git": git_summary(run),
        "environment": environment_summary(run),
        "backends": rec.get("backends") or {},
        "error": rec.get("error"),
        # damaged places of events.jsonl, one line each ([]: the log is whole)
        "log_damage": [damage.describe() for damage in scan_damage(run.path / EVENTS_FILE)],
        "traceback": _read_text(run.path / TRACEBACK_FILE),
        "summary": run.summary,
        "artifacts": artifacts_of(run.path),
        "config": (run.path / CONFIG_FILE).read_text(encoding="utf-8")
        if (run.path / CONFIG_FILE).is_file()
        else "",
    }
