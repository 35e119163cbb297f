"""TensorBoard: event files in <run dir>/tensorboard, written with the `tensorboard` package alone.

- metrics -> scalars at our global step; figures -> images; text artifacts -> the Text tab; tags,
  checkpoints and other files -> text records (TensorBoard has no artifact store);
- params -> an HParams session (written at close, with every param of the run) whose status follows ours,
  so the HParams tab compares runs; `tensorboard --logdir runs` sees every run, sweep jobs included (they
  live inside the sweep's folder);
- resume: a purge at the step the run continues from, so no step is shown twice;
- final status: a `run/status` text record and the HParams session's status.

TensorBoard's own writer is used (not torch's SummaryWriter): nothing here imports torch or TensorFlow.
"""

from __future__ import annotations

import contextlib
import struct
import time
from pathlib import Path
from typing import Any

from runkit.flatten import flatten
from runkit.storage.events import (
    ArtifactData,
    DatasetData,
    HParamsData,
    ImageData,
    ResumeData,
    StatusData,
    TableData,
)
from runkit.storage.status import Status
from runkit.tracking.backends import native
from runkit.tracking.backends.base import Backend, BackendError, RunInfo, SweepInfo, require_package
from runkit.tracking.backends.tensorboard_hparams import hparam_value as _hparam_value
from runkit.tracking.backends.tensorboard_hparams import hparams_experiment, hparams_session

_TEXT_LIMIT = 100_000  # characters of a text artifact shown in the Text tab


class TensorBoardBackend(Backend):
    name = "tensorboard"

    def __init__(
        self,
        flush_secs: float = 5.0,
        max_queue: int = 1000,
        subdir: str = "tensorboard",
        hparams: bool = True,
    ) -> None:
        self.flush_secs = float(flush_secs)
        self.max_queue = int(max_queue)
        self.subdir = str(subdir)
        self.hparams = bool(hparams)
        self._writer: Any = None
        self._params: dict[str, Any] = {}
        self._start_time = time.time()
        self._last_step = 0
        self._purge_from: int | None = None  # see confirmed_until
        self._end_time: float | None = None  # the status event's time: when the session really ended
        self._status_written: str | None = None  # the status a `run/status` record already says
        self._monitor: tuple[str, str] | None = None  # (metric, mode) from the config
        self._best: float | None = None  # the monitored metric's best value so far
        self._session_metrics: dict[str, float] = {}  # test/* and log_hparams metrics: the HParams columns
        self._first: list[str] = []  # the HParams columns shown first: the swept params and the sweep

    # --- lifecycle ---------------------------------------------------------------------------------------
    def preflight(self) -> None:
        require_package("tensorboard", self.name)

    def open(self, run: RunInfo) -> dict[str, Any]:
        try:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError as exc:
            raise BackendError(
                f"tracker=tensorboard needs the tensorboard package ({exc}): pip install -e '.[tensorboard]'"
            ) from exc
        log_dir = Path(run.run_dir) / self.subdir
        self._run = run
        _after_existing_files(log_dir)
        self._writer = EventFileWriter(
            str(log_dir), max_queue_size=self.max_queue, flush_secs=self.flush_secs
        )
        if run.resumed and run.resume_step is not None:
            # Steps after resume_step, written by the earlier session, are dropped from view: no duplicates.
            self._purge(int(run.resume_step))
        if not run.previous:
            lines = [f"id: {run.run_id}", f"name: {run.name}", f"run dir: {run.run_dir}"]
            if run.sweep:
                lines.append(f"sweep: {run.sweep.get('id')} (job {run.sweep.get('job_num')})")
            if run.tags:
                lines.append(f"tags: {', '.join(run.tags)}")
            self._text("run/info", "\n\n".join(lines), 0)
            self._run_texts(run)
        self._start_time = float(run.start_time or self._start_time)
        self._params = {k: _hparam_value(v) for k, v in flatten(run.config).items()}
        monitor = run.config.get("monitor") if isinstance(run.config.get("monitor"), dict) else None
        if monitor and monitor.get("metric"):
            self._monitor = (str(monitor["metric"]), str(monitor.get("mode") or "max"))
        swept = native.swept_values(run)
        for key, value in swept.items():  # a config group (optimizer=sgd) is no flattened key: add it
            self._params.setdefault(key, _hparam_value(value))
        if run.sweep:
            self._params["sweep"] = str(run.sweep.get("id"))
        self._first = [*swept, *(["sweep"] if run.sweep else [])]
        return {"log_dir": str(log_dir)}

    # --- events: each written at once (TensorBoard's writer queues and flushes on its own) ---------------
    def log_metrics(self, step: int, metrics: dict[str, float], wall: float) -> None:
        self._scalars(metrics, step, wall)
        self._last_step = step
        monitor = self._monitor
        if monitor is not None and monitor[0] in metrics:
            self._observe(metrics[monitor[0]], monitor[1])
        for key, value in metrics.items():
            if key.startswith("test/"):
                with contextlib.suppress(TypeError, ValueError):
                    self._session_metrics[key] = float(value)

    def log_params(self, params: dict[str, Any]) -> None:
        # Kept for the HParams session written at close: it holds every param of the run, with its status.
        self._params.update({k: _hparam_value(v) for k, v in params.items()})

    def set_tags(self, tags: dict[str, Any], step: int | None, wall: float) -> None:
        text = ", ".join(f"{k}={v}" if v not in ("", None) else str(k) for k, v in tags.items())
        self._text("run/tags", text, self._step(step), wall)

    def log_artifact(self, artifact: ArtifactData, step: int | None, wall: float) -> None:
        self._artifact(artifact, self._step(step), wall)

    def mark_status(self, status: StatusData, step: int | None, wall: float) -> None:
        self._text("run/status", str(status.get("status")), self._step(step), wall)
        self._status_written = str(status.get("status"))
        self._end_time = wall

    def log_image(self, image: ImageData, step: int | None, wall: float) -> None:
        path = Path(self._run.run_dir) / str(image.get("path", ""))
        if path.is_file():
            self._image(f"images/{image.get('name') or path.stem}", path.read_bytes(), self._step(step), wall)

    def log_table(self, table: TableData, step: int | None, wall: float) -> None:
        path = Path(self._run.run_dir) / str(table.get("path", ""))
        if path.is_file():
            columns, rows = native.read_table(path)
            text = native.markdown_table(columns, rows)
            self._text(f"tables/{table.get('name') or path.stem}", text, self._step(step), wall)

    def log_hparams(self, hparams: HParamsData, step: int | None, wall: float) -> None:
        self._params.update({k: _hparam_value(v) for k, v in (hparams.get("params") or {}).items()})
        metrics = {f"hparams/{k}": float(v) for k, v in (hparams.get("metrics") or {}).items()}
        self._scalars(metrics, self._step(step), wall)
        self._session_metrics.update(metrics)

    def log_dataset(self, dataset: DatasetData, step: int | None, wall: float) -> None:
        self._text("run/dataset", native.dataset_text(dict(dataset)), self._step(step), wall)
        for key in ("name", "fingerprint"):  # two runs on different data never look alike in HParams
            if dataset.get(key) is not None:
                self._params[f"dataset.{key}"] = str(dataset.get(key))

    def log_system(self, metrics: dict[str, float], wall: float) -> None:
        self._scalars(metrics, self._last_step, wall)

    def mark_resume(self, resume: ResumeData, step: int | None, wall: float) -> None:
        # A resumed session takes over at from_step: what the earlier one logged from there on is superseded
        # (also when `runs sync` replays the whole log into a new log dir).
        from_step = resume.get("from_step")
        if from_step is not None:
            self._purge(int(from_step))

    def flush(self) -> None:
        # The end of a batch: its events go from the writer's queue into the file (the page cache) now, so the
        # cursor never moves past events that a kill of this process would still lose (flush_secs is 5 s).
        if self._writer is not None:
            self._writer.flush()

    def mark_complete(self, missing: str | None) -> None:
        if self._writer is not None and missing:
            self._text("run/incomplete", missing, self._last_step)

    def close(self, status: Status) -> None:
        if self._writer is None:
            return
        if self._status_written != status.value:  # written once: the status event said it already
            self._text("run/status", status.value, self._last_step)
            self._status_written = status.value
        if self._monitor is not None and self._best is not None:
            self._session_metrics[f"best/{self._monitor[0]}"] = self._best
            self._scalars({f"best/{self._monitor[0]}": self._best}, self._last_step, time.time())
        if self.hparams:
            self._hparams_session(status)
        self._writer.flush()
        self._writer.close()
        self._writer = None

    def open_sweep(self, sweep: SweepInfo) -> dict[str, Any]:
        # The jobs' log dirs live inside the sweep folder: `tensorboard --logdir <sweep dir>` shows the sweep.
        return {"log_dir": str(sweep.sweep_dir)}

    # --- translation -------------------------------------------------------------------------------------
    def _observe(self, value: Any, mode: str) -> None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return
        if number != number:  # NaN
            return
        best = self._best
        if best is None or (number > best if mode == "max" else number < best):
            self._best = number

    def _run_texts(self, run: RunInfo) -> None:
        """The files that define the run, as text: its config and its command-line overrides."""
        config = Path(run.run_dir) / "config.yaml"
        if config.is_file():
            text = config.read_text(encoding="utf-8", errors="replace")[:_TEXT_LIMIT]
            self._text("run/config", f"```yaml\n{text}\n```", 0)
        overrides = native.overrides(run)
        self._text("run/overrides", " ".join(overrides) if overrides else "(none)", 0)

    def _step(self, step: Any) -> int:
        return int(step) if step is not None else self._last_step

    def confirmed_until(self, events_file: Path, cursor_offset: int) -> tuple[int, int] | None:
        """TensorBoard writes events to its file as they come, so after a kill it may hold more than its
        cursor says (a batch written, the cursor not yet saved). This session sends again from the first
        event of the step the cursor stopped in, and purges, at that step, whatever an earlier session wrote
        from there on: every step once, whatever the moment of the kill."""
        from runkit.storage.events import read_events

        last_step: int | None = None
        group_start = previous = (0, 0)
        for end, event in read_events(events_file):
            if end > cursor_offset:
                break
            step = event.get("step")
            if step is not None and step != last_step:
                group_start, last_step = previous, int(step)
            previous = (end, int(event.get("seq") or 0))
        if last_step is None:
            return None
        self._purge_from = last_step
        return group_start

    def _add(self, event: Any) -> None:
        if self._purge_from is not None:  # the first event this session writes: purge first
            from tensorboard.compat.proto.event_pb2 import Event, SessionLog

            start = SessionLog(status=SessionLog.START)
            step, self._purge_from = self._purge_from, None
            self._writer.add_event(Event(wall_time=time.time(), step=step, session_log=start))
        self._writer.add_event(event)

    def _purge(self, step: int) -> None:
        """A session that continues after `step` (the checkpoint's): TensorBoard drops what was written
        before for later steps. Its purge removes every event at or after the START event's step, so the
        START is at step + 1: the checkpoint's own step, which the resumed session does not log again,
        stays."""
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog

        start = SessionLog(status=SessionLog.START)
        self._add(Event(wall_time=time.time(), step=step + 1, session_log=start))
        self._last_step = step

    def _scalars(self, values: dict[str, Any], step: int, wall: float) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        points = []
        for key, value in values.items():
            try:
                points.append(Summary.Value(tag=str(key), simple_value=float(value)))
            except (TypeError, ValueError):
                continue
        if points:
            self._add(Event(wall_time=wall, step=step, summary=Summary(value=points)))

    def _text(self, tag: str, text: str, step: int, wall: float | None = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

        metadata = SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(
                plugin_name="text", content=TextPluginData(version=0).SerializeToString()
            )
        )
        tensor = TensorProto(
            dtype="DT_STRING",
            string_val=[text.encode("utf-8")],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        summary = Summary(value=[Summary.Value(tag=tag, metadata=metadata, tensor=tensor)])
        self._add(Event(wall_time=wall or time.time(), step=step, summary=summary))

    def _artifact(self, data: ArtifactData, step: int, wall: float) -> None:
        rel = str(data.get("path", ""))
        path = Path(self._run.run_dir) / rel
        kind = data.get("kind", "file")
        name = str(data.get("name") or Path(rel).stem)
        if kind == "figure" and path.suffix.lower() == ".png" and path.is_file():
            self._image(f"figures/{name}", path.read_bytes(), step, wall)
        elif kind == "text" and path.is_file():
            self._text(
                f"text/{name}", path.read_text(encoding="utf-8", errors="replace")[:_TEXT_LIMIT], step, wall
            )
        elif kind == "checkpoint":
            # One record per alias: two records with one tag at one step would show only one of them.
            for alias in data.get("aliases") or [Path(rel).stem]:
                self._text(f"checkpoints/{alias}", f"{rel} (step {step})", step, wall)
        else:
            self._text(f"artifacts/{kind}", rel, step, wall)

    def _image(self, tag: str, png: bytes, step: int, wall: float) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        width, height, channels = _png_size(png)
        image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
        self._add(
            Event(wall_time=wall, step=step, summary=Summary(value=[Summary.Value(tag=tag, image=image)]))
        )

    def _hparams_session(self, status: Status) -> None:
        """The HParams experiment and this run's session (tensorboard_hparams builds them)."""
        experiment = hparams_experiment(self._params, self._first, self._session_metrics, self._start_time)
        session = hparams_session(
            self._run.run_id, self._params, status, self._start_time, self._end_time or time.time()
        )
        for event in (experiment, *session):
            self._add(event)


def _after_existing_files(log_dir: Path) -> None:
    """TensorBoard reads a log dir's event files in name order, and the name starts with the creation second:
    a session (a resume, `runs sync`) must not start its file in the same second as an earlier one."""
    seconds = []
    for path in log_dir.glob("events.out.tfevents.*"):
        with contextlib.suppress(IndexError, ValueError):
            seconds.append(int(path.name.split(".")[3]))
    if seconds:
        wait = max(seconds) + 1 - time.time()
        if wait > 0:
            time.sleep(wait)


def _png_size(png: bytes) -> tuple[int, int, int]:
    """(width, height, channels) from a PNG header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 26:
        return 0, 0, 4
    width, height = struct.unpack(">II", png[16:24])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(png[25], 4)
    return width, height, channels
