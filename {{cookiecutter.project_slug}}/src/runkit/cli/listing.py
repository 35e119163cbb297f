"""`runs list`: a table of runs (or sweeps), filtered and sorted, as a table, CSV or JSON."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from runkit.catalog.entry import CORRUPT, RunEntry
from runkit.catalog.query import check_unambiguous, parse_where, select_runs, sort_key
from runkit.catalog.runs import scan_runs
from runkit.catalog.sweeps import SweepEntry, group_sweeps, resolve_sweep
from runkit.cli.common import (
    DEFAULT_RUNS_DIR,
    Format,
    RunsDir,
    check_runs_dir,
    console_width,
    dropped_note,
    emit_csv,
    emit_json,
    fit_columns,
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


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={fmt_value(v)}" for k, v in params.items())


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
# Which columns stay when the terminal is narrow, most wanted first: the rest are dropped from the end and
# named in a footer. `params` may wrap at spaces: it needs the width of its longest `key=value` (at least
# PARAMS_MIN_WIDTH, at most PARAMS_MAX_MIN_WIDTH).
RUN_PRIORITY = ["id", "status", "name", "best", "params", "duration", "start", "sweep", "tags"]
PARAMS_MIN_WIDTH = 12
PARAMS_MAX_MIN_WIDTH = 30
SWEEP_PRIORITY = ["id", "status", "name", "best", "jobs", "swept", "best run", "start"]
# Column key, header, justification.
Column = tuple[str, str, str]


def table_rows(runs: list[RunEntry]) -> tuple[list[Column], list[list[str]]]:
    """Columns (key, header, justification) and the cells of each run, as plain strings."""
    monitors = {r.monitor for r in runs if r.monitor}
    shared = next(iter(monitors)) if len(monitors) == 1 else None
    show_sweep = any(r.sweep_id for r in runs)
    show_tags = any(r.tags for r in runs)
    columns: list[Column] = [
        ("id", "id", "left"),
        ("name", "name", "left"),
        ("status", "status", "left"),
        ("start", "start", "left"),
        ("duration", "duration", "right"),
    ]
    if show_sweep:
        columns.append(("sweep", "sweep", "left"))
    if show_tags:
        columns.append(("tags", "tags", "left"))
    columns += [
        ("params", "params", "left"),
        ("best", f"best {shared}" if shared else "best metric", "right"),
    ]
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


def fitted(
    columns: list[Column], rows: list[list[str]], priority: list[str], wrap: dict[str, int], width: int
) -> tuple[list[int], list[str]]:
    """The columns that fit `width` (indices) and the headers of those left out."""
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, (_, header, _) in enumerate(columns)]
    keys = [key for key, _, _ in columns]
    kept = fit_columns(keys, widths, priority, width, wrap)
    return kept, [columns[i][1] for i in range(len(columns)) if i not in kept]


def runs_table(runs: list[RunEntry], title: str, width: int | None = None) -> tuple[Any, str | None]:
    """A rich Table (for long lists one rich Text of aligned columns, the status still coloured) that fits the
    console's width, and the footer naming the columns left out (None when all fit)."""
    from rich.table import Table
    from rich.text import Text

    width = console_width() if width is None else width
    all_columns, all_rows = table_rows(runs)
    params_at = [key for key, _, _ in all_columns].index("params")
    longest = max((len(word) for row in all_rows for word in row[params_at].split()), default=0)
    params_min = min(max(longest, PARAMS_MIN_WIDTH), PARAMS_MAX_MIN_WIDTH)
    kept, dropped = fitted(all_columns, all_rows, RUN_PRIORITY, {"params": params_min}, width)
    columns = [all_columns[i] for i in kept]
    rows = [[row[i] for i in kept] for row in all_rows]
    note = dropped_note(dropped) if dropped else None
    status_col = next(i for i, (key, _, _) in enumerate(columns) if key == "status")
    if len(rows) > RICH_TABLE_MAX_ROWS:
        widths = [
            max(len(header), *(len(row[i]) for row in rows)) for i, (_, header, _) in enumerate(columns)
        ]
        spare = width - (sum(widths) + 2 * (len(widths) - 1))
        for i, (key, _, _) in enumerate(columns):
            if key == "params" and spare < 0:  # aligned text cannot wrap: the params are cut
                widths[i] = max(params_min, widths[i] + spare)
                rows = [
                    [*r[:i], r[i] if len(r[i]) <= widths[i] else r[i][: widths[i] - 1] + "…", *r[i + 1 :]]
                    for r in rows
                ]

        def line(cells: list[str]) -> list[str]:
            return [
                cell.rjust(widths[i]) if columns[i][2] == "right" else cell.ljust(widths[i])
                for i, cell in enumerate(cells)
            ]

        text = Text(title + "\n")
        text.append("  ".join(line([h for _, h, _ in columns])).rstrip() + "\n", style="bold")
        text.append("  ".join("─" * w for w in widths) + "\n")
        for row, run in zip(rows, runs, strict=True):
            padded = line(row)
            text.append("  ".join(padded[:status_col]) + "  ")
            text.append(padded[status_col], style=STATUS_STYLE.get(run.status, ""))
            text.append(("  " + "  ".join(padded[status_col + 1 :])).rstrip() + "\n")
        text.rstrip()
        return text, note
    table = Table(title=title, title_justify="left", header_style="bold")
    for key, header, justify in columns:
        table.add_column(
            header,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=key != "params",
            overflow="fold" if key == "params" else "ellipsis",
            min_width=params_min if key == "params" else None,
            style="cyan" if key == "id" else None,
        )
    params_col = next((i for i, (key, _, _) in enumerate(columns) if key == "params"), None)
    for row, run in zip(rows, runs, strict=True):
        cells: list[Any] = [Text(c) for c in row]
        cells[status_col] = Text(row[status_col], style=STATUS_STYLE.get(run.status, ""))
        if run.corrupt and params_col is not None:
            cells[params_col] = Text(row[params_col], style="red")
        table.add_row(*cells)
    return table, note


def sweeps_table(sweeps: list[SweepEntry], width: int | None = None) -> tuple[Any, str | None]:
    """The sweeps as a rich Table that fits the console's width, and the footer naming the columns left
    out."""
    from rich.table import Table
    from rich.text import Text

    width = console_width() if width is None else width
    keys = ["id", "name", "start", "jobs", "status", "swept", "best", "best run"]
    rows = []
    for sweep in sweeps:
        row = sweep.to_row()
        status = ", ".join(f"{n} {s}" for s, n in sorted(row["status"].items()))
        best = f"{row['monitor']}={fmt_value(row['best'])}" if row["monitor"] else ""
        rows.append(
            [
                row["id"],
                row["name"],
                row["start"][:16],
                str(row["jobs"]),
                status,
                ", ".join(row["swept"]),
                best,
                row["best_run"] or "",
            ]
        )
    columns: list[Column] = [(k, k, "right" if k == "jobs" else "left") for k in keys]
    kept, dropped = (
        fitted(columns, rows, SWEEP_PRIORITY, {"swept": 12}, width) if rows else (list(range(8)), [])
    )
    table = Table(title=f"{len(sweeps)} sweep(s)", title_justify="left", header_style="bold")
    for i in kept:
        key = keys[i]
        table.add_column(
            key,
            justify=columns[i][2],  # type: ignore[arg-type]
            no_wrap=key != "swept",
            overflow="fold" if key == "swept" else "ellipsis",
            style="cyan" if key == "id" else None,
        )
    for cells in rows:
        table.add_row(*(Text(cells[i]) for i in kept))
    return table, dropped_note(dropped) if dropped else None


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

            table, note = sweeps_table(found)
            console = stdout_console()
            console.print(table)
            if note:
                console.print(note, style="dim")
        return
    if sweep:
        chosen = resolve_sweep(sweep, runs_dir, runs)
        runs = [r for r in runs if r.sweep_dir == chosen.path]
    selected = select_runs(runs, status, tag, where)
    check_unambiguous(sort, selected, "--sort")
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
    table, note = runs_table(selected, title)
    console.print(table)
    if note:
        console.print(note, style="dim")
