"""`runs sync`: replay runs' local records into a backend (one that was down, or not chosen at the time)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from runkit.catalog.runs import resolve_run, scan_runs
from runkit.cli.common import (
    DEFAULT_RUNS_DIR,
    RunsDir,
    check_runs_dir,
    error,
    find_project_root,
    one_line_errors,
    warn,
)
from runkit.errors import UserError
from runkit.storage.status import Status

BACKENDS = ("tensorboard", "mlflow", "wandb")


def known_backends(root: Path | None) -> list[str]:
    if root is not None and (root / "configs" / "tracker").is_dir():
        names = sorted(p.stem for p in (root / "configs" / "tracker").glob("*.yaml") if p.stem != "local")
        if names:
            return names
    return list(BACKENDS)


def load_sync_run() -> Any:
    try:
        from runkit.tracking.sync import sync_run
    except ImportError as exc:
        raise UserError(f"runs sync is not available in this project (tracking/sync.py: {exc})") from None
    return sync_run


def summarise(result: Any) -> str:
    """One line from sync_run's result: what was sent, how the backend's run was closed, its ids."""
    if not isinstance(result, dict):
        return str(result)
    what = "already up to date" if result.get("up_to_date") else f"{result.get('shipped', 0)} event(s) sent"
    if result.get("status"):
        what += f", run {result['status']}"
    ids = result.get("ids") or {}
    if isinstance(ids, dict) and ids:
        what += "; " + " ".join(f"{k}={v}" for k, v in ids.items() if k != "synced")
    return what


@one_line_errors
def sync(
    to: Annotated[str, typer.Option("--to", help="Backend to replay into: tensorboard, mlflow or wandb.")],
    run: Annotated[
        str | None, typer.Argument(help="Run id, unique id prefix, run directory or 'last'.")
    ] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Sync every run (skips running and corrupt ones).")
    ] = False,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    project_dir: Annotated[
        Path | None, typer.Option("--project-dir", help="The project folder (default: found from here).")
    ] = None,
) -> None:
    """Replay runs' local records into a backend. Idempotent: syncing twice duplicates nothing."""
    if (run is None) == (not all_runs):
        raise typer.BadParameter("give one run or --all")
    try:
        root: Path | None = find_project_root(project_dir)
    except UserError:
        if project_dir is not None:
            raise
        root = None
    backend = to.strip().lower()
    choices = known_backends(root)
    if backend == "local":
        raise typer.BadParameter(
            "the run directory is the local record already; choose " + ", ".join(choices)
        )
    if backend not in choices:
        raise typer.BadParameter(f"unknown backend {to!r}; choose one of: {', '.join(choices)}")
    sync_run = load_sync_run()
    runs_dir = Path(runs_dir)
    if all_runs:
        check_runs_dir(runs_dir)
        runs = []
        for info in scan_runs(runs_dir, warn=warn):
            if info.corrupt:
                continue  # already warned, naming the file
            if info.status == Status.RUNNING.value:
                warn(f"skipped run {info.id}: still running (its shipper syncs it)")
                continue
            runs.append(info)
    else:
        assert run is not None  # one of the two, checked above
        runs = [resolve_run(run, runs_dir)]
    failures = 0
    for info in runs:
        try:
            # backend_cfg None: sync_run takes the run's own tracker.<backend> settings, else the project's
            # configs/tracker/<backend>.yaml resolved against the run's config.
            result = sync_run(info.path, backend, None)
        except Exception as exc:  # noqa: BLE001 - one run's failure must not stop the others
            failures += 1
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            error(f"sync of run {info.id} to {backend} failed: {type(exc).__name__}: {message}")
            continue
        typer.echo(f"synced {info.id} -> {backend}: {summarise(result)}")
    if all_runs:
        typer.echo(f"{len(runs) - failures} of {len(runs)} run(s) synced to {backend}")
    if failures:
        raise typer.Exit(1)
