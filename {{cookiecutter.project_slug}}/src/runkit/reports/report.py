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
from runkit.formatting import fmt_time, fmt_value
from runkit.reports.aggregate import SEED_KEY, default_curve_metrics, job_score, params_label, sweep_groups
from runkit.reports.figures import curves_figure, sweep_figure
from runkit.reports.html import write_html
from runkit.reports.model import Block, Figure, KeyValues, Paragraph, Preformatted, Report, Section, Table
from runkit.reports.pdf import write_pdf

NO_OVERRIDES = "(none: all defaults)"
NO_CONFIG = "(no config.yaml)"


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
        "duration (s)": None if info.get("duration_s") is None else round(info["duration_s"], 1),
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
        Section("Git", [KeyValues(info.get("git") or {})]),
        Section("Environment", [KeyValues(info.get("environment") or {})]),
        Section("Backends", [KeyValues(flatten_raw(info.get("backends") or {}))]),
    ]
    if traceback:
        sections.append(Section("Traceback", [Preformatted(traceback)], page_break=True))
    artifacts = info.get("artifacts") or []
    if artifacts:
        rows = [(a["path"], a.get("kind"), ",".join(a.get("aliases", [])), a.get("size")) for a in artifacts]
        table = Table(["path", "kind", "aliases", "bytes"], rows, frozenset({3}))
        sections.append(Section("Artifacts", [table], in_pdf=False))
    config = Preformatted(info.get("config") or NO_CONFIG)
    sections.append(Section("Config (resolved)", [config], page_break=not traceback))
    return Report(
        title=f"Run {run_id}: {name}",
        stem=f"report-{run_id}",
        header_heading="Run",
        header={k: v for k, v in header.items() if v not in (None, "")},
        sections=sections,
    )


def build_sweep_report(
    sweep: SweepEntry,
    histories: dict[str, History],
    first_job_info: dict[str, Any] | None,
    metric: str | None,
) -> Report:
    """A sweep's report: jobs, the metric against each swept hyperparameter (mean ± std across seeds),
    learning curves of every job, and the first job's config, git and environment."""
    jobs = sweep.jobs
    metric = metric or next((j.monitor for j in jobs if j.monitor), None)
    if not metric:
        raise UserError(f"sweep {sweep.id} has no monitored metric recorded; pass --metric NAME")
    params = sweep.swept_params()
    non_seed = [p for p in params if p != SEED_KEY]
    vs_fig = sweep_figure(jobs, params, metric, f"{metric} against the swept hyperparameters")
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
    header: dict[str, Any] = {
        "sweep id": sweep.id,
        "name": sweep.name,
        "directory": str(sweep.path),
        "jobs": len(jobs),
        "status": ", ".join(f"{n} {s}" for s, n in sorted(sweep.status_counts().items())),
        "swept": ", ".join(params) or "(nothing differs)",
        "metric": metric,
        "seeds per point": "yes" if SEED_KEY in params else "no (one run per point)",
    }
    best = sweep.best_job()
    if best:
        header["best run"] = (
            f"{best.id}: {best.monitor}={fmt_value(best.monitor_value)} ({params_label(best, params)})"
        )
    aggregate = Table(
        [*non_seed, "n", f"{metric} mean", "± std", "runs"],
        [
            [*(g.values.get(p) for p in non_seed), g.n, g.mean, g.std, " ".join(g.run_ids)]
            for g in sweep_groups(jobs, params, metric)
        ],
        frozenset(range(len(non_seed), len(non_seed) + 3)),
    )
    job_columns = ["id", "status", *params, metric, "duration (s)"]
    job_rows = [
        [
            j.id,
            j.status,
            *(j.key_params.get(p) for p in params),
            job_score(j, metric),
            None if j.duration is None else round(j.duration, 1),
        ]
        for j in jobs
    ]
    jobs_table = Table(job_columns, job_rows, frozenset({len(job_columns) - 2, len(job_columns) - 1}))
    info = first_job_info or {}
    sections = [
        Section(
            f"{metric}: mean ± std across seeds",
            [aggregate, Figure(vs_fig, f"{metric} against swept hyperparameters")],
        ),
        Section("Jobs", [jobs_table]),
        Section("Learning curves", [Figure(curves, "learning curves")]),
    ]
    if sweep.meta:
        sections.append(Section("sweep.json", [KeyValues(flatten_raw(sweep.meta))], in_pdf=False))
    sections += [
        Section("Git (first job)", [KeyValues(info.get("git") or {})], page_break=True),
        Section("Environment (first job)", [KeyValues(info.get("environment") or {})]),
        Section("Config of the first job (resolved)", [Preformatted(info.get("config") or NO_CONFIG)]),
    ]
    return Report(
        title=f"Sweep {sweep.id}: {sweep.name}",
        stem=f"report-sweep-{sweep.id}",
        header_heading="Sweep",
        header=header,
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
