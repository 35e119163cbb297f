"""Run and sweep reports: the content built once (reports.model), then written as a self-contained HTML file
(reports.html) and a PDF (reports.pdf), figures drawn with matplotlib (reports.figures), offline.

The HTML embeds its figures as base64 PNG and escapes every recorded value. The PDF has text pages (summary,
config, git, environment) and figure pages (learning curves; for a sweep, the metric against each swept
hyperparameter, mean ± std across seeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runkit.catalog.history import History
from runkit.catalog.sweeps import SweepEntry
from runkit.errors import UserError
from runkit.flatten import flatten_raw
from runkit.formatting import fmt_duration, fmt_size, fmt_time, fmt_value
from runkit.reports.aggregate import (
    default_curve_metrics,
    has_seed_groups,
    job_score,
    params_label,
    sweep_groups,
)
from runkit.reports.figures import curves_figure, sweep_figure
from runkit.reports.html import write_html
from runkit.reports.model import Block, Figure, KeyValues, Paragraph, Preformatted, Report, Section, Table
from runkit.reports.pdf import write_pdf
from runkit.sweeps.grouping import SEED_KEY

NO_OVERRIDES = "(none: all defaults)"
NO_CONFIG = "(no config.yaml)"
# A backend's delivery bookkeeping in run.json (how far its shipper got): not a fact about the run.
BOOKKEEPING_KEYS = frozenset({"shipped_seq", "cursor", "seq"})
TIME_KEYS = frozenset(
    {"time", "start", "end", "heartbeat", "synced", "created", "updated", "started", "ended"}
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def human_value(key: str, value: Any) -> Any:
    """A recorded value as people read it: Unix times (`start_time`, `synced`, ...) as local ISO dates,
    seconds (`duration_s`, `*_seconds`) as durations (runkit.formatting); the rest unchanged."""
    last = str(key).rsplit(".", 1)[-1].lower()
    if _is_number(value):
        if (last in TIME_KEYS or last.endswith(("_time", "_at"))) and value > 1e8:
            return fmt_time(value)
        if last in ("duration", "duration_s") or last.endswith(("_seconds", "_duration")):
            return fmt_duration(value)
        if last.endswith("_bytes") and isinstance(value, int):
            return fmt_size(value)
    if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list)) for v in value):
        return ", ".join(fmt_value(v) for v in value)
    return value


def human_items(items: dict[str, Any]) -> dict[str, Any]:
    """Key/values for a report: bookkeeping keys dropped, times and durations made readable."""
    return {
        k: human_value(k, v) for k, v in items.items() if str(k).rsplit(".", 1)[-1] not in BOOKKEEPING_KEYS
    }


def artifacts_block(artifacts: list[dict[str, Any]]) -> Block:
    """Checkpoints, figures and files, with their kind, aliases and size."""
    if not artifacts:
        return Paragraph("no artifacts (no checkpoints, figures or logged files)", muted=True)
    rows = [
        (a["path"], a.get("kind") or "", ", ".join(a.get("aliases", [])), fmt_size(a.get("size")))
        for a in artifacts
    ]
    return Table(["path", "kind", "aliases", "size"], rows, frozenset({3}))


def build_run_report(info: dict[str, Any], history: History, metrics: Sequence[str] | None = None) -> Report:
    """One run's report. `info` is what `runs show --json` prints (catalog.details.run_details)."""
    run_id, name = info["id"], info["name"]
    metrics = list(metrics) if metrics else default_curve_metrics([history])
    curves = curves_figure({run_id: history}, metrics, f"Learning curves: {name} ({run_id})")
    summary = info.get("summary") or {}
    last = summary.get("last") or {}
    best = summary.get("best") or {}
    header = {
        "id": run_id,
        "name": name,
        "status": info["status"],
        "start": fmt_time(info.get("start_time")),
        "end": fmt_time(info.get("end_time")),
        "duration": fmt_duration(info.get("duration_s")),
        "seed": info.get("seed"),
        "tags": ", ".join(info.get("tags") or []),
        "host": info.get("host"),
        "rerun of": info.get("rerun_of"),
        "init from": info.get("init_from"),
        "path": info.get("path"),
    }
    summary_blocks: list[Block] = []
    if best.get("metric") and best.get("value") is not None:
        label = f"best {best['metric']} ({best.get('mode')})"
        summary_blocks.append(KeyValues({label: f"{fmt_value(best['value'])} at step {best.get('step')}"}))
    metric_rows = [(k, last[k]) for k in sorted(last)]
    summary_blocks.append(
        Table(["metric", "last value"], metric_rows, frozenset({1}))
        if metric_rows
        else Paragraph("no metrics")
    )
    summary_blocks.append(Paragraph(f"last step: {fmt_value(summary.get('last_step'))}", muted=True))
    traceback = info.get("traceback")
    sections = [
        Section("Summary", summary_blocks),
        Section("Learning curves", [Figure(curves, "learning curves")]),
        Section("Overrides", [Preformatted(" ".join(info.get("overrides") or []) or NO_OVERRIDES)]),
        Section("Artifacts", [artifacts_block(info.get("artifacts") or [])]),
        Section("Git", [KeyValues(human_items(info.get("git") or {}))]),
        Section("Environment", [KeyValues(human_items(info.get("environment") or {}))]),
        Section("Backends", [KeyValues(human_items(flatten_raw(info.get("backends") or {})))]),
    ]
    if traceback:
        sections.append(Section("Traceback", [Preformatted(traceback)], page_break=True))
    config = Preformatted(info.get("config") or NO_CONFIG)
    sections.append(Section("Config (resolved)", [config], page_break=not traceback))
    return Report(
        title=f"Run {run_id}: {name}",
        stem=f"report-{run_id}",
        header_heading="Run",
        header={k: v for k, v in header.items() if v not in (None, "")},
        sections=sections,
    )


def sweep_meta_blocks(meta: dict[str, Any]) -> list[Block]:
    """sweep.json for people: its facts as key/values (times as dates, durations as durations), its jobs as a
    table (one row per job: number, status, params, run, duration, final and best score)."""
    facts = {k: v for k, v in meta.items() if k not in ("jobs", "seed_groups")}
    blocks: list[Block] = [KeyValues(human_items(flatten_raw(facts)))]
    jobs = [j for j in meta.get("jobs") or [] if isinstance(j, dict)]
    if jobs:
        rows = [
            [
                j.get("job"),
                j.get("status"),
                " ".join(f"{k}={fmt_value(v)}" for k, v in (j.get("params") or {}).items()),
                j.get("run_id") or "",
                fmt_duration(j.get("duration_s")),
                j.get("final"),
                j.get("best"),
                "yes" if j.get("is_best") else "",
                str(j.get("error") or "").splitlines()[0] if j.get("error") else "",
            ]
            for j in jobs
        ]
        columns = ["job", "status", "params", "run", "duration", "final", "best", "best job", "error"]
        blocks.append(Table(columns, rows, frozenset({0, 4, 5, 6})))
    return blocks


def build_sweep_report(
    sweep: SweepEntry,
    histories: dict[str, History],
    first_job_info: dict[str, Any] | None,
    metric: str | None,
) -> Report:
    """A sweep's report: jobs, the metric against each swept hyperparameter but the seed (mean ± std over
    seeds where a combination ran several), learning curves of every job, and the first job's config, git
    and environment."""
    jobs = sweep.jobs
    metric = metric or next((j.monitor for j in jobs if j.monitor), None)
    if not metric:
        raise UserError(f"sweep {sweep.id} has no monitored metric recorded; pass --metric NAME")
    params = sweep.swept_params()
    non_seed = [p for p in params if p != SEED_KEY]
    groups = sweep_groups(jobs, params, metric)
    over_seeds = has_seed_groups(groups)
    vs_fig = sweep_figure(jobs, params, metric, f"{metric} against the swept hyperparameters", over_seeds)
    curve_metrics = (
        [metric]
        if any(metric in h for h in histories.values())
        else default_curve_metrics(histories.values())[:4]
    )
    curves = curves_figure(
        {f"{j.id} {params_label(j, params)}": histories.get(j.id, {}) for j in jobs},
        curve_metrics,
        f"Learning curves: {metric}",
    )
    seeds = max((g.n for g in groups), default=0)
    meta = sweep.meta
    header: dict[str, Any] = {
        "sweep id": sweep.id,
        "name": sweep.name,
        "directory": str(sweep.path),
        "start": fmt_time(meta.get("start_time") or sweep.start_time),
        "end": fmt_time(meta.get("end_time")),
        "duration": fmt_duration(meta.get("duration_s")) if _is_number(meta.get("duration_s")) else "",
        "jobs": len(jobs),
        "status": ", ".join(f"{n} {s}" for s, n in sorted(sweep.status_counts().items())),
        "swept": ", ".join(params) or "(nothing differs)",
        "metric": metric,
        "seeds per point": f"{seeds} (mean ± std over seeds)" if over_seeds else "1 (one run per point)",
    }
    best = sweep.best_job()
    if best:
        header["best run"] = (
            f"{best.id}: {best.monitor}={fmt_value(best.monitor_value)} ({params_label(best, params)})"
        )
    job_columns = ["id", "status", *params, metric, "duration"]
    job_rows = [
        [
            j.id,
            j.status,
            *(j.key_params.get(p) for p in params),
            job_score(j, metric),
            fmt_duration(j.duration),
        ]
        for j in jobs
    ]
    jobs_table = Table(job_columns, job_rows, frozenset({len(job_columns) - 2, len(job_columns) - 1}))
    metric_blocks: list[Block] = []
    if over_seeds:
        metric_blocks.append(
            Table(
                [*non_seed, "n", f"{metric} mean", "± std", "runs"],
                [
                    [*(g.values.get(p) for p in non_seed), g.n, g.mean, g.std, " ".join(g.run_ids)]
                    for g in groups
                ],
                frozenset(range(len(non_seed), len(non_seed) + 3)),
            )
        )
    if vs_fig is not None:
        metric_blocks.append(Figure(vs_fig, f"{metric} against swept hyperparameters"))
    elif not non_seed:
        metric_blocks.append(Paragraph("only the seed varies: nothing to plot against", muted=True))
    heading = (
        f"{metric}: mean ± std over seeds" if over_seeds else f"{metric} against the swept hyperparameters"
    )
    info = first_job_info or {}
    sections = [
        Section(heading, metric_blocks),
        Section("Jobs", [jobs_table]),
        Section("Learning curves", [Figure(curves, "learning curves")]),
    ]
    if meta:
        sections.append(Section("sweep.json", sweep_meta_blocks(meta), in_pdf=False))
    sections += [
        Section("Git (first job)", [KeyValues(human_items(info.get("git") or {}))], page_break=True),
        Section("Environment (first job)", [KeyValues(human_items(info.get("environment") or {}))]),
        Section("Config of the first job (resolved)", [Preformatted(info.get("config") or NO_CONFIG)]),
    ]
    return Report(
        title=f"Sweep {sweep.id}: {sweep.name}",
        stem=f"report-sweep-{sweep.id}",
        header_heading="Sweep",
        header={k: v for k, v in header.items() if v not in (None, "")},
        sections=sections,
    )


def write_report(report: Report, out_dir: Path, html_out: bool = True, pdf_out: bool = True) -> list[Path]:
    """<stem>.html and/or <stem>.pdf in out_dir; the paths written."""
    out_dir = Path(out_dir)
    written: list[Path] = []
    if html_out:
        written.append(write_html(report, out_dir / f"{report.stem}.html"))
    if pdf_out:
        written.append(write_pdf(report, out_dir / f"{report.stem}.pdf"))
    return written


def run_report(
    info: dict[str, Any],
    history: History,
    out_dir: Path,
    metrics: Sequence[str] | None = None,
    html_out: bool = True,
    pdf_out: bool = True,
) -> list[Path]:
    """Write report-<id>.html / .pdf for one run."""
    return write_report(build_run_report(info, history, metrics), out_dir, html_out, pdf_out)


def sweep_report(
    sweep: SweepEntry,
    histories: dict[str, History],
    first_job_info: dict[str, Any] | None,
    out_dir: Path,
    metric: str | None = None,
    html_out: bool = True,
    pdf_out: bool = True,
) -> list[Path]:
    """Write report-sweep-<id>.html / .pdf for a sweep."""
    report = build_sweep_report(sweep, histories, first_job_info, metric)
    return write_report(report, out_dir, html_out, pdf_out)
