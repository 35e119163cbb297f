"""`runs list`: a table of runs (or sweeps), filtered and sorted, as a table, CSV or JSON."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from runkit.catalog.entry import CORRUPT, RunEntry
from runkit.catalog.query import parse_where, select_runs, sort_key
from runkit.catalog.runs import scan_runs
from runkit.catalog.sweeps import SweepEntry, group_sweeps, resolve_sweep
from runkit.cli.common import (
    DEFAULT_RUNS_DIR,
    Format,
    RunsDir,
    check_runs_dir,
    emit_csv,
    emit_json,
    one_line_errors,
)
from runkit.cli.common import warn as print_warning
from runkit.errors import UserError
from runkit.formatting import fmt_duration, fmt_time, fmt_value
from runkit.storage.status import Status

STATUS_STYLE = {
    Status.COMPLETED.value: "green",
    Status.RUNNING.value: "yellow",
    Status.FAILED.value: "red",
    Status.CRASHED.value: "red",
    Status.ABORTED.value: "magenta",
    Status.PREEMPTED.value: "magenta",
    CORRUPT: "bold red",
}
LIST_COLUMNS = ["id", "name", "status", "start", "duration_s", "sweep", "tags", "params", "monitor", "best"]
CSV_COLUMNS = [*LIST_COLUMNS, "last_step", "path", "problem"]
SWEEP_COLUMNS = ["id", "name", "start", "jobs", "status", "swept", "monitor", "best", "best_run", "path"]


def params_text(params: dict[str, Any], width: int = 60) -> str:
    text = " ".join(f"{k}={fmt_value(v)}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def monitor_text(run: RunEntry, shared_monitor: str | None) -> str:
    if run.summary_problem:
        return "? (summary.json unreadable)"
    value = run.monitor_value
    if value is None:
        return ""
    return fmt_value(value) if shared_monitor else f"{run.monitor}={fmt_value(value)}"


# Above this many rows the list is drawn as one block of aligned text (rich's per-cell layout costs ~0.6 ms
# per row: 1,000 runs would take most of a second).
RICH_TABLE_MAX_ROWS = 200


def table_rows(runs: list[RunEntry]) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """Column headers (with justification) and the cells of each run, as plain strings."""
    monitors = {r.monitor for r in runs if r.monitor}
    shared = next(iter(monitors)) if len(monitors) == 1 else None
    show_sweep = any(r.sweep_id for r in runs)
    show_tags = any(r.tags for r in runs)
    columns = [("id", "left"), ("name", "left"), ("status", "left"), ("start", "left"), ("duration", "right")]
    if show_sweep:
        columns.append(("sweep", "left"))
    if show_tags:
        columns.append(("tags", "left"))
    columns += [("params", "left"), (f"best {shared}" if shared else "best metric", "right")]
    rows = []
    for run in runs:
        cells = [run.id, run.name[:24], run.status, fmt_time(run.start_time)[:16], fmt_duration(run.duration)]
        if show_sweep:
            cells.append(run.sweep_id or "")
        if show_tags:
            cells.append(",".join(run.tags)[:20])
        # A damaged directory's reason, without its (long) path: stderr has the full one.
        problem = (run.problem or "").replace(f"{run.path}{os.sep}", "")
        cells.append(params_text(run.key_params) if not run.corrupt else problem)
        cells.append(monitor_text(run, shared))
        rows.append(cells)
    return columns, rows


def runs_table(runs: list[RunEntry], title: str) -> Any:
    """A rich Table; for long lists one rich Text of aligned columns, the status still coloured."""
    from rich.table import Table
    from rich.text import Text

    columns, rows = table_rows(runs)
    status_col = 2
    if len(rows) > RICH_TABLE_MAX_ROWS:
        widths = [max(len(header), *(len(row[i]) for row in rows)) for i, (header, _) in enumerate(columns)]

        def line(cells: list[str]) -> list[str]:
            return [
                cell.rjust(widths[i]) if columns[i][1] == "right" else cell.ljust(widths[i])
                for i, cell in enumerate(cells)
            ]

        text = Text(title + "\n")
        text.append("  ".join(line([h for h, _ in columns])).rstrip() + "\n", style="bold")
        text.append("  ".join("─" * w for w in widths) + "\n")
        for row, run in zip(rows, runs, strict=True):
            padded = line(row)
            text.append("  ".join(padded[:status_col]) + "  ")
            text.append(padded[status_col], style=STATUS_STYLE.get(run.status, ""))
            text.append(("  " + "  ".join(padded[status_col + 1 :])).rstrip() + "\n")
        text.rstrip()
        return text
    table = Table(title=title, title_justify="left", header_style="bold")
    for header, justify in columns:
        table.add_column(
            header,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=header != "params",
            overflow="fold" if header == "params" else "ellipsis",
            style="cyan" if header == "id" else None,
        )
    for row, run in zip(rows, runs, strict=True):
        cells: list[Any] = [Text(c) for c in row]
        cells[status_col] = Text(row[status_col], style=STATUS_STYLE.get(run.status, ""))
        if run.corrupt:
            cells[-2] = Text(row[-2], style="red")
        table.add_row(*cells)
    return table


def sweeps_table(sweeps: list[SweepEntry]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{len(sweeps)} sweep(s)", title_justify="left", header_style="bold")
    for column in ("id", "name", "start", "jobs", "status", "swept", "best", "best run"):
        table.add_column(column, no_wrap=column in ("id", "start", "best run"))
    for sweep in sweeps:
        row = sweep.to_row()
        status = ", ".join(f"{n} {s}" for s, n in sorted(row["status"].items()))
        best = f"{row['monitor']}={fmt_value(row['best'])}" if row["monitor"] else ""
        table.add_row(
            row["id"],
            Text(row["name"]),
            row["start"][:16],
            str(row["jobs"]),
            status,
            ", ".join(row["swept"]),
            best,
            row["best_run"] or "",
        )
    return table


@one_line_errors
def list_runs(
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", "-s", help="Only these statuses (repeat or comma-separate), e.g. failed,crashed."
        ),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Only runs with this tag (repeatable).")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option("--sweep", help="Only the jobs of this sweep (id, prefix, dir).")
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            "-w",
            help="KEY OP VALUE on a field, metric, override or config key, e.g. 'lr<1e-3' (repeatable: AND).",
        ),
    ] = None,
    sort: Annotated[str, typer.Option("--sort", help="Column, param or metric to sort by.")] = "start",
    reverse: Annotated[bool, typer.Option("--reverse", "-r", help="Descending order.")] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", help="Show the first N rows after sorting (-r -n 5: newest 5)."),
    ] = None,
    sweeps: Annotated[
        bool, typer.Option("--sweeps", help="List sweeps (one row per sweep) instead of runs.")
    ] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """List runs with status, start, duration, key params (the overrides) and the monitored metric."""
    runs_dir = check_runs_dir(Path(runs_dir))
    for expr in where or []:
        parse_where(expr)  # a bad condition fails before any warning about the runs
    warnings: list[str] = []
    runs = scan_runs(runs_dir, warn=warnings.append)
    for message in warnings:
        print_warning(message)
    if sweeps:
        found = group_sweeps(runs, runs_dir)
        if sweep:
            found = [resolve_sweep(sweep, runs_dir, runs)]
        if reverse:
            found.reverse()
        if limit is not None:
            found = found[:limit]
        rows = [s.to_row() for s in found]
        if fmt is Format.json:
            emit_json(rows)
        elif fmt is Format.csv:
            emit_csv(rows, SWEEP_COLUMNS)
        else:
            from runkit.cli.common import stdout_console

            stdout_console().print(sweeps_table(found))
        return
    if sweep:
        chosen = resolve_sweep(sweep, runs_dir, runs)
        runs = [r for r in runs if r.sweep_dir == chosen.path]
    selected = select_runs(runs, status, tag, where)
    selected.sort(key=lambda r: sort_key(r, sort), reverse=False)
    if reverse:
        # Keep runs without a value last, whatever the direction.
        present = [r for r in selected if sort_key(r, sort)[0] == 0]
        selected = present[::-1] + [r for r in selected if sort_key(r, sort)[0] == 1]
    if limit is not None:
        if limit < 0:
            raise UserError("--limit must be positive")
        selected = selected[:limit]
    rows = [r.to_row() for r in selected]
    if fmt is Format.json:
        emit_json(rows)
        return
    if fmt is Format.csv:
        emit_csv(rows, CSV_COLUMNS)
        return
    from runkit.cli.common import stdout_console

    corrupt = sum(1 for r in selected if r.corrupt)
    title = f"{len(selected)} of {len(runs)} run(s) in {runs_dir}"
    if corrupt:
        title += f"  ({corrupt} corrupt: see warnings)"
    console = stdout_console()
    if not selected:
        console.print(title)
        return
    console.print(runs_table(selected, title))
