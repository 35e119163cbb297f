"""The end-of-sweep summary: one row per job, best job marked, mean/std over seeds; CSV, Markdown, terminal.

Built only from what is on disk (job records, run.json, summary.json), so it can be rebuilt at any time, e.g.
by the `runs` command line for a sweep that was interrupted.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runkit.formatting import fmt_value
from runkit.storage.jsonio import CorruptRunFileError, read_json
from runkit.storage.layout import SUMMARY_FILE, SWEEP_SUMMARY_CSV, SWEEP_SUMMARY_MD, TRACEBACK_FILE
from runkit.storage.liveness import effective_status
from runkit.storage.records import JobAttempt
from runkit.storage.status import Status
from runkit.sweeps.grouping import SEED_KEY, JobKey, group_over_seeds, job_key, job_params, swept_params
from runkit.sweeps.records import read_jobs, read_run

CSV_COLUMNS = [
    "job",
    "run_id",
    "status",
    "duration_s",
    "final",
    "best",
    "is_best",
    "overrides",
    "run_dir",
    "error",
    "traceback",
]
SEED = SEED_KEY
COMPLETED = Status.COMPLETED.value


@dataclass
class JobRow:
    job: int
    run_id: str | None
    run_dir: str | None  # relative to the sweep directory
    overrides: list[str]  # all of the job's task overrides
    params: dict[str, str]  # the overrides that vary across the sweep
    status: str
    duration_s: float | None
    final: float | None  # last logged value of the monitored metric
    best: float | None  # best value of the monitored metric
    is_best: bool = False
    error: str | None = None
    traceback: str | None = None  # relative to the sweep directory

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.params.items()) or "(defaults)"


@dataclass
class SeedGroup:
    params: dict[str, str]  # the varying overrides other than seed
    n: int  # jobs in the group
    completed: int  # of which completed with a value
    mean: float | None
    std: float | None  # sample standard deviation (n-1); None below two values
    min: float | None
    max: float | None
    seeds: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.params.items()) or "(defaults)"


@dataclass
class SweepSummary:
    metric: str
    mode: str
    rows: list[JobRow]
    varying: list[str]
    seed_groups: list[SeedGroup]

    @property
    def best(self) -> JobRow | None:
        return next((r for r in self.rows if r.is_best), None)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts

    @property
    def all_completed(self) -> bool:
        return bool(self.rows) and all(r.status == COMPLETED for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "monitor": {"metric": self.metric, "mode": self.mode},
            "varying": self.varying,
            "counts": self.counts,
            "best": None if best is None else {"job": best.job, "run_id": best.run_id, "value": best.best},
            "jobs": [asdict(r) for r in self.rows],
            "seed_groups": [asdict(g) for g in self.seed_groups] if self.seed_groups else None,
        }


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _latest_attempts(records: list[JobAttempt]) -> list[JobAttempt]:
    """One record per job (same overrides): its newest attempt."""
    latest: dict[JobKey, JobAttempt] = {}
    for record in records:
        key = job_key(record.get("overrides") or [])
        if key not in latest or record.get("start_time", 0) >= latest[key].get("start_time", 0):
            latest[key] = record
    return sorted(latest.values(), key=lambda r: (r.get("job_num", 0), r.get("start_time", 0)))


def _row(sweep_dir: Path, record: JobAttempt, metric: str) -> JobRow:
    run_dir = record.get("run_dir")
    run = read_run(sweep_dir, run_dir)
    summary: dict[str, Any] = {}
    if run_dir and (sweep_dir / run_dir / SUMMARY_FILE).is_file():
        try:
            summary = read_json(sweep_dir / run_dir / SUMMARY_FILE)
        except (OSError, CorruptRunFileError):
            summary = {}
    status = effective_status(dict(record))
    if status == Status.RUNNING.value and run:
        status = effective_status(dict(run))
    traceback = record.get("traceback")
    if run_dir and (sweep_dir / run_dir / TRACEBACK_FILE).is_file():
        traceback = f"{run_dir}/{TRACEBACK_FILE}"
    duration = run.get("duration_s") if run else None
    if duration is None:
        duration = record.get("duration_s")
    best = (summary.get("best") or {}).get("value")
    return JobRow(
        job=int(record.get("job_num", 0)),
        run_id=record.get("run_id") or run.get("id"),
        run_dir=run_dir,
        overrides=list(record.get("overrides") or []),
        params={},
        status=status,
        duration_s=_number(duration),
        final=_number((summary.get("last") or {}).get(metric)),
        best=_number(best),
        error=record.get("error") or run.get("error"),
        traceback=traceback if status != COMPLETED else None,
    )


def _varying(rows: list[JobRow], always: list[str]) -> list[str]:
    return swept_params([job_params(r.overrides) for r in rows], always)


def _seed_groups(rows: list[JobRow], varying: list[str]) -> list[SeedGroup]:
    if SEED not in varying:
        return []
    result = []
    for params, members in group_over_seeds(rows, lambda row: row.params):
        values = [r.best for r in members if r.status == COMPLETED and r.best is not None]
        result.append(
            SeedGroup(
                params={str(k): str(v) for k, v in params.items()},
                n=len(members),
                completed=len(values),
                mean=statistics.fmean(values) if values else None,
                std=statistics.stdev(values) if len(values) > 1 else None,
                min=min(values) if values else None,
                max=max(values) if values else None,
                seeds=[r.params.get(SEED, "") for r in members],
            )
        )
    return result


def build_summary(
    sweep_dir: Path, metric: str, mode: str = "max", always_show: list[str] | None = None
) -> SweepSummary:
    """Read the sweep directory back into one row per job (its newest attempt), best job marked."""
    sweep_dir = Path(sweep_dir)
    rows = [_row(sweep_dir, record, metric) for record in _latest_attempts(read_jobs(sweep_dir))]
    varying = _varying(rows, always_show or [])
    for row in rows:
        params = job_params(row.overrides)
        row.params = {k: params[k] for k in varying if k in params}
    scored = [(r.best, r) for r in rows if r.status == COMPLETED and r.best is not None]
    if scored:
        pick = max if mode == "max" else min
        pick(scored, key=lambda pair: pair[0])[1].is_best = True
    return SweepSummary(metric, mode, rows, varying, _seed_groups(rows, varying))


# --- writers -----------------------------------------------------------------------------------------------
def _repr(value: float | None) -> str:
    return "" if value is None else repr(value)


def write_csv(summary: SweepSummary, path: Path) -> None:
    """summary.csv: fixed columns first (CSV_COLUMNS), then one column per varying override, then (when
    seed is swept) the group's mean/std over seeds."""
    seeds = bool(summary.seed_groups)
    group_of: dict[int, SeedGroup] = {}
    for group in summary.seed_groups:
        for row in summary.rows:
            if {k: v for k, v in row.params.items() if k != SEED} == group.params:
                group_of[row.job] = group
    columns = CSV_COLUMNS + summary.varying + (["group_n", "group_mean", "group_std"] if seeds else [])
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in summary.rows:
            values = [
                row.job,
                row.run_id or "",
                row.status,
                "" if row.duration_s is None else round(row.duration_s, 3),
                _repr(row.final),
                _repr(row.best),
                "true" if row.is_best else "false",
                " ".join(row.overrides),
                row.run_dir or "",
                row.error or "",
                row.traceback or "",
            ]
            values += [row.params.get(k, "") for k in summary.varying]
            if seeds:
                member_of = group_of.get(row.job)
                values += (
                    [member_of.n, _repr(member_of.mean), _repr(member_of.std)] if member_of else ["", "", ""]
                )
            writer.writerow(values)


def _short(value: str) -> str:
    """An override value for people: long floats (e.g. Optuna's samples) cut to 4 significant digits."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if len(value) > 8 and not value.lstrip("-").isdigit() else value


def _md_cell(value: Any) -> str:
    return fmt_value(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: SweepSummary, title: str) -> str:
    metric = summary.metric
    lines = [f"# {title}", ""]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.counts.items()))
    lines += [f"{len(summary.rows)} jobs: {counts}. Monitored metric: `{metric}` ({summary.mode}).", ""]
    best = summary.best
    if best is not None:
        lines += [
            f"**Best job: #{best.job}** ({best.label}), run `{best.run_id}`: {metric} = {best.best:.6g}",
            "",
        ]
    header = ["job", *summary.varying, "status", "duration (s)", f"final {metric}", f"best {metric}", "run"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.rows:
        cells = [
            f"**{row.job}** (best)" if row.is_best else str(row.job),
            *[_short(row.params.get(k, "")) for k in summary.varying],
            row.status,
            fmt_value(row.duration_s, 3),
            fmt_value(row.final),
            fmt_value(row.best),
            row.run_id or "",
        ]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    if summary.seed_groups:
        lines += ["", f"## Over seeds: {metric} (best per run)", ""]
        lines += ["| configuration | runs | mean | std | min | max |", "|---|---|---|---|---|---|"]
        for group in summary.seed_groups:
            group_cells: list[Any] = [
                group.label,
                f"{group.completed}/{group.n}",
                group.mean,
                group.std,
                group.min,
                group.max,
            ]
            lines.append("| " + " | ".join(_md_cell(c) for c in group_cells) + " |")
    failed = [r for r in summary.rows if r.status != COMPLETED]
    if failed:
        lines += ["", "## Jobs that did not complete", ""]
        for row in failed:
            where = f" — traceback: [{row.traceback}]({row.traceback})" if row.traceback else ""
            lines.append(
                f"- job {row.job} ({row.label}): **{row.status}**: {row.error or 'no error recorded'}{where}"
            )
    return "\n".join(lines) + "\n"


def write_markdown(summary: SweepSummary, path: Path, title: str) -> None:
    Path(path).write_text(render_markdown(summary, title), encoding="utf-8")


def write_summary_files(summary: SweepSummary, sweep_dir: Path, title: str) -> None:
    write_csv(summary, Path(sweep_dir) / SWEEP_SUMMARY_CSV)
    write_markdown(summary, Path(sweep_dir) / SWEEP_SUMMARY_MD, title)


def summary_tables(summary: SweepSummary, title: str, sweep_dir: Path) -> list[Any]:
    """Rich renderables for the terminal: the job table, then the seed table when seed is swept."""
    from rich.markup import escape
    from rich.table import Table

    metric = summary.metric
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.counts.items()))
    table = Table(title=f"{title}: {counts}", title_justify="left", header_style="bold")
    table.add_column("job", justify="right", no_wrap=True)
    for key in summary.varying:
        table.add_column(key)
    table.add_column("status", no_wrap=True)
    table.add_column("time (s)", justify="right", no_wrap=True)
    table.add_column(f"final {metric}", justify="right")
    table.add_column(f"best {metric}", justify="right")
    table.add_column("run", no_wrap=True)
    styles = {COMPLETED: "green", Status.FAILED.value: "bold red", Status.SKIPPED.value: "yellow"}
    for row in summary.rows:
        table.add_row(
            f"{row.job} ★" if row.is_best else str(row.job),
            *[escape(_short(row.params.get(k, ""))) for k in summary.varying],
            f"[{styles.get(row.status, 'red')}]{row.status}[/]",
            fmt_value(row.duration_s, 3),
            fmt_value(row.final),
            fmt_value(row.best),
            row.run_id or "",
            style="bold" if row.is_best else None,
        )
    out: list[Any] = [table]
    if summary.seed_groups:
        seeds = Table(title=f"over seeds: {metric}", title_justify="left", header_style="bold")
        for name in ("configuration", "runs", "mean", "std", "min", "max"):
            seeds.add_column(name, justify="left" if name == "configuration" else "right")
        for g in summary.seed_groups:
            stats = (fmt_value(v) for v in (g.mean, g.std, g.min, g.max))
            seeds.add_row(escape(g.label), f"{g.completed}/{g.n}", *stats)
        out.append(seeds)
    for row in summary.rows:
        if row.status != COMPLETED:
            where = f" (traceback: {Path(sweep_dir) / row.traceback})" if row.traceback else ""
            error = escape(row.error or "no error recorded")
            out.append(f"[red]job {row.job} {row.status}[/]: {error}{escape(where)}")
    out.append(f"summary: {Path(sweep_dir) / SWEEP_SUMMARY_MD}")
    return out
