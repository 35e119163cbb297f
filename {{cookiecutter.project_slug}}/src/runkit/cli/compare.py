"""`runs compare`: the params that differ and the metrics side by side, and a plot of metrics over steps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from runkit.catalog.compare import differing_params, metrics_side_by_side
from runkit.catalog.entry import RunEntry
from runkit.catalog.history import metric_history
from runkit.catalog.runs import resolve_run, scan_runs
from runkit.catalog.sweeps import resolve_sweep
from runkit.cli.common import (
    DEFAULT_RUNS_DIR,
    Format,
    RunsDir,
    check_runs_dir,
    emit_csv,
    emit_json,
    one_line_errors,
    stdout_console,
)
from runkit.errors import UserError
from runkit.formatting import fmt_value


def gather(run_refs: list[str], sweep: str | None, runs_dir: Path) -> list[RunEntry]:
    if sweep and run_refs:
        raise typer.BadParameter("give run ids or --sweep, not both")
    if sweep:
        chosen = resolve_sweep(sweep, runs_dir, scan_runs(runs_dir))
        runs = [j for j in chosen.jobs if not j.corrupt]
        if not runs:
            raise UserError(f"sweep {chosen.id} has no readable jobs")
        return runs
    if len(run_refs) < 2:
        raise typer.BadParameter("give at least two runs to compare (or --sweep SWEEP)")
    runs = [resolve_run(ref, runs_dir) for ref in run_refs]
    ids = [r.path.resolve() for r in runs]
    if len(set(ids)) != len(ids):
        raise typer.BadParameter("the same run is given twice")
    return runs


def default_plot_metrics(runs: list[RunEntry]) -> list[str]:
    monitors = sorted({r.monitor for r in runs if r.monitor})
    losses = sorted({k for r in runs for k in r.metrics if k.endswith("loss") and k.startswith("train")})
    return (monitors + losses)[:6]


def plot_runs(runs: list[RunEntry], metrics: list[str], path: Path) -> Path:
    from runkit.reports.figures import curves_figure, save_png

    histories = {f"{r.id} {r.name}": metric_history(r.path, metrics) for r in runs}
    missing = [m for m in metrics if not any(m in h for h in histories.values())]
    if missing and len(missing) == len(metrics):
        known = sorted({k for r in runs for k in r.metrics})
        raise UserError(f"none of {', '.join(metrics)} was logged by these runs; logged: {', '.join(known)}")
    fig = curves_figure(histories, metrics, "compare: " + ", ".join(r.id for r in runs))
    return save_png(fig, path)


def fitting_runs(
    runs: list[RunEntry],
    params: dict[str, list[Any]],
    metrics: dict[str, list[Any]],
    labels: list[str],
    width: int,
) -> int:
    """How many run columns fit whole beside the labels in `width` columns (at least one): a cut cell reads
    as another number, so runs that do not fit are left out, and named, rather than squeezed."""
    label_width = max(map(len, labels)) + 3
    used, shown = label_width + 1, 0
    for index, run in enumerate(runs):
        cells = [run.id, run.name, run.status]
        cells += [fmt_value(values[index]) for values in (*params.values(), *metrics.values())]
        need = max(map(len, cells)) + 3
        if shown and used + need > width:
            break
        used, shown = used + need, shown + 1
    return max(shown, 1)


@one_line_errors
def compare_runs(
    runs: Annotated[
        list[str] | None, typer.Argument(help="Two or more run ids (or prefixes, dirs, 'last').")
    ] = None,
    sweep: Annotated[str | None, typer.Option("--sweep", help="Compare every job of this sweep.")] = None,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", "-m", help="Metric to plot over steps (repeatable; default: monitored + train loss)."
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the metrics-over-steps plot to this PNG/PDF/SVG.")
    ] = None,
    all_params: Annotated[
        bool, typer.Option("--all-params", help="Show every param, not only those that differ.")
    ] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """Params that differ and metrics side by side; --plot draws chosen metrics over steps."""
    runs_dir = Path(runs_dir)
    if sweep or not all(Path(r).exists() for r in runs or []):
        check_runs_dir(runs_dir)
    chosen = gather(list(runs or []), sweep, runs_dir)
    params = differing_params(chosen, all_params)
    metrics = metrics_side_by_side(chosen)
    plot_path = None
    if plot is not None:
        plot_path = plot_runs(chosen, list(metric or []) or default_plot_metrics(chosen), plot)
    elif metric:
        raise typer.BadParameter("--metric chooses what --plot draws: add --plot FILE.png")
    if fmt is Format.json:
        emit_json(
            {
                "runs": [
                    {"id": r.id, "name": r.name, "status": r.status, "path": str(r.path)} for r in chosen
                ],
                "params": params,
                "metrics": metrics,
                "plot": str(plot_path) if plot_path else None,
            }
        )
        return
    if fmt is Format.csv:
        columns = ["kind", "key", *(r.id for r in chosen)]
        rows = [
            {"kind": "param", "key": k, **dict(zip([r.id for r in chosen], v, strict=True))}
            for k, v in params.items()
        ]
        rows += [
            {"kind": "metric", "key": k, **dict(zip([r.id for r in chosen], v, strict=True))}
            for k, v in metrics.items()
        ]
        emit_csv(rows, columns)
        return
    from rich.table import Table
    from rich.text import Text

    console = stdout_console()
    labels = ["status", *(f"params.{k}" for k in params), *(f"metrics.{k}" for k in metrics)]
    shown = fitting_runs(chosen, params, metrics, labels, console.width)
    table = Table(title=f"compare {len(chosen)} runs", title_justify="left", header_style="bold")
    table.add_column("", style="cyan", no_wrap=True)
    for run in chosen[:shown]:
        table.add_column(f"{run.id}\n{run.name}", justify="right", no_wrap=True)
    table.add_row(Text("status", style="bold"), *(r.status for r in chosen[:shown]))
    table.add_section()
    # Params and metrics may share a name (the learning rate is a knob, and its schedule a metric): every
    # row says which it is, spelled as --where and --sort take it.
    if params:
        for key, values in params.items():
            table.add_row(f"params.{key}", *(Text(fmt_value(v)) for v in values[:shown]))
    else:
        table.add_row(Text("(no param differs)", style="dim"), *("" for _ in chosen[:shown]))
    table.add_section()
    for key, values in metrics.items():
        numeric = [v for v in values if isinstance(v, (int, float))]
        best_value = None
        if key.startswith("best ") and numeric:
            modes = {r.best.get("mode") for r in chosen if r.monitor == key[5:]}
            best_value = min(numeric) if modes == {"min"} else max(numeric)
        cells = [
            Text(fmt_value(v), style="bold green" if v is not None and v == best_value else "")
            for v in values[:shown]
        ]
        label = f"metrics.{key[5:]} (best)" if key.startswith("best ") else f"metrics.{key}"
        table.add_row(label, *cells)
    console.print(table)
    if shown < len(chosen):
        console.print(
            f"{len(chosen) - shown} more run(s) not shown for width "
            f"({', '.join(r.id for r in chosen[shown:])}): widen the terminal, or -f csv / -f json for all"
        )
    if plot_path:
        console.print(f"plot: {plot_path}")
