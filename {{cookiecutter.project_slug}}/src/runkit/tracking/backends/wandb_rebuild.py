"""A resumed run's W&B offline history, rebuilt whole so that each step is there once.

W&B's offline run file (`run-<id>.wandb`) only grows: a row cannot be deleted. After a kill and a resume,
the interrupted session's rows for the steps after the checkpoint (superseded: storage/supersede.py) would
stay next to the resumed session's. So when a session opens the run, finds earlier sessions' folders
(`wandb/offline-run-*-<id>/`) and the log has a resume point they predate that supersedes something, it
retires them (renamed into `wandb/superseded/`, where neither W&B's `wandb sync` pattern nor this kit looks)
and the delivery sends the new session the whole log from its start, superseded events left out, and the
trainer's earlier system metrics (system.jsonl). The retired folders are deleted once the new session closes
with nothing missing.

The same is done when the live folders hold some metric at one step more often than the log has it: a
batch sent twice (W&B's writer can outlive a kill and write a batch its cursor was never saved for; `runs
sync` checks after closing and opens the run once more when it finds one).

The state survives kills in `wandb/superseded/<id>.json`: {"covered": end offset of the last resume event
the live folders account for, "complete": false while a rebuild has not closed}. A rebuild cut short (a kill,
or a crash before the run file was whole) is done again from the start by the next session or `runs sync`.
Online runs are never rebuilt: the rows are on the server, which offers no way to delete them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runkit.storage.events import EVENTS_FILE, read_events
from runkit.storage.jsonio import CorruptRunFileError, read_json, write_json
from runkit.storage.supersede import Supersession
from runkit.tracking.backends.native import system_samples
from runkit.tracking.backends.wandb_files import repeated

log = logging.getLogger(__name__)

SUPERSEDED_DIR = "superseded"


class Rebuild:
    """Whether this session of a W&B offline run starts the run file over, and the rebuild's own steps."""

    def __init__(self, wandb_dir: Path | None = None, run_id: str = "", run_dir: Path | None = None) -> None:
        self.wandb_dir, self.run_id, self.run_dir = wandb_dir, run_id, run_dir
        self.restart = False  # this session writes the whole history: the channel sends from the log's start
        self.missing: str | None = None  # what the session's close lacks of the log (Backend.mark_complete)

    @classmethod
    def prepare(cls, wandb_dir: Path, run_id: str, run_dir: Path) -> Rebuild:
        """Called before W&B opens the run: retire the earlier sessions' folders when they hold superseded
        rows (or a rebuild was cut short)."""
        self = cls(wandb_dir, run_id, run_dir)
        state = self._state()
        events_file = run_dir / EVENTS_FILE
        supersession = Supersession.scan(events_file)
        last = supersession.last_offset
        live = sorted(path for path in wandb_dir.glob(f"offline-run-*-{run_id}") if path.is_dir())
        if state.get("complete", True):
            self._delete_retired()  # a finished rebuild's leftovers (a kill between its last two steps)
            covered = int(state.get("covered") or 0)
            new = Supersession(point for point in supersession.points if point.offset > covered)
            superseding = bool(live and new and new.any_superseded(events_file))
            twice = [] if superseding or not live else repeated(wandb_dir, run_id, events_file)
            if not (superseding or twice):
                if new:  # the folders (if any) hold no superseded row: nothing to do until the next resume
                    self._save({"covered": last, "complete": True})
                return self
            if twice:
                log.warning(
                    "W&B run %s holds %d points twice (a batch sent again after a kill, e.g. step %d %s): "
                    "rebuilding its history",
                    run_id,
                    len(twice),
                    *twice[0],
                )
        # Marked first, then retired: a kill in between leaves a rebuild to do again, never a partial one
        # taken for whole.
        self._save({"covered": last, "complete": False})
        retired = wandb_dir / SUPERSEDED_DIR
        retired.mkdir(exist_ok=True)
        for path in live:
            target, n = retired / path.name, 1
            while target.exists():  # the same folder name retired before (not expected; never overwrite)
                n += 1
                target = retired / f"{n}.{path.name}"
            os.replace(path, target)
        log.info(
            "W&B run %s: rebuilding its history from the log (retired %d earlier folders)", run_id, len(live)
        )
        self.restart = True
        return self

    def system_rows(self) -> Iterator[tuple[int, dict[str, float], float]]:
        """(step, system metrics, time) of every sample of system.jsonl, for a rebuilt run file (those of
        this session come live). Each at the step the trainer had logged last at its time, as the live
        shipper logs a sample at the last step it delivered."""
        if not self.restart or self.run_dir is None:
            return
        # In time order, whoever appended them.
        samples = sorted(system_samples(self.run_dir), key=lambda sample: sample[0])
        if not samples:
            return
        events_file = self.run_dir / EVENTS_FILE
        supersession = Supersession.scan(events_file)
        steps = (
            (float(event.get("time") or 0.0), int(event.get("step") or 0))
            for offset, event in read_events(events_file)
            if event.get("type") == "metrics" and not supersession.superseded(offset, event)
        )
        step, upcoming = 0, next(steps, None)
        for wall, metrics in samples:
            while upcoming is not None and upcoming[0] <= wall:
                step, upcoming = upcoming[1], next(steps, None)
            yield step, metrics, wall

    def finish(self) -> None:
        """The session closed its run file: a rebuild with nothing missing is done, the retired folders go."""
        if not self.restart or self.missing:
            return
        state = self._state()
        self._save({"covered": int(state.get("covered") or 0), "complete": True})
        self._delete_retired()

    # --- the state file and the retired folders ---------------------------------------------------------
    def _marker(self) -> Path:
        assert self.wandb_dir is not None
        return self.wandb_dir / SUPERSEDED_DIR / f"{self.run_id}.json"

    def _state(self) -> dict[str, Any]:
        path = self._marker()
        if not path.is_file():
            return {}
        try:
            data = read_json(path)
        except CorruptRunFileError:
            return {"complete": False}  # not known: rebuilt again, the safe way
        return data if isinstance(data, dict) else {"complete": False}

    def _save(self, state: dict[str, Any]) -> None:
        path = self._marker()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, state)

    def _delete_retired(self) -> None:
        assert self.wandb_dir is not None
        for path in (self.wandb_dir / SUPERSEDED_DIR).glob(f"*offline-run-*-{self.run_id}"):
            with contextlib.suppress(OSError):
                shutil.rmtree(path)
