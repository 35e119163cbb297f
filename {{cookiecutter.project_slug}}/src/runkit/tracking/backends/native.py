"""What every backend shows the same way: the run's name (with the swept values of a sweep job), the files
that define it, where its code came from, and small readers of the media files in the run directory.

Everything is read from the run directory (run.json, sweep.json, the captures), so the live shipper and
`runs sync` long after the run describe it alike.
"""

from __future__ import annotations

import csv
import getpass
import json
from pathlib import Path
from typing import Any

from runkit.overrides import override_params
from runkit.storage.jsonio import CorruptRunFileError, read_json
from runkit.storage.layout import (
    CONFIG_FILE,
    DATASET_FILE,
    ENVIRONMENT_FILE,
    GIT_DIFF_FILE,
    GIT_FILE,
    OVERRIDES_FILE,
    SWEEP_FILE,
    SYSTEM_FILE,
)
from runkit.tracking.backends.base import RunInfo

#: The program a run is started with (the project's entry point), whatever process the backend runs in.
PROGRAM = "train.py"
#: The files that define a run, sent to every backend that stores files (those that exist).
DEFINING_FILES = (CONFIG_FILE, OVERRIDES_FILE, GIT_DIFF_FILE, ENVIRONMENT_FILE, GIT_FILE, DATASET_FILE)
#: Plumbing overrides that say nothing about the science and would only lengthen a run's name.
_PLUMBING = ("paths.", "hydra.", "tracker", "tracking.", "sweep.")


def overrides(run: RunInfo) -> list[str]:
    """The command-line overrides the run was started with (run.json), e.g. ["lr=0.01", "seed=1"]."""
    return [str(o) for o in run.record.get("overrides") or []]


def swept_values(run: RunInfo) -> dict[str, str]:
    """For a sweep job: {parameter: this job's value} of the parameters the sweep varies (its grid, or the
    search space of a search sweeper), in the sweep's order; {} for a single run."""
    if not run.sweep or not run.sweep.get("dir"):
        return {}
    try:
        sweep = read_json(Path(str(run.sweep["dir"])) / SWEEP_FILE)
    except (OSError, CorruptRunFileError):
        return {}
    keys = [*(sweep.get("grid") or {}), *(sweep.get("search_space") or {})]
    mine = override_params(overrides(run))
    return {key: mine[key] for key in dict.fromkeys(keys) if key in mine}


def display_name(run: RunInfo) -> str:
    """`<name>-<id>` for a single run; a sweep job carries its swept values: `train lr=0.001 seed=1`."""
    swept = swept_values(run)
    if not swept:
        return f"{run.name}-{run.run_id}"
    return " ".join([run.name, *(f"{key}={value}" for key, value in swept.items())])


def science_overrides(run: RunInfo) -> list[str]:
    """The overrides without the plumbing ones (paths, tracker, ...): what a researcher changed."""
    return [o for o in overrides(run) if not o.lstrip("+~").startswith(_PLUMBING)]


def source(run: RunInfo) -> dict[str, Any]:
    """Where the run's code came from: program, args (the overrides), git commit/branch/remote, user."""
    git = run.record.get("git") or {}
    return {
        "program": PROGRAM,
        "args": overrides(run),
        "commit": git.get("commit"),
        "branch": git.get("branch"),
        "remote": git.get("remote"),
        "dirty": git.get("dirty"),
        "user": _user(),
        "host": run.record.get("host"),
    }


def defining_files(run_dir: Path) -> list[Path]:
    """The files that define the run and exist in its directory (config, overrides, git diff, environment)."""
    return [Path(run_dir) / name for name in DEFINING_FILES if (Path(run_dir) / name).is_file()]


def read_table(path: Path) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of a CSV written by tracker.log_table; numbers come back as numbers."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        columns = next(reader, [])
        rows = [[_number(cell) for cell in row] for row in reader]
    return columns, rows


def markdown_table(columns: list[str], rows: list[list[Any]], limit: int = 200) -> str:
    """A table as markdown (TensorBoard's Text tab renders it), at most `limit` rows."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n({len(rows) - limit} more rows in the run directory)")
    return "\n".join(lines)


def dataset_text(dataset: dict[str, Any]) -> str:
    """The dataset record as a few markdown lines."""
    lines = [f"**{dataset.get('name')}** from `{dataset.get('source')}`"]
    lines.append(f"fingerprint: `{dataset.get('fingerprint')}`")
    for split, size in (dataset.get("splits") or {}).items():
        counts = (dataset.get("classes") or {}).get(split) or {}
        per_class = ", ".join(f"{k}: {v}" for k, v in counts.items())
        lines.append(f"- {split}: {size} samples" + (f" ({per_class})" if per_class else ""))
    return "\n\n".join(lines)


def system_samples(run_dir: Path) -> list[tuple[float, dict[str, float]]]:
    """Every sample of system.jsonl (written by the live shipper), in file order: (time, {"system/<name>":
    value}), skipping a line cut by a kill. Read back by `runs sync` and by a rebuilt W&B run."""
    path = Path(run_dir) / SYSTEM_FILE
    samples: list[tuple[float, dict[str, float]]] = []
    if not path.is_file():
        return samples
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            sample = json.loads(line)
            wall = float(sample.pop("time"))
            samples.append((wall, {str(k): float(v) for k, v in sample.items()}))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return samples


def _number(cell: str) -> Any:
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            continue
    return cell


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
