"""Errors a user can act on: `train.py` prints their message as one line and exits non-zero."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


class UserError(Exception):
    """A problem with the input (config, command line, files on disk), not a bug. Its message is one line."""


@contextlib.contextmanager
def naming(path: Path | str) -> Iterator[None]:
    """An OSError raised while writing `path` names it: a failed write(2) (a full disk) carries no file name,
    and the one line the user gets must say where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
