"""Atomic JSON files: a reader never sees half a file, and a damaged file is named in the error."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from runkit.errors import UserError


class CorruptRunFileError(UserError, ValueError):
    """A run file that exists but cannot be read as what it should be (its message names the file: one line
    for the user, e.g. a resume refused because of it)."""


def write_json(path: Path, data: Any) -> None:
    """Write JSON via a temporary file and an atomic rename (a crash leaves the old or the new file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """Read a JSON file; a truncated or corrupt one raises CorruptRunFileError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CorruptRunFileError(f"cannot read {path}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptRunFileError(f"{path} is corrupt or truncated ({exc.msg} at line {exc.lineno})") from exc
