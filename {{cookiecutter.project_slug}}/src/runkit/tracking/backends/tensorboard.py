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
from runkit.storage.events import ArtifactData, ResumeData, StatusData
from runkit.storage.status import Status
from runkit.tracking.backends.base import Backend, BackendError, RunInfo, SweepInfo, require_package

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
            # Steps from resume_step on, written by the earlier session, are dropped from view: no duplicates.
            self._purge(int(run.resume_step))
        if not run.previous:
            lines = [f"id: {run.run_id}", f"name: {run.name}", f"run dir: {run.run_dir}"]
            if run.sweep:
                lines.append(f"sweep: {run.sweep.get('id')} (job {run.sweep.get('job_num')})")
            if run.tags:
                lines.append(f"tags: {', '.join(run.tags)}")
            self._text("run/info", "\n\n".join(lines), 0)
        self._params = {k: _hparam_value(v) for k, v in flatten(run.config).items()}
        return {"log_dir": str(log_dir)}

    # --- events: each written at once (TensorBoard's writer queues and flushes on its own) ---------------
    def log_metrics(self, step: int, metrics: dict[str, float], wall: float) -> None:
        self._scalars(metrics, step, wall)
        self._last_step = step

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

    def mark_resume(self, resume: ResumeData, step: int | None, wall: float) -> None:
        # A resumed session takes over at from_step: what the earlier one logged from there on is superseded
        # (also when `runs sync` replays the whole log into a new log dir).
        from_step = resume.get("from_step")
        if from_step is not None:
            self._purge(int(from_step))

    def close(self, status: Status) -> None:
        if self._writer is None:
            return
        self._text("run/status", status.value, self._last_step)
        if self.hparams:
            self._hparams_session(status)
        self._writer.flush()
        self._writer.close()
        self._writer = None

    def open_sweep(self, sweep: SweepInfo) -> dict[str, Any]:
        # The jobs' log dirs live inside the sweep folder: `tensorboard --logdir <sweep dir>` shows the sweep.
        return {"log_dir": str(sweep.sweep_dir)}

    # --- translation -------------------------------------------------------------------------------------
    def _step(self, step: Any) -> int:
        return int(step) if step is not None else self._last_step

    def _add(self, event: Any) -> None:
        self._writer.add_event(event)

    def _purge(self, step: int) -> None:
        """A session start at `step`: TensorBoard drops the events of earlier files from that step on."""
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog

        self._add(Event(wall_time=time.time(), step=step, session_log=SessionLog(status=SessionLog.START)))
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
        else:
            aliases = data.get("aliases") or []
            note = f" (aliases: {', '.join(aliases)})" if aliases else ""
            self._text(f"artifacts/{kind}", f"{rel}{note}", step, wall)

    def _image(self, tag: str, png: bytes, step: int, wall: float) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        width, height, channels = _png_size(png)
        image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
        self._add(
            Event(wall_time=wall, step=step, summary=Summary(value=[Summary.Value(tag=tag, image=image)]))
        )

    def _hparams_session(self, status: Status) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        start = plugin_data_pb2.SessionStartInfo(
            group_name=self._run.run_id, start_time_secs=self._start_time
        )
        for key, value in sorted(self._params.items()):
            if isinstance(value, bool):
                start.hparams[key].bool_value = value
            elif isinstance(value, (int, float)):
                start.hparams[key].number_value = value
            else:
                start.hparams[key].string_value = str(value)
        end = plugin_data_pb2.SessionEndInfo(
            status=api_pb2.Status.Value(_HPARAMS_STATUS.get(status, "STATUS_UNKNOWN")),
            end_time_secs=time.time(),
        )
        for tag, data in (
            (metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
            (metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)),
        ):
            value = Summary.Value(
                tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR
            )
            self._add(Event(wall_time=time.time(), step=0, summary=Summary(value=[value])))


# Our final status -> the HParams session status (aborted/preempted runs did not fail: unknown).
_HPARAMS_STATUS = {
    Status.COMPLETED: "STATUS_SUCCESS",
    Status.FAILED: "STATUS_FAILURE",
    Status.CRASHED: "STATUS_FAILURE",
}


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


def _hparam_value(value: Any) -> bool | int | float | str:
    if isinstance(value, (bool, int, float, str)):
        return value
    return "None" if value is None else str(value)


def _png_size(png: bytes) -> tuple[int, int, int]:
    """(width, height, channels) from a PNG header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 26:
        return 0, 0, 4
    width, height = struct.unpack(">II", png[16:24])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(png[25], 4)
    return width, height, channels
