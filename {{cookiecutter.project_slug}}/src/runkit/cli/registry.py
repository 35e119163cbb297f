"""`runs export` (one registry table of every run); `runs archive` / `runs gc` (move or delete old runs)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from runkit.catalog.entry import CORRUPT, RunEntry
from runkit.catalog.export import BASE_COLUMNS, registry_row
from runkit.catalog.query import parse_age, select_runs, split_values
from runkit.catalog.runs import looks_like_run_dir, resolve_run, scan_runs
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
    warn,
)
from runkit.errors import UserError
from runkit.formatting import fmt_duration, fmt_time
from runkit.storage.layout import SWEEPS_DIR
from runkit.storage.status import Status


@one_line_errors
def export(
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="csv or json.")] = Format.csv,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    status: Annotated[list[str] | None, typer.Option("--status", "-s", help="Only these statuses.")] = None,
    where: Annotated[
        list[str] | None, typer.Option("--where", "-w", help="KEY OP VALUE filter (repeatable).")
    ] = None,
) -> None:
    """One registry table across all runs: params (param.*), last metrics (metric.*), status, git commit."""
    if fmt is Format.table:
        raise typer.BadParameter("export writes csv or json; `runs list` shows a table")
    runs_dir = check_runs_dir(Path(runs_dir))
    runs = select_runs(scan_runs(runs_dir, warn=warn), status, None, where)
    runs.sort(key=lambda r: (r.start_time or 0, r.path.name))
    rows = [registry_row(r) for r in runs]
    params = sorted({k for row in rows for k in row if k.startswith("param.")})
    metrics = sorted({k for row in rows for k in row if k.startswith("metric.")})
    columns = [*BASE_COLUMNS, *params, *metrics]
    if out is not None:
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            _emit(rows, columns, fmt)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(buf.getvalue(), encoding="utf-8")
        typer.echo(f"{len(rows)} run(s) -> {out}", err=True)
        return
    _emit(rows, columns, fmt)


def _emit(rows: list[dict[str, Any]], columns: list[str], fmt: Format) -> None:
    if fmt is Format.json:
        emit_json([{k: row.get(k) for k in columns if k in row} for row in rows])
    elif fmt is Format.csv:
        emit_csv(rows, columns)


# --- archive / gc ----------------------------------------------------------------------------------------
def pick_runs(
    runs_dir: Path,
    refs: list[str],
    status: list[str] | None,
    older_than: str | None,
    sweep: str | None,
) -> list[RunEntry]:
    runs = scan_runs(runs_dir, warn=warn)
    if refs:
        chosen_paths = {resolve_run(ref, runs_dir).path.resolve() for ref in refs}
        runs = [r for r in runs if r.path.resolve() in chosen_paths]
    if sweep:
        chosen = resolve_sweep(sweep, runs_dir, runs)
        runs = [r for r in runs if r.sweep_dir == chosen.path]
    runs = select_runs(runs, status)
    if older_than:
        limit = time.time() - parse_age(older_than)
        runs = [r for r in runs if (r.record.get("end_time") or r.start_time or time.time()) < limit]
    live = [r for r in runs if r.status == Status.RUNNING.value]
    for run in live:
        warn(f"skipped run {run.id}: still running")
    return [r for r in runs if r.status != Status.RUNNING.value]


def destination(run: RunEntry, runs_dir: Path, archive: Path) -> Path:
    try:
        rel = run.path.resolve().relative_to(runs_dir.resolve())
    except ValueError:
        rel = Path(run.path.name)
    return archive / rel


def show_plan(runs: list[RunEntry], verb: str, target: str) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{verb} {len(runs)} run(s){target}", title_justify="left", header_style="bold")
    for column in ("id", "name", "status", "start", "duration", "path"):
        table.add_column(column, overflow="fold")
    for run in runs:
        table.add_row(
            run.id,
            Text(run.name),
            run.status,
            fmt_time(run.start_time)[:16],
            fmt_duration(run.duration),
            Text(str(run.path)),
        )
    stdout_console().print(table)


def tidy_sweep_dirs(runs: list[RunEntry], runs_dir: Path, archive: Path | None) -> None:
    """A sweep folder left without jobs goes too (its sweep.json and summaries follow the jobs)."""
    for sweep_dir in {r.sweep_dir for r in runs if r.sweep_dir is not None}:
        if not sweep_dir.is_dir() or any(p.is_dir() and looks_like_run_dir(p) for p in sweep_dir.iterdir()):
            continue
        if archive is None:
            shutil.rmtree(sweep_dir)
            continue
        target = archive / SWEEPS_DIR / sweep_dir.name
        target.mkdir(parents=True, exist_ok=True)
        for item in sweep_dir.iterdir():
            if not (target / item.name).exists():
                shutil.move(str(item), str(target / item.name))
        if not any(sweep_dir.iterdir()):
            sweep_dir.rmdir()


def move_runs(runs: list[RunEntry], runs_dir: Path, archive: Path) -> int:
    moved = 0
    for run in runs:
        target = destination(run, runs_dir, archive)
        if target.exists():
            warn(f"skipped run {run.id}: {target} already exists")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(run.path), str(target))
        moved += 1
    tidy_sweep_dirs(runs, runs_dir, archive)
    return moved


def _archive_dir(runs_dir: Path, to: Path | None) -> Path:
    archive = Path(to) if to is not None else runs_dir.resolve().parent / "runs-archive"
    if archive.resolve() == runs_dir.resolve() or runs_dir.resolve() in archive.resolve().parents:
        raise UserError(f"the archive {archive} must be outside the runs directory {runs_dir}")
    return archive


RefsArg = Annotated[list[str] | None, typer.Argument(help="Run ids, prefixes or dirs (optional).")]
StatusOpt = Annotated[
    list[str] | None, typer.Option("--status", "-s", help="Only these statuses (repeat/comma).")
]
OlderOpt = Annotated[
    str | None, typer.Option("--older-than", help="Only runs that ended before this age: 30d, 12h.")
]
SweepOpt = Annotated[str | None, typer.Option("--sweep", help="Only the jobs of this sweep.")]
ToOpt = Annotated[
    Path | None, typer.Option("--to", help="Archive folder (default: runs-archive/ next to runs/).")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Act; without it, only list what would happen.")]


@one_line_errors
def archive(
    runs: RefsArg = None,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    status: StatusOpt = None,
    older_than: OlderOpt = None,
    sweep: SweepOpt = None,
    to: ToOpt = None,
    yes: YesOpt = False,
) -> None:
    """Move runs (chosen by id, status, age or sweep) to an archive folder. Lists only, unless --yes."""
    runs_dir = check_runs_dir(Path(runs_dir))
    if not (runs or status or older_than or sweep):
        raise typer.BadParameter("say which runs: ids, --status, --older-than or --sweep")
    target = _archive_dir(runs_dir, to)
    chosen = pick_runs(runs_dir, list(runs or []), status, older_than, sweep)
    _act(chosen, runs_dir, target, yes, delete=False)


@one_line_errors
def gc(
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="Statuses to collect (default: failed,crashed,aborted,corrupt)."),
    ] = None,
    older_than: OlderOpt = None,
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete instead of archiving (needs --yes).")
    ] = False,
    to: ToOpt = None,
    yes: YesOpt = False,
) -> None:
    """Archive (or --delete) failed, crashed, aborted and corrupt runs. Lists only, unless --yes."""
    runs_dir = check_runs_dir(Path(runs_dir))
    statuses = split_values(status) or [
        Status.FAILED.value,
        Status.CRASHED.value,
        Status.ABORTED.value,
        CORRUPT,
    ]
    target = None if delete else _archive_dir(runs_dir, to)
    chosen = pick_runs(runs_dir, [], statuses, older_than, None)
    _act(chosen, runs_dir, target, yes, delete=delete)


def _act(chosen: list[RunEntry], runs_dir: Path, target: Path | None, yes: bool, delete: bool) -> None:
    if not chosen:
        typer.echo("no runs match")
        return
    where = "" if delete else f" to {target}"
    if not yes:
        show_plan(chosen, "would delete" if delete else "would move", where)
        typer.echo("dry run: nothing changed; pass --yes to " + ("delete them" if delete else "move them"))
        return
    if delete:
        for run in chosen:
            shutil.rmtree(run.path)
        tidy_sweep_dirs(chosen, runs_dir, None)
        typer.echo(f"deleted {len(chosen)} run(s)")
        return
    assert target is not None
    moved = move_runs(chosen, runs_dir, target)
    typer.echo(f"moved {moved} run(s) to {target}")
