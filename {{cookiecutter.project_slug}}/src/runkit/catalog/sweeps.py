"""Sweep folders (runs/sweeps/<sweep>/) as `SweepEntry` groups of their jobs' entries."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runkit.catalog.entry import RunEntry
from runkit.catalog.runs import (
    looks_like_run_dir,
    read_json_or_empty,
    read_run_entry,
    scan_runs,
    subdirs,
)
from runkit.formatting import fmt_time
from runkit.repro.config_keys import is_plumbing
from runkit.storage.layout import SWEEP_FILE, SWEEPS_DIR
from runkit.storage.run_dir import id_from_name
from runkit.sweeps.grouping import swept_params
from runkit.sweeps.lookup import find_sweep


@dataclass
class SweepEntry:
    """One sweep folder: its jobs (in job order) and its sweep.json, when the sweep wrote one."""

    path: Path
    jobs: list[RunEntry]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.meta.get("id") or id_from_name(self.path))

    @property
    def name(self) -> str:
        if self.meta.get("name"):
            return str(self.meta["name"])
        parts = self.path.name.split("-")
        return "-".join(parts[2:-1]) if len(parts) > 3 else self.path.name

    @property
    def start_time(self) -> float | None:
        times = [t for t in (j.start_time for j in self.jobs) if t]
        return min(times) if times else None

    def swept_params(self) -> list[str]:
        """The swept keys (seed included, plumbing left out): sweep.json `varying` when the sweep recorded it,
        else the science override keys that vary across the jobs (`sweeps.grouping.swept_params`), the
        sweep's grid and search space always counted."""
        varying = self.meta.get("varying")
        if isinstance(varying, list) and varying:
            return [str(k) for k in varying if not is_plumbing(str(k))]
        always: list[str] = []
        for name in ("always_show", "grid"):
            recorded = self.meta.get(name)
            if isinstance(recorded, (list, dict)):
                always += [str(k) for k in recorded if not is_plumbing(str(k))]
        return swept_params([job.key_params for job in self.jobs], always)

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self.jobs:
            counts[job.status] = counts.get(job.status, 0) + 1
        return counts

    def best_job(self) -> RunEntry | None:
        scored = [
            (value, job)
            for job in self.jobs
            if (value := job.monitor_value) is not None and not math.isnan(value)
        ]
        if not scored:
            return None
        mode = scored[0][1].best.get("mode", "max")
        pick = max if mode == "max" else min
        return pick(scored, key=lambda pair: pair[0])[1]

    def to_row(self) -> dict[str, Any]:
        """Machine-readable row for `list --sweeps --format json/csv`."""
        best = self.best_job()
        return {
            "id": self.id,
            "name": self.name,
            "jobs": len(self.jobs),
            "status": self.status_counts(),
            "start_time": self.start_time,
            "start": fmt_time(self.start_time),
            "swept": self.swept_params(),
            "monitor": best.monitor if best else None,
            "best": best.monitor_value if best else None,
            "best_run": best.id if best else None,
            "path": str(self.path),
        }


def _job_num(job: RunEntry) -> int:
    sweep = job.record.get("sweep")
    if isinstance(sweep, dict):
        num = sweep.get("job_num")
        if isinstance(num, int):
            return num
    return 1 << 30


def read_sweep(path: Path, jobs: list[RunEntry] | None = None) -> SweepEntry:
    """A sweep folder with these jobs (default: read from the folder), sorted in job order."""
    if jobs is None:
        jobs = [read_run_entry(p, sweep_dir=path) for p in subdirs(path) if looks_like_run_dir(p)]
    jobs.sort(key=lambda j: (_job_num(j), j.path.name))
    return SweepEntry(path=path, jobs=jobs, meta=read_json_or_empty(path / SWEEP_FILE))


def group_sweeps(runs: list[RunEntry], runs_dir: Path) -> list[SweepEntry]:
    """The sweeps under runs_dir, each with its jobs among `runs`, sorted by folder name."""
    by_dir: dict[Path, list[RunEntry]] = {}
    for sweep_dir in subdirs(Path(runs_dir) / SWEEPS_DIR):
        by_dir[sweep_dir] = []
    for run in runs:
        if run.sweep_dir is not None:
            by_dir.setdefault(run.sweep_dir, []).append(run)
    sweeps = [read_sweep(path, jobs) for path, jobs in by_dir.items()]
    sweeps.sort(key=lambda s: s.path.name)
    return sweeps


def resolve_sweep(ref: str, runs_dir: Path, runs: list[RunEntry] | None = None) -> SweepEntry:
    """A sweep from its directory, `last`, its id, a unique id prefix, or its directory name
    (`sweeps.lookup.find_sweep`: one line naming the candidates when none or several match)."""
    path = find_sweep(ref, runs_dir)
    runs = scan_runs(runs_dir) if runs is None else runs
    for sweep in group_sweeps(runs, runs_dir):
        if sweep.path.resolve() == path:
            return sweep
    return read_sweep(path)
