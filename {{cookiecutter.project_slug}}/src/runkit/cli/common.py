"""What every runs command shares: the runs directory option, output helpers, and one-line errors."""

from __future__ import annotations

import csv
import functools
import io
import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from runkit.errors import UserError
from runkit.storage.jsonio import CorruptRunFileError

F = TypeVar("F", bound=Callable[..., Any])

RunsDir = Annotated[
    Path,
    typer.Option(
        "--runs-dir",
        envvar="RUNS_DIR",
        help="Where the runs live (the project's paths.runs_dir).",
        show_default=True,
    ),
]
DEFAULT_RUNS_DIR = Path("runs")


class Format(str, Enum):  # noqa: UP042 - StrEnum needs Python 3.11
    table = "table"
    csv = "csv"
    json = "json"


def stdout_console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr)


def error(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr)


def one_line_errors(func: F) -> F:
    """Turn the errors a user can act on into one `ERROR: ...` line and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (UserError, CorruptRunFileError) as exc:
            error(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            raise typer.Exit(1) from None
        except BrokenPipeError:  # `runs list | head`
            raise typer.Exit(0) from None
        except OSError as exc:  # a permission problem, a full disk, a folder that vanished meanwhile
            error(f"{type(exc).__name__}: {exc}")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def check_runs_dir(runs_dir: Path) -> Path:
    if not runs_dir.exists():
        raise UserError(f"runs directory {runs_dir} does not exist (train a run first, or pass --runs-dir)")
    if not runs_dir.is_dir():
        raise UserError(f"runs directory {runs_dir} is not a directory")
    return runs_dir


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def emit_csv(rows: list[dict[str, Any]], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(row.get(k)) for k in columns})
    typer.echo(buf.getvalue(), nl=False)


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, sort_keys=True)
    return value


def is_project_root(path: Path) -> bool:
    return (path / "train.py").is_file() and (path / "configs").is_dir()


def find_project_root(explicit: Path | None = None, hint: Any = None) -> Path:
    """The project folder (train.py + configs/): --project-dir, else the current folder or a parent, else the
    run's recorded paths.root, else the folder this package was installed from (an editable install)."""
    if explicit is not None:
        explicit = Path(explicit).expanduser().resolve()
        if not is_project_root(explicit):
            raise UserError(f"{explicit} is not a project folder (no train.py and configs/)")
        return explicit
    cwd = Path.cwd().resolve()
    candidates = [cwd, *cwd.parents]
    if hint:
        candidates.append(Path(str(hint)))
    candidates.append(Path(__file__).resolve().parents[3])
    for candidate in candidates:
        if is_project_root(candidate):
            return candidate
    raise UserError("cannot find the project folder (train.py + configs/): run from it or pass --project-dir")


def console_width() -> int:
    """The width tables are laid out for: the terminal's, or $COLUMNS (rich's rules), 80 when unknown."""
    return int(stdout_console().width)


def fit_columns(
    headers: list[str],
    widths: list[int],
    priority: list[str],
    available: int,
    min_widths: dict[str, int] | None = None,
) -> list[int]:
    """The indices of the columns to keep, in their order, so that a boxed table fits `available` characters:
    columns are dropped from the end of `priority` (least wanted last; a header not listed goes first) until
    the rest fit at their natural width, or at their `min_widths` (columns that may wrap). Each column costs
    its width plus 3 (padding and border); the table 1 more."""
    minimum = min_widths or {}

    def cost(kept: list[int]) -> int:
        return 1 + sum(min(widths[i], max(minimum.get(headers[i], widths[i]), 1)) + 3 for i in kept)

    rank = {name: pos for pos, name in enumerate(priority)}
    kept = list(range(len(headers)))
    # The least wanted first: unlisted columns, then the listed ones from the end.
    order = sorted(kept, key=lambda i: -rank.get(headers[i], len(priority)))
    for index in order:
        if cost(kept) <= available or len(kept) == 1:
            break
        kept.remove(index)
    return kept


def dropped_note(dropped: list[str]) -> str:
    """The footer under a table that left columns out for width."""
    return f"not shown for width: {', '.join(dropped)} (widen the terminal, or -f csv / -f json for all)"
