"""Finding runs: by id, unique id prefix, path, or `last`. Shared by resume, init_from and the runs CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from runkit.errors import UserError
from runkit.storage.layout import RUN_FILE, SWEEPS_DIR
from runkit.storage.run_dir import RunDir, id_from_name


def iter_run_dirs(runs_dir: Path) -> Iterator[RunDir]:
    """Every run directory under runs_dir: top-level runs and the jobs inside sweeps/<sweep>/."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return
    for pattern in (f"*/{RUN_FILE}", f"{SWEEPS_DIR}/*/*/{RUN_FILE}"):
        for run_file in runs_dir.glob(pattern):
            yield RunDir(run_file.parent)


def run_id_of(run_dir: RunDir) -> str:
    """The id is the last dash-separated part of the folder name (read without opening run.json)."""
    return id_from_name(run_dir.path)


def find_run(ref: str, runs_dir: Path) -> RunDir:
    """Resolve a run reference: a run directory path, `last` (the newest run), a run id or a unique prefix."""
    ref = str(ref)
    path = Path(ref).expanduser()
    if (path / RUN_FILE).is_file():
        return RunDir(path.resolve())
    runs = list(iter_run_dirs(runs_dir))
    if ref == "last":
        if not runs:
            raise UserError(f"no runs found under {runs_dir}")
        return max(runs, key=lambda r: r.path.name.split("-", 2)[:2])
    # A bare folder name (as `runs list` and the terminal show it) is as good as the id.
    matches = [r for r in runs if r.path.name == ref] or [r for r in runs if run_id_of(r).startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(
            f"no run matches {ref!r} under {runs_dir} (give a run id, an id prefix, a run dir or 'last')"
        )
    listing = ", ".join(sorted(f"{run_id_of(r)} ({r.path.name})" for r in matches)[:10])
    raise UserError(f"run id prefix {ref!r} is ambiguous: {listing}")
