"""MLflow: one MLflow run per run, fed with `log_batch` (never one call per scalar).

- store: `tracking_uri` (default: a sqlite file in the project, no server needed) or an MLflow server
  (`http://127.0.0.1:5000`), checked at open so that an unreachable server fails the run before training;
- run name `<name>-<id>`, tags `run_id` (ours) and `run_dir`; our tags as MLflow tags;
- params: the full resolved config, flattened; metrics at our global step, with the time they were logged;
- artifacts: checkpoints as checkpoints/<alias>.pt (`last`, `best`), figures/, artifacts/ (text, files);
- final status: completed -> FINISHED, failed/crashed -> FAILED, aborted/preempted -> KILLED (our exact
  status is in the `run_status` tag); nothing is left RUNNING;
- resume re-opens the same MLflow run; a sweep is a parent run whose jobs are its child runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

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
from runkit.tracking.backends.mlflow_media import (
    _MAX_METRICS,
    _MAX_PARAM_VALUE,
    _MAX_PARAMS,
    _MAX_TAG_VALUE,
    _MAX_TAGS,
    _key,
    _source_tags,
    _sweep_tags,
    collect_artifact,
    log_files,
    send_media,
    summary_batch,
)
from runkit.tracking.backends.mlflow_store import (
    _create_store,
    _damaged_store,
    _remote,
    _store_problem,
    check_server,
    delete_points_after,
    find_experiment,
    holds_points_after,
    tagged_run,
)

log = logging.getLogger(__name__)

# Our final status -> MLflow's run status. Looked up with a Status at close and with the sweep callback's
# plain string at close_sweep: a str-valued enum member hashes and compares as its value, so both find it.
STATUS: dict[str, str] = {
    Status.COMPLETED: "FINISHED",
    Status.FAILED: "FAILED",
    Status.CRASHED: "FAILED",
    Status.ABORTED: "KILLED",
    Status.PREEMPTED: "KILLED",
}
# Set on a run closed without every event of the log (a backend set aside): its value is the command that
# completes it; `runs sync` removes it once the run is whole.
INCOMPLETE_TAG = "incomplete"
# MLflow's own HTTP retries (default: 7, minutes against a dead server) are set from our config unless the
# user set them: the shipper retries on its own, then sets MLflow aside.
_RETRY_VARIABLES = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
_USER_SET = {name for name in _RETRY_VARIABLES if os.environ.get(name)}


class MlflowBackend(Backend):
    name = "mlflow"

    def __init__(
        self,
        tracking_uri: str,
        experiment: str = "Default",
        artifact_location: str | None = None,
        log_checkpoints: bool = True,
        request_timeout: int = 10,
        request_retries: int = 2,
    ) -> None:
        self.tracking_uri = str(tracking_uri)
        self.experiment = str(experiment)
        self.artifact_location = artifact_location
        self.log_checkpoints = bool(log_checkpoints)
        self.request_timeout = int(request_timeout)
        self.request_retries = int(request_retries)
        self.run_id: str | None = None
        self._client: Any = None
        self._run_dir: Path | None = None
        self._params: dict[str, str] = {}  # every param the MLflow run has: they cannot change
        self._sweep_run_id: str | None = None
        self._last_step = 0
        self._end_ms: int | None = None  # the status event's time: when the session really ended
        self._media: list[tuple[str, Any]] = []  # ("image" | "table" | "dataset", data): sent in flush()
        self._reopened = False  # this MLflow run existed before this session
        # The batch being gathered, as plain tuples: MLflow's entity classes are built once, in flush().
        self._metrics: list[tuple[str, float, int, int]] = []  # (key, value, time in ms, step)
        self._pending_params: list[tuple[str, str]] = []
        self._tags: list[tuple[str, str]] = []
        self._files: dict[tuple[str, str], Path] = {}  # (artifact dir, file name) -> source; the latest wins
        self._rewind: int | None = None  # a resume in this batch: points after this step are superseded

    # --- connection --------------------------------------------------------------------------------------
    def preflight(self) -> None:
        require_package("mlflow", self.name)
        if _remote(self.tracking_uri):
            check_server(self.tracking_uri, self.request_timeout)
        elif self.tracking_uri.startswith("sqlite:///"):
            db = Path(self.tracking_uri[len("sqlite:///") :])
            problem = _store_problem(db)
            if problem:
                raise BackendError(_damaged_store(db, problem))

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        if _remote(self.tracking_uri):
            for name, value in zip(
                _RETRY_VARIABLES, (self.request_retries, self.request_timeout), strict=True
            ):
                if name not in _USER_SET:
                    os.environ[name] = str(value)
            check_server(self.tracking_uri, self.request_timeout)
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise BackendError(
                f"tracker=mlflow needs the mlflow package ({exc}): pip install -e '.[mlflow]'"
            ) from exc
        if self.tracking_uri.startswith("sqlite:///"):
            db = Path(self.tracking_uri[len("sqlite:///") :])
            _create_store(db, MlflowClient)
            try:
                client = MlflowClient(tracking_uri=self.tracking_uri)
                client.search_experiments(max_results=1)  # opens the store: its schema is checked here
            except Exception as exc:
                raise BackendError(_damaged_store(db, exc)) from exc
            self._client = client
        else:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    # --- lifecycle ---------------------------------------------------------------------------------------
    def open(self, run: RunInfo) -> dict[str, Any]:
        client = self._connect()
        self._run_dir = Path(run.run_dir)
        experiment_id = self._experiment(client)
        previous = run.previous.get("run_id")
        if previous:
            try:
                existing = client.get_run(previous)
            except Exception as exc:
                log.warning(
                    "MLflow run %s of an earlier session is gone (%s); starting a new one", previous, exc
                )
            else:
                client.update_run(previous, status="RUNNING")
                self.run_id = previous
                self._reopened = True
                self._params = dict(existing.data.params)
                experiment_id = existing.info.experiment_id
        if self.run_id is None:
            # Our run id may already have an MLflow run that run.json never learnt of (the trainer was
            # interrupted before it recorded the ids): continue that one, never make a second.
            found = tagged_run(client, experiment_id, run.run_id)
            if found is not None:
                client.update_run(found.info.run_id, status="RUNNING")
                self.run_id = found.info.run_id
                self._reopened = True
                self._params = dict(found.data.params)
        if self.run_id is None:
            tags = {"run_id": run.run_id, "run_dir": str(run.run_dir), **_source_tags(run)}
            tags.update({_key(t): "" for t in run.tags})
            if run.sweep:
                tags["sweep_id"] = str(run.sweep.get("id"))
                parent = ((run.sweep.get("backends") or {}).get(self.name) or {}).get("run_id")
                if parent:
                    tags["mlflow.parentRunId"] = str(parent)
            # The run's own start (run.json), not the moment this process connected.
            start_ms = int(float(run.start_time) * 1000) if run.start_time else None
            created = client.create_run(
                experiment_id, run_name=native.display_name(run), tags=tags, start_time=start_ms
            )
            self.run_id = created.info.run_id
        ids = {"run_id": self.run_id, "experiment_id": str(experiment_id), "tracking_uri": self.tracking_uri}
        if _remote(self.tracking_uri):
            ids["url"] = f"{self.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{self.run_id}"
        return ids

    # --- events: gathered per batch, sent in flush() with log_batch (MLflow's limits per call) -----------
    def log_metrics(self, step: int, metrics: dict[str, float], wall: float) -> None:
        stamp = int(wall * 1000)
        pending = self._metrics
        self._last_step = step
        for key, value in metrics.items():
            with contextlib.suppress(TypeError, ValueError):
                pending.append((_key(key), float(value), stamp, step))

    def log_params(self, params: dict[str, Any]) -> None:
        for key, value in params.items():
            key, text = _key(key), str(value)[:_MAX_PARAM_VALUE]
            if key in self._params:
                if self._params[key] != text:  # MLflow params cannot change: keep the first value
                    log.warning(
                        "MLflow param %s already set to %r; not changing it to %r",
                        key,
                        self._params[key],
                        text,
                    )
                continue
            self._params[key] = text
            self._pending_params.append((key, text))

    def mark_resume(self, resume: ResumeData, step: int | None, wall: float) -> None:
        # The resumed session logs the steps after from_step again: the earlier session's points for them
        # are superseded. Those gathered in this batch are dropped here, those already stored are deleted in
        # flush() (a sqlite store; a server has no way to delete a point: see docs/tracking.md).
        from_step = resume.get("from_step")
        if from_step is None:
            return
        from_step = int(from_step)
        self._metrics = [point for point in self._metrics if point[3] <= from_step]
        self._rewind = from_step if self._rewind is None else min(self._rewind, from_step)

    def set_tags(self, tags: dict[str, Any], step: int | None, wall: float) -> None:
        self._tags.extend((_key(k), str(v)[:_MAX_TAG_VALUE]) for k, v in tags.items())

    def log_artifact(self, artifact: ArtifactData, step: int | None, wall: float) -> None:
        assert self._run_dir is not None
        collect_artifact(self._run_dir, artifact, self._files, self.log_checkpoints)

    def mark_status(self, status: StatusData, step: int | None, wall: float) -> None:
        self._end_ms = int(wall * 1000)

    def log_image(self, image: ImageData, step: int | None, wall: float) -> None:
        self._media.append(("image", {**image, "step": step, "wall": wall}))

    def log_table(self, table: TableData, step: int | None, wall: float) -> None:
        self._media.append(("table", dict(table)))

    def log_dataset(self, dataset: DatasetData, step: int | None, wall: float) -> None:
        self._media.append(("dataset", dict(dataset)))

    def log_hparams(self, hparams: HParamsData, step: int | None, wall: float) -> None:
        self.log_params({str(k): v for k, v in (hparams.get("params") or {}).items()})
        metrics = {f"hparams/{k}": v for k, v in (hparams.get("metrics") or {}).items()}
        self.log_metrics(step if step is not None else self._last_step, metrics, wall)

    def log_system(self, metrics: dict[str, float], wall: float) -> None:
        step = self._last_step
        self.log_metrics(step, metrics, wall)
        self._last_step = step

    def flush(self) -> None:
        """Send the batch: params, then tags, then metrics (whatever their order in the log), then files."""
        from mlflow.entities import Metric, Param, RunTag

        client, run_id = self._client, self.run_id
        try:
            params = [Param(key, text) for key, text in self._pending_params]
            for i in range(0, len(params), _MAX_PARAMS):
                client.log_batch(run_id, params=params[i : i + _MAX_PARAMS])
            tags = [RunTag(key, text) for key, text in self._tags]
            for i in range(0, len(tags), _MAX_TAGS):
                client.log_batch(run_id, tags=tags[i : i + _MAX_TAGS])
            if self._rewind is not None:
                self._delete_after(self._rewind)
            metrics = [Metric(key, value, stamp, step) for key, value, stamp, step in self._metrics]
            for i in range(0, len(metrics), _MAX_METRICS):
                client.log_batch(run_id, metrics=metrics[i : i + _MAX_METRICS])
            if self._files:
                log_files(client, str(run_id), self._files)
            for kind, data in self._media:
                assert self._run_dir is not None
                send_media(client, str(run_id), self._run_dir, kind, data, self._last_step)
        finally:
            self.discard()

    def discard(self) -> None:
        self._metrics, self._pending_params, self._tags, self._files = [], [], [], {}
        self._rewind = None

    def _delete_after(self, step: int) -> None:
        """Delete this run's metric points after `step` (superseded by a resumed session) and set its latest
        values back: sqlite stores only, in SQL (MLflow has no API to delete a point)."""
        if not self.tracking_uri.startswith("sqlite:///"):
            if holds_points_after(self._client, str(self.run_id), step):  # set at once: the batch's tags went
                log.warning(
                    "MLflow at %s keeps the points the interrupted session logged after step %d next to "
                    "the resumed session's (a server cannot delete a point); the run's tag "
                    "resumed_from_step says from where",
                    self.tracking_uri,
                    step,
                )
                self._client.set_tag(self.run_id, "resumed_from_step", str(step))
            return
        assert self.run_id is not None
        delete_points_after(self.tracking_uri[len("sqlite:///") :], self.run_id, step)
        self._media = []

    def mark_complete(self, missing: str | None) -> None:
        if self._client is None or self.run_id is None:
            return
        if missing:
            self._client.set_tag(self.run_id, INCOMPLETE_TAG, missing[:_MAX_TAG_VALUE])
        elif self._reopened:
            with contextlib.suppress(Exception):  # absent unless an earlier session closed it incomplete
                self._client.delete_tag(self.run_id, INCOMPLETE_TAG)

    def close(self, status: Status) -> None:
        if self._client is None or self.run_id is None:
            return
        client = self._client
        client.set_tag(self.run_id, "run_status", status.value)
        traceback = self._run_dir / "traceback.txt" if self._run_dir else None
        if status is Status.FAILED and traceback is not None and traceback.is_file():
            client.log_artifact(self.run_id, str(traceback))
        if self._run_dir is not None:  # the files that define the run, and its log as it ended
            for path in [*native.defining_files(self._run_dir), self._run_dir / "train.log"]:
                if path.is_file():
                    client.log_artifact(self.run_id, str(path))
        client.set_terminated(
            self.run_id, status=STATUS.get(status, "FAILED"), end_time=self._end_ms or int(time.time() * 1000)
        )

    # --- sweeps ------------------------------------------------------------------------------------------
    def open_sweep(self, sweep: SweepInfo) -> dict[str, Any]:
        """A parent run for the sweep; each job's run is its child (tag mlflow.parentRunId)."""
        client = self._connect()
        experiment_id = self._experiment(client)
        previous = sweep.previous.get("run_id")
        if previous:
            client.update_run(previous, status="RUNNING")
            self._sweep_run_id = previous
        else:
            # Only the sweep's own fields: the base config as params would make the parent answer queries
            # meant for its jobs (params.lr = '0.001').
            tags = {"sweep_id": sweep.sweep_id, "sweep_dir": str(sweep.sweep_dir), "sweep_parent": "true"}
            tags.update(_sweep_tags(sweep.sweep_dir))
            created = client.create_run(experiment_id, run_name=f"{sweep.name}-{sweep.sweep_id}", tags=tags)
            self._sweep_run_id = created.info.run_id
        return {
            "run_id": self._sweep_run_id,
            "experiment_id": experiment_id,
            "tracking_uri": self.tracking_uri,
        }

    def close_sweep(self, sweep: SweepInfo, status: str, summary: dict[str, Any]) -> None:
        """End the parent run: the summary's numbers as metrics, the rest as tags, the status mapped."""
        from mlflow.entities import RunTag

        run_id = self._sweep_run_id or sweep.previous.get("run_id")
        if not run_id:
            return
        client = self._connect()
        metrics, tags = summary_batch(summary, status)
        best = (summary or {}).get("best") or {}
        best_run = self._job_run(client, str(best.get("run_id"))) if best.get("run_id") else None
        if best_run is not None:  # the best job as an MLflow run id: a link within MLflow
            tags.append(RunTag("best_job_run_id", best_run))
        for name in ("summary.md", "summary.csv"):
            path = Path(sweep.sweep_dir) / name
            if path.is_file():
                with contextlib.suppress(Exception):
                    client.log_artifact(run_id, str(path))
        for i in range(0, len(metrics), _MAX_METRICS):
            client.log_batch(run_id, metrics=metrics[i : i + _MAX_METRICS])
        for i in range(0, len(tags), _MAX_TAGS):
            client.log_batch(run_id, tags=tags[i : i + _MAX_TAGS])
        client.set_terminated(run_id, status=STATUS.get(status, "FAILED"))

    # --- helpers -----------------------------------------------------------------------------------------
    def _experiment(self, client: Any) -> str:
        return find_experiment(client, self.experiment, self.artifact_location, self.tracking_uri)

    def _job_run(self, client: Any, our_id: str) -> str | None:
        """The MLflow run id of the job whose run id (ours) is `our_id`."""
        try:
            experiment_id = self._experiment(client)
            query = f"tags.run_id = '{our_id}'"
            found = client.search_runs([experiment_id], filter_string=query, max_results=1)
        except Exception:
            return None
        return str(found[0].info.run_id) if found else None


# What this module has always offered, wherever it is defined now.
__all__ = [
    "INCOMPLETE_TAG",
    "MlflowBackend",
    "STATUS",
]
