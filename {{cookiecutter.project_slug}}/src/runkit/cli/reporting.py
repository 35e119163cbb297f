"""`runs report`: a self-contained HTML file and a PDF for one run or one sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runkit.catalog.details import run_details
from runkit.catalog.history import metric_history
from runkit.catalog.runs import read_run_entry, resolve_run, scan_runs
from runkit.catalog.sweeps import resolve_sweep
from runkit.cli.common import DEFAULT_RUNS_DIR, RunsDir, check_runs_dir, one_line_errors


@one_line_errors
def report(
    run: Annotated[
        str | None, typer.Argument(help="Run id, unique id prefix, run directory or 'last'.")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option("--sweep", help="Report on a sweep (id, prefix, dir or 'last').")
    ] = None,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report-<id>.html and .pdf.")] = Path(
        "reports"
    ),
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", "-m", help="Run: metrics to plot (default all). Sweep: the metric to aggregate."
        ),
    ] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Write the HTML report.")] = True,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Write the PDF report.")] = True,
) -> None:
    """A self-contained HTML report and a PDF for a run or a sweep (matplotlib, offline).

    A run: learning curves, summary, config, git and environment. A sweep: the metric against each swept
    hyperparameter (mean ± std across seeds), every job, and the learning curves.
    """
    from runkit.reports.report import run_report, sweep_report

    if (run is None) == (sweep is None):
        raise typer.BadParameter("give one run or --sweep SWEEP")
    if not html and not pdf:
        raise typer.BadParameter("--no-html and --no-pdf leave nothing to write")
    runs_dir = Path(runs_dir)
    if sweep is not None:
        check_runs_dir(runs_dir)
        chosen = resolve_sweep(sweep, runs_dir, scan_runs(runs_dir))
        jobs = [j for j in chosen.jobs if not j.corrupt]
        if not jobs:
            typer.echo(f"ERROR: sweep {chosen.id} has no readable jobs", err=True)
            raise typer.Exit(1)
        chosen.jobs = jobs
        histories = {j.id: metric_history(j.path) for j in jobs}
        first = run_details(read_run_entry(jobs[0].path, sweep_dir=chosen.path))
        written = sweep_report(chosen, histories, first, out, metric[0] if metric else None, html, pdf)
    else:
        assert run is not None
        if not Path(run).exists():
            check_runs_dir(runs_dir)
        entry = resolve_run(run, runs_dir)
        written = run_report(run_details(entry), metric_history(entry.path), out, metric, html, pdf)
    for path in written:
        typer.echo(str(path))
