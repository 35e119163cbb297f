"""The run registry: one flat row per run (fields, param.* from the config, metric.* last values)."""

from __future__ import annotations

from typing import Any

from runkit.catalog.entry import RunEntry
from runkit.formatting import fmt_time

BASE_COLUMNS = [
    "id",
    "name",
    "status",
    "sweep",
    "job_num",
    "start",
    "end",
    "duration_s",
    "seed",
    "git_commit",
    "git_branch",
    "git_dirty",
    "config_hash",
    "rerun_of",
    "host",
    "tags",
    "overrides",
    "best_metric",
    "best_mode",
    "best_value",
    "best_step",
    "last_step",
    "path",
    "problem",
]


def registry_row(run: RunEntry) -> dict[str, Any]:
    rec = run.record
    git = run.git
    best = run.best
    sweep = rec.get("sweep")
    if not isinstance(sweep, dict):
        sweep = {}
    row: dict[str, Any] = {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "sweep": run.sweep_id,
        "job_num": sweep.get("job_num"),
        "start": fmt_time(run.start_time),
        "end": fmt_time(rec.get("end_time")),
        "duration_s": None if run.duration is None else round(run.duration, 3),
        "seed": rec.get("seed"),
        "git_commit": git.get("commit"),
        "git_branch": git.get("branch"),
        "git_dirty": git.get("dirty"),
        "config_hash": rec.get("config_hash"),
        "rerun_of": rec.get("rerun_of"),
        "host": rec.get("host"),
        "tags": ",".join(run.tags),
        "overrides": " ".join(run.overrides),
        "best_metric": best.get("metric"),
        "best_mode": best.get("mode"),
        "best_value": best.get("value"),
        "best_step": best.get("step"),
        "last_step": run.summary.get("last_step"),
        "path": str(run.path),
        "problem": run.problem or run.summary_problem,
    }
    if not run.corrupt:
        for key, value in run.flat_config().items():
            row[f"param.{key}"] = value
    for key, value in run.metrics.items():
        row[f"metric.{key}"] = value
    return row
