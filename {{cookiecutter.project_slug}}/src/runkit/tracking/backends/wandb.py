"""Weights & Biases: one W&B run per run, offline by default (its files inside the run directory).

- `id` = our run id (so resume and `runs sync` reach the same W&B run), name `<name>-<id>`, group = the
  sweep for sweep jobs, our tags as W&B tags;
- config = the full resolved config, flattened; metrics logged against `global_step` (our step, set as every
  metric's x-axis with define_metric), so a resumed run never fights W&B's own monotonic step;
- figures as images, text and other files saved with the run, checkpoints as a `model-<id>` artifact with
  the aliases `last` and `best` (by default the final ones, at close: one version each instead of one per
  epoch; `checkpoints: all` sends every one, `none` none);
- final status as the exit code (0 completed; 1 failed/crashed; 255 aborted/preempted, which W&B shows as
  killed) and our exact status in the summary's `run_status`;
- `mode: online` needs an API key (`wandb login` or WANDB_API_KEY); offline runs go up with `wandb sync`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from runkit.flatten import flatten
from runkit.storage.events import ArtifactData, DatasetData, HParamsData, ImageData, StatusData, TableData
from runkit.storage.layout import EVENTS_FILE
from runkit.storage.status import Status
from runkit.tracking.backends import native
from runkit.tracking.backends.base import Backend, BackendError, RunInfo, SweepInfo, require_package
from runkit.tracking.backends.wandb_files import held_position, held_rows, repeated
from runkit.tracking.backends.wandb_lean import has_api_key, import_wandb, init_when_free
from runkit.tracking.backends.wandb_rebuild import Rebuild

log = logging.getLogger(__name__)

# Our final status -> the run's exit code (W&B shows 255 as killed).
EXIT_CODES: dict[str, int] = {
    Status.COMPLETED: 0,
    Status.FAILED: 1,
    Status.CRASHED: 1,
    Status.ABORTED: 255,
    Status.PREEMPTED: 255,
}
MODES = ("offline", "online", "disabled", "shared")
# W&B keeps staged artifact files and caches in the user's home by default; an offline run keeps them in its
# own folder instead (unless the user set these), so the run directory holds everything `wandb sync` needs.
_DIR_VARIABLES = {"WANDB_DATA_DIR": "data", "WANDB_CACHE_DIR": "cache", "WANDB_ARTIFACT_DIR": "artifacts"}
_USER_SET = {name for name in _DIR_VARIABLES if os.environ.get(name)}


class WandbBackend(Backend):
    name = "wandb"

    def __init__(
        self,
        project: str,
        entity: str | None = None,
        mode: str = "offline",
        dir: str | None = None,  # W&B's own name for it
        job_type: str | None = "train",
        checkpoints: str = "end",
    ) -> None:
        if mode not in MODES:
            raise BackendError(f"tracker.wandb.mode={mode!r} is not one of {', '.join(MODES)}")
        if checkpoints not in ("end", "all", "none"):
            raise BackendError(f"tracker.wandb.checkpoints={checkpoints!r} is not one of end, all, none")
        self.project, self.entity, self.mode = str(project), entity, mode
        self.dir = dir
        self.job_type = job_type
        self.checkpoints = checkpoints
        self._run: Any = None
        self._run_dir: Path | None = None
        self._pending: dict[str, Path] = {}  # alias -> checkpoint file, sent at close
        # The metrics row being gathered: logged when the step changes, before an artifact, at flush().
        self._row: dict[str, Any] = {}
        self._row_step: int | None = None
        self._row_wall: float | None = None  # when the row's metrics were logged (W&B's _timestamp)
        self._last_step = 0
        self._end_time: float | None = None  # the status event's time
        self._start_time: float | None = None
        self._wandb: Any = None
        self._files: Path | None = None  # <base>/wandb: W&B's own files for this run
        self._run_id = ""
        self._saved_env: dict[str, str | None] = {}
        self._rebuild = Rebuild()  # offline: whether this session rebuilds a resumed run's history (open)

    # --- lifecycle ---------------------------------------------------------------------------------------
    def preflight(self) -> None:
        require_package("wandb", self.name)
        if self.mode == "online" and not has_api_key():
            raise BackendError(
                "tracker.wandb.mode=online needs a W&B API key: run `wandb login` or set WANDB_API_KEY "
                "(or keep tracker.wandb.mode=offline and `wandb sync` later)"
            )

    def _import(self) -> Any:
        try:
            self._wandb = import_wandb()  # without W&B's pandas import (wandb_lean)
        except ImportError as exc:
            raise BackendError(
                f"tracker=wandb needs the wandb package ({exc}): pip install -e '.[wandb]'"
            ) from exc
        return self._wandb

    def open(self, run: RunInfo) -> dict[str, Any]:
        wandb = self._import()
        self._run_dir = Path(run.run_dir)
        base = Path(self.dir) if self.dir else self._run_dir
        self._files = base / "wandb"
        self._run_id = run.run_id
        (base / "wandb").mkdir(parents=True, exist_ok=True)
        if self.mode == "offline":
            # A resumed run's superseded rows: the history rebuilt whole (online, the server keeps them)
            self._rebuild = Rebuild.prepare(base / "wandb", run.run_id, self._run_dir)
            self.rebuilt = self._rebuild.restart
            for variable, sub in _DIR_VARIABLES.items():
                if variable not in _USER_SET:
                    self._saved_env[variable] = os.environ.get(variable)
                    os.environ[variable] = str(base / "wandb" / sub)
        group = None
        if run.sweep:
            sweep_ids = (run.sweep.get("backends") or {}).get(self.name) or {}
            group = sweep_ids.get("group") or f"sweep-{run.sweep.get('id')}"
        src = native.source(run)
        self._start_time = run.start_time
        config = {**_config(run.config), "overrides": " ".join(native.overrides(run))}
        if run.start_time:
            config["run_start_time"] = float(run.start_time)
        # W&B records the program and its args from this process (the shipper): the trainer's instead.
        argv, sys.argv = sys.argv, [native.PROGRAM, *native.overrides(run)]
        try:
            self._run = init_when_free(
                wandb,
                project=self.project,
                entity=self.entity or None,
                mode=self.mode,
                dir=str(base),
                id=run.run_id,
                name=native.display_name(run),
                group=group,
                job_type=self.job_type,
                tags=[str(t)[:64] for t in run.tags],
                config=config,
                resume="allow",
                settings=wandb.Settings(
                    silent=True,
                    console="off",
                    save_code=False,
                    # W&B's own system stats would describe the shipper: ours (system/*) describe the trainer.
                    x_disable_stats=True,
                    program=native.PROGRAM,
                    **_git_settings(src),
                ),
            )
        except Exception as exc:
            hint = (
                " (log in with `wandb login`, or use tracker.wandb.mode=offline)"
                if self.mode == "online"
                else ""
            )
            raise BackendError(f"W&B could not start run {run.run_id}: {exc}{hint}") from exc
        finally:
            sys.argv = argv
        self._run.define_metric("global_step")
        self._run.define_metric("*", step_metric="global_step")
        for step, values, wall in self._rebuild.system_rows():  # a rebuilt file has the earlier samples too
            self._log_at(values, step, wall)
        ids: dict[str, Any] = {"id": run.run_id, "project": self.project, "mode": self.mode}
        if self.entity:
            ids["entity"] = self.entity
        ids["dir"] = str(Path(self._run.dir).parent)  # wandb/offline-run-<time>-<id>/ (or run-...)
        if self.mode == "online" and getattr(self._run, "url", None):
            ids["url"] = self._run.url
        return ids

    # --- events ------------------------------------------------------------------------------------------
    def log_metrics(self, step: int, metrics: dict[str, float], wall: float) -> None:
        # Consecutive events at one step make one W&B row (one `log` call), as a training step logs them.
        if self._row and step != self._row_step:
            self._log_row()
        self._row.update(metrics)
        self._row_step = step
        self._row_wall = wall

    def log_params(self, params: dict[str, Any]) -> None:
        self._run.config.update(_config(params), allow_val_change=True)

    def set_tags(self, tags: dict[str, Any], step: int | None, wall: float) -> None:
        labels = [f"{k}:{v}" if v not in ("", None) else str(k) for k, v in tags.items()]
        self._run.tags = tuple(dict.fromkeys([*(self._run.tags or ()), *(t[:64] for t in labels)]))

    def log_artifact(self, artifact: ArtifactData, step: int | None, wall: float) -> None:
        if self._row:  # keep the order: metrics logged before an image come first
            self._log_row()
        self._artifact(artifact, step)

    def confirmed_until(self, events_file: Path, cursor_offset: int) -> tuple[int, int] | None:
        # W&B's writer (wandb-core) is a separate process that buffers: killed with the shipper, it loses the
        # rows it had not written yet although log() had returned. Its run files say what it really holds.
        if self._rebuild.restart:  # a rebuilt run file holds nothing the cursor counted
            return 0, 0
        if self._files is None:
            return None
        held = held_rows(self._files, self._run_id)
        return held_position(events_file, cursor_offset, held)

    def repeats(self) -> int:
        if self.mode != "offline" or self._files is None or self._run_dir is None:
            return 0  # online, the rows are on the server: nothing to rebuild them from
        return len(repeated(self._files, self._run_id, self._run_dir / EVENTS_FILE))

    def flush(self) -> None:
        if self._row:
            self._log_row()

    def discard(self) -> None:
        self._row, self._row_step = {}, None

    def mark_status(self, status: StatusData, step: int | None, wall: float) -> None:
        self._end_time = wall

    def log_image(self, image: ImageData, step: int | None, wall: float) -> None:
        source = self._media_file(image.get("path"))
        if source is not None:
            name = str(image.get("name") or source.stem)
            self._log_at({f"images/{name}": self._wandb.Image(str(source), caption=name)}, step, wall)

    def log_table(self, table: TableData, step: int | None, wall: float) -> None:
        source = self._media_file(table.get("path"))
        if source is not None:
            columns, rows = native.read_table(source)
            name = str(table.get("name") or source.stem)
            self._log_at({f"tables/{name}": self._wandb.Table(columns=columns, data=rows)}, step, wall)

    def log_hparams(self, hparams: HParamsData, step: int | None, wall: float) -> None:
        self._run.config.update(_config(dict(hparams.get("params") or {})), allow_val_change=True)
        for key, value in (hparams.get("metrics") or {}).items():
            self._run.summary[f"hparams/{key}"] = value

    def log_dataset(self, dataset: DatasetData, step: int | None, wall: float) -> None:
        info = {k: v for k, v in dataset.items() if k != "path"}
        self._run.config.update(_config({"dataset": info}), allow_val_change=True)

    def log_system(self, metrics: dict[str, float], wall: float) -> None:
        self._log_at(dict(metrics), self._last_step, wall)

    def mark_complete(self, missing: str | None) -> None:
        self._rebuild.missing = missing
        if self._run is None:
            return
        if missing:
            self._run.summary["incomplete"] = missing
        elif "incomplete" in self._run.summary.keys():  # noqa: SIM118 - W&B's summary is no dict
            del self._run.summary["incomplete"]

    def close(self, status: Status) -> None:
        if self._run is None:
            return
        for alias, path in self._pending.items():
            self._checkpoint(path, [alias])
        self._pending.clear()
        self._save_run_files(status)
        self._run.summary["run_status"] = status.value
        if self._start_time:
            end = self._end_time or time.time()
            self._run.summary["run_end_time"] = end
            self._run.summary["run_duration_s"] = round(end - float(self._start_time), 3)
        if status == Status.PREEMPTED:
            self._run.mark_preempting()
        self._run.finish(exit_code=EXIT_CODES.get(status, 1))
        self._run = None
        self._rebuild.finish()  # after finish(): the rebuilt run file is whole on disk
        for variable, value in self._saved_env.items():  # this run's folders are not the next one's
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value
        self._saved_env.clear()

    def release(self) -> None:
        # W&B's service process (wandb-core) lives until the process that started it ends it: end it now, and
        # wait for it, rather than in an exit hook.
        if self._wandb is not None:
            self._wandb.teardown()

    def open_sweep(self, sweep: SweepInfo) -> dict[str, Any]:
        # A sweep is a W&B group: every job's run joins it (see open).
        return {"group": f"sweep-{sweep.sweep_id}"}

    # --- translation -------------------------------------------------------------------------------------
    def _log_row(self) -> None:
        step = self._row_step
        row = {**self._row, "global_step": step if step is not None else 0}
        if self._row_wall is not None:
            row["_timestamp"] = self._row_wall  # the time it was logged, not the time it was shipped
        self._run.log(row)
        self._row = {}
        self._last_step = int(step or 0)

    def _log_at(self, values: dict[str, Any], step: int | None, wall: float) -> None:
        """One row of its own (media, system metrics) at our `step`, after the pending metrics row."""
        if self._row:
            self._log_row()
        at = int(step) if step is not None else self._last_step
        self._run.log({**values, "global_step": at, "_timestamp": wall})

    def _media_file(self, rel: Any) -> Path | None:
        assert self._run_dir is not None
        source = self._run_dir / str(rel or "")
        return source if rel and source.is_file() else None

    def _save_run_files(self, status: Status) -> None:
        """The files that define the run as run files, train.log as output.log (W&B's Logs tab), the
        traceback of a failed run."""
        if self._run_dir is None:
            return
        files = native.defining_files(self._run_dir)
        traceback = self._run_dir / "traceback.txt"
        if status is Status.FAILED and traceback.is_file():
            files.append(traceback)
        for path in files:
            with contextlib.suppress(Exception):
                self._run.save(str(path), base_path=str(self._run_dir), policy="now")
        log_file = self._run_dir / "train.log"
        if log_file.is_file():
            with contextlib.suppress(Exception):
                output = Path(self._run.dir) / "output.log"
                shutil.copyfile(log_file, output)
                self._run.save(str(output), base_path=str(self._run.dir), policy="now")

    def _artifact(self, data: ArtifactData, step: int | None) -> None:
        assert self._run_dir is not None
        wandb = self._wandb
        rel = str(data.get("path", ""))
        source = self._run_dir / rel
        kind = data.get("kind", "file")
        if kind == "checkpoint":
            aliases = list(data.get("aliases") or [Path(rel).stem])
            if self.checkpoints == "all":
                self._checkpoint(source, aliases)
            elif self.checkpoints == "end":
                self._pending.update({alias: source for alias in aliases})
            return
        if not source.exists():
            return
        if kind == "figure":
            name = str(data.get("name") or source.stem)
            self._run.log({f"figures/{name}": wandb.Image(str(source)), "global_step": int(step or 0)})
        else:
            self._run.save(str(source), base_path=str(self._run_dir), policy="now")

    def _checkpoint(self, source: Path, aliases: list[str]) -> None:
        if not source.is_file():
            return
        wandb = self._wandb
        artifact = wandb.Artifact(f"model-{self._run.id}", type="model", metadata={"file": source.name})
        artifact.add_file(str(source), name=f"{aliases[0]}{source.suffix}")
        self._run.log_artifact(artifact, aliases=aliases)


def _git_settings(src: dict[str, Any]) -> dict[str, str]:
    """The run's git commit and remote as W&B settings (W&B would read the shipper's working tree)."""
    fields = (("git_commit", src.get("commit")), ("git_remote_url", src.get("remote")))
    return {key: str(value) for key, value in fields if value}


def _config(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, (bool, int, float, str)) or v is None else str(v)
        for k, v in flatten(params).items()
    }


__all__ = ["EXIT_CODES", "MODES", "WandbBackend"]
