"""`runs rerun <id> [overrides]`: the same run again (saved overrides, recorded seed), linked by rerun_of."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from runkit.catalog.entry import RunEntry
from runkit.catalog.runs import read_json_or_empty, resolve_run, scan_runs
from runkit.cli.common import DEFAULT_RUNS_DIR, RunsDir, find_project_root, one_line_errors, warn
from runkit.errors import UserError
from runkit.overrides import override_key
from runkit.repro.git import git_head
from runkit.storage.layout import GIT_FILE

RERUN_KEY = "rerun_of"
# Overrides that only make sense in the original launch (a multirun, a resumed session): not replayed.
NOT_REPLAYED_PREFIXES = ("hydra/launcher", "hydra/sweeper", "hydra.launcher", "hydra.sweeper", "hydra.mode")
NOT_REPLAYED_KEYS = ("resume", RERUN_KEY, "sweep.resume")


def replayed(override: str) -> bool:
    key = override_key(override)
    return key not in NOT_REPLAYED_KEYS and not key.startswith(NOT_REPLAYED_PREFIXES)


def rerun_overrides(run: RunEntry, extra: list[str], runs_dir: Path) -> list[str]:
    """The saved overrides (minus launch-only ones), the recorded seed, where to write, the link to the
    original, then the new overrides; one entry per key, the later winning."""
    merged: dict[str, str] = {}

    def put(override: str) -> None:
        key = override_key(override)
        merged.pop(key, None)
        merged[key] = override

    for override in run.overrides:
        if replayed(override):
            put(override)
    seed = run.record.get("seed")
    if seed is not None:
        put(f"seed={seed}")
    put(f"paths.runs_dir={Path(runs_dir).resolve()}")
    put(f"++{RERUN_KEY}={run.id}")
    for override in extra:
        if "=" not in override and not override.startswith("~"):
            raise typer.BadParameter(f"{override!r} is not an override (write key=value)")
        put(override)
    return list(merged.values())


def recorded_commit(run: RunEntry) -> tuple[str | None, bool]:
    git = dict(read_json_or_empty(run.path / GIT_FILE))
    git.update(run.git)
    commit = git.get("commit")
    return (str(commit) if commit else None), bool(git.get("dirty"))


def check_code(run: RunEntry, root: Path, allow: bool) -> None:
    """Refuse (UserError) when the code may differ from the run's, unless allowed; warn about dirty trees."""
    recorded, recorded_dirty = recorded_commit(run)
    current, current_dirty = git_head(root)
    problem = None
    if recorded is None:
        problem = f"run {run.id} recorded no git commit, so the code it ran cannot be checked"
    elif current is None:
        problem = (
            f"{root} is not a git repository, so the current code cannot be checked against run {run.id}"
        )
    elif not (current.startswith(recorded) or recorded.startswith(current)):
        problem = (
            f"the code differs: run {run.id} ran at commit {recorded[:12]}, the project is at {current[:12]}"
            f" (git checkout {recorded[:12]} to rerun it as it was)"
        )
    if problem:
        if not allow:
            raise UserError(f"{problem}; pass --allow-different-code to rerun anyway")
        warn(f"{problem}; rerunning anyway (--allow-different-code)")
        return
    if recorded_dirty:
        warn(f"run {run.id} ran with uncommitted changes (see its git.diff); they are not replayed")
    if current_dirty:
        warn("the working tree has uncommitted changes; the rerun runs them")


@one_line_errors
def rerun(
    run: Annotated[str, typer.Argument(help="Run id, unique id prefix, run directory or 'last'.")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Extra overrides (key=value), applied after the saved ones.")
    ] = None,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    allow_different_code: Annotated[
        bool,
        typer.Option("--allow-different-code", help="Rerun even when the commit differs (or is unknown)."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the command instead of running it.")
    ] = False,
    project_dir: Annotated[
        Path | None, typer.Option("--project-dir", help="The project folder (default: found from here).")
    ] = None,
) -> None:
    """Run again with the saved config plus overrides, as a new run linked to the original (rerun_of)."""
    runs_dir = Path(runs_dir)
    original = resolve_run(run, runs_dir)
    root = find_project_root(project_dir, original.config().get("paths", {}).get("root"))
    check_code(original, root, allow_different_code)
    cmd = [sys.executable, "train.py", *rerun_overrides(original, list(overrides or []), runs_dir)]
    if dry_run:
        typer.echo(f"cd {shlex.quote(str(root))} && {shlex.join(cmd)}")
        return
    typer.echo(f"rerun of {original.id}: {shlex.join(cmd[1:])}", err=True)
    started = time.time() - 1
    code = subprocess.run(cmd, cwd=root, check=False).returncode
    new = [
        r
        for r in scan_runs(runs_dir)
        if r.record.get(RERUN_KEY) == original.id and (r.start_time or 0) >= started
    ]
    if new:
        newest = max(new, key=lambda r: r.start_time or 0)
        typer.echo(f"new run {newest.id} ({newest.status}), rerun of {original.id}: {newest.path}")
        before, after = original.record.get("config_hash"), newest.record.get("config_hash")
        if before and after and before != after:
            typer.echo(f"note: the config differs from the original's (hash {after}, was {before})", err=True)
    elif code == 0:
        raise UserError(f"train.py finished but no run with rerun_of={original.id} appeared under {runs_dir}")
    if code != 0:
        typer.echo(f"ERROR: the rerun of {original.id} exited with code {code}", err=True)
        raise typer.Exit(code)
