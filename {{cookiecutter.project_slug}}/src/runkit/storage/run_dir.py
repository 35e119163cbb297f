"""The run directory: one folder per run that is the local source of truth.

<runs_dir>/<YYYYmmdd-HHMMSS>-<name>-<id>/
    run.json  config.yaml  overrides.yaml  events.jsonl  summary.json  train.log
    environment.json  git.json  git.diff  checkpoints/  artifacts/  figures/  <backend dirs>/

Every file and folder name comes from storage/layout.py.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from runkit.ids import new_id
from runkit.storage.jsonio import read_json, write_json
from runkit.storage.layout import (
    ARTIFACTS_DIR,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    EVENTS_FILE,
    FIGURES_DIR,
    GIT_DIFF_FILE,
    GIT_FILE,
    OVERRIDES_FILE,
    RESUMES_DIR,
    RUN_FILE,
    SHIPPER_DIR,
    SUMMARY_FILE,
    TRACEBACK_FILE,
    TRAIN_LOG_FILE,
)
from runkit.storage.records import RunRecord

SCHEMA_VERSION = 1

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def new_run_id() -> str:
    """A short random id: 8 hex characters starting with a letter (1.6 billion values)."""
    return new_id(8)


def id_from_name(path: Path | str) -> str:
    """The id in a run or sweep directory's name (`<YYYYmmdd-HHMMSS>-<name>-<id>`): its last dash-part."""
    return Path(path).name.rsplit("-", 1)[-1]


def safe_name(name: str) -> str:
    """A run name made safe for a folder name; the original stays in run.json."""
    return _UNSAFE.sub("-", str(name)).strip("-")[:60] or "run"


def _mapping(data: Any) -> dict[str, Any]:
    """A json file's content as a dict (an empty one when it holds something else)."""
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory, and its run.json record."""

    path: Path

    @classmethod
    def create(cls, parent: Path, name: str, run_id: str | None = None) -> RunDir:
        """Make a new run directory. The random id in its name makes it collision-proof;
        `mkdir(exist_ok=False)` makes that a guarantee: a clash, however unlikely, draws a new id
        instead of sharing a folder."""
        parent = Path(parent)
        parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for _ in range(100):
            rid = run_id or new_run_id()
            path = parent / f"{stamp}-{safe_name(name)}-{rid}"
            try:
                path.mkdir()
            except FileExistsError:
                if run_id is not None:
                    raise
                continue
            return cls(path)
        raise RuntimeError(f"could not create a unique run directory under {parent}")

    # --- files -------------------------------------------------------------------------------------------
    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def events_file(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def summary_file(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def overrides_file(self) -> Path:
        return self.path / OVERRIDES_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def artifacts(self) -> Path:
        return self.path / ARTIFACTS_DIR

    @property
    def figures(self) -> Path:
        return self.path / FIGURES_DIR

    def subdir(self, name: str) -> Path:
        """A folder inside the run directory (created), e.g. for a backend's own files."""
        path = self.path / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- run.json ----------------------------------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        return _mapping(read_json(self.run_file))

    def read_record(self) -> RunRecord:
        """run.json, typed."""
        return cast(RunRecord, self.read())

    def write(self, record: dict[str, Any]) -> None:
        write_json(self.run_file, {"schema": SCHEMA_VERSION, **record})

    def update(self, **fields: Any) -> dict[str, Any]:
        """Read-modify-write run.json. Only the process that owns the run (or the shipper after it died) calls
        this, so there is no concurrent writer to lose an update to."""
        record = self.read()
        record.update(fields)
        self.write(record)
        return record

    def read_summary(self) -> dict[str, Any]:
        return _mapping(read_json(self.summary_file)) if self.summary_file.exists() else {}

    @property
    def traceback_file(self) -> Path:
        return self.path / TRACEBACK_FILE

    @property
    def train_log(self) -> Path:
        return self.path / TRAIN_LOG_FILE

    @property
    def environment_file(self) -> Path:
        return self.path / ENVIRONMENT_FILE

    @property
    def git_file(self) -> Path:
        return self.path / GIT_FILE

    @property
    def git_diff_file(self) -> Path:
        return self.path / GIT_DIFF_FILE

    @property
    def resumes(self) -> Path:
        return self.path / RESUMES_DIR

    @property
    def shipper_dir(self) -> Path:
        return self.path / SHIPPER_DIR
