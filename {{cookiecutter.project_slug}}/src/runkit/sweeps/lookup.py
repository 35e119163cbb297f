"""Finding sweeps: `<sweep dir | sweep id | unique id prefix | sweep dir name | last>` -> the sweep directory.

The one resolver behind `sweep.resume=`, the `sweep_dir` resolver and the runs CLI (`runs list --sweep`,
`runs compare --sweep`, `runs report --sweep`).
"""

from __future__ import annotations

from pathlib import Path

from runkit.errors import UserError
from runkit.storage.layout import RUN_FILE, SWEEP_FILE, SWEEPS_DIR
from runkit.storage.run_dir import id_from_name


def sweeps_root(runs_dir: Path | str) -> Path:
    """<runs_dir>/sweeps: where every sweep directory lives."""
    return Path(runs_dir) / SWEEPS_DIR


def is_sweep_dir(path: Path | str) -> bool:
    """A folder holding a sweep.json, or (older sweeps, interrupted before writing one) a folder under
    <runs_dir>/sweeps/ holding run directories."""
    path = Path(path)
    if (path / SWEEP_FILE).is_file():
        return True
    return path.parent.name == SWEEPS_DIR and path.is_dir() and any(path.glob(f"*/{RUN_FILE}"))


def sweep_id_of(sweep_dir: Path | str) -> str:
    """The sweep id: the last dash-part of the directory name (`<YYYYmmdd-HHMMSS>-<name>-<id>`)."""
    return id_from_name(sweep_dir)


def iter_sweep_dirs(runs_dir: Path | str) -> list[Path]:
    """Every sweep directory under runs_dir, oldest first (their names start with the creation time)."""
    root = sweeps_root(runs_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and is_sweep_dir(p))


def find_sweep(ref: str, runs_dir: Path | str, option: str | None = None) -> Path:
    """The sweep directory (resolved) that `ref` names: a sweep directory, `last` (the newest sweep), a sweep
    id, a unique id prefix or a directory name. Raises UserError (one line) when none or several match;
    `option` (e.g. `sweep.resume`) names where the reference came from in that message."""
    ref = str(ref)
    said = f"{option}={ref}" if option else f"sweep {ref!r}"
    path = Path(ref).expanduser()
    if is_sweep_dir(path):
        return path.resolve()
    root = sweeps_root(runs_dir)
    sweeps = iter_sweep_dirs(runs_dir)
    if ref == "last":
        if not sweeps:
            raise UserError(f"{said}: no sweeps under {root}")
        return sweeps[-1].resolve()
    matches = [p for p in sweeps if p.name == ref] or [p for p in sweeps if sweep_id_of(p).startswith(ref)]
    if len(matches) == 1:
        return matches[0].resolve()
    if not matches:
        raise UserError(
            f"{said}: no sweep directory (with a {SWEEP_FILE}) matches; give a sweep directory, "
            f"a sweep id or 'last' (sweeps live under {root})"
        )
    names = ", ".join(f"{sweep_id_of(p)} ({p.name})" for p in matches[:10])
    raise UserError(f"{said} is ambiguous: {names}")
