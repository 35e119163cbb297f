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
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runkit.flatten import flatten
from runkit.storage.events import ArtifactData
from runkit.storage.status import Status
from runkit.tracking.backends.base import Backend, BackendError, RunInfo, SweepInfo, require_package

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
_BAD_KEY = re.compile(r"[^/\w.\- :]")
_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100  # MLflow's log_batch limits
_MAX_PARAM_VALUE, _MAX_TAG_VALUE = 6000, 8000
# MLflow's own HTTP retries (default: 7, minutes against a dead server) are set from our config unless the
# user set them: the shipper retries on its own, then sets MLflow aside.
_RETRY_VARIABLES = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
_USER_SET = {name for name in _RETRY_VARIABLES if os.environ.get(name)}


def _key(name: Any) -> str:
    key = _BAD_KEY.sub("_", str(name)).replace("..", "_.")
    return key[:250] or "_"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX flock; elsewhere, no lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


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
        # The batch being gathered, as plain tuples: MLflow's entity classes are built once, in flush().
        self._metrics: list[tuple[str, float, int, int]] = []  # (key, value, time in ms, step)
        self._pending_params: list[tuple[str, str]] = []
        self._tags: list[tuple[str, str]] = []
        self._files: dict[tuple[str, str], Path] = {}  # (artifact dir, file name) -> source; the latest wins

    # --- connection --------------------------------------------------------------------------------------
    def preflight(self) -> None:
        require_package("mlflow", self.name)
        if _remote(self.tracking_uri):
            self._check_server()

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        if _remote(self.tracking_uri):
            for name, value in zip(
                _RETRY_VARIABLES, (self.request_retries, self.request_timeout), strict=True
            ):
                if name not in _USER_SET:
                    os.environ[name] = str(value)
            self._check_server()
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise BackendError(
                f"tracker=mlflow needs the mlflow package ({exc}): pip install -e '.[mlflow]'"
            ) from exc
        if self.tracking_uri.startswith("sqlite:///"):
            # Opening a sqlite store creates or migrates its schema; parallel jobs (a joblib sweep) doing that
            # at once break each other's migrations, so one process at a time opens the store.
            db = Path(self.tracking_uri[len("sqlite:///") :])
            db.parent.mkdir(parents=True, exist_ok=True)
            # flock on the database file itself: independent of sqlite's own (fcntl) locks, no extra file.
            with _file_lock(db):
                self._client = MlflowClient(tracking_uri=self.tracking_uri)
        else:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _check_server(self) -> None:
        import urllib.error
        import urllib.request

        url = self.tracking_uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=self.request_timeout) as response:
                response.read(64)
        except urllib.error.HTTPError:
            return  # it answered: reachable (a proxy or an auth layer may refuse /health)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendError(
                f"the MLflow server at {self.tracking_uri} is unreachable ({reason}); start it "
                f"(mlflow server --host 127.0.0.1 --port 5000) or set tracker.mlflow.tracking_uri=..."
            ) from None

    def _experiment_id(self, client: Any) -> str:
        from mlflow.exceptions import MlflowException

        for attempt in range(
            5
        ):  # parallel sweep jobs may race to create the experiment (or the sqlite schema)
            try:
                experiment = client.get_experiment_by_name(self.experiment)
                if experiment is not None:
                    if experiment.lifecycle_stage == "deleted":
                        raise BackendError(
                            f"the MLflow experiment {self.experiment!r} is deleted: restore it "
                            f"(mlflow experiments restore) or set tracker.mlflow.experiment=<another name>"
                        )
                    return str(experiment.experiment_id)
                location = None
                if self.artifact_location and not _remote(self.tracking_uri):
                    location = Path(self.artifact_location).resolve().as_uri()
                return str(client.create_experiment(self.experiment, artifact_location=location))
            except BackendError:
                raise
            except MlflowException as exc:
                if "already exists" not in str(exc) and "locked" not in str(exc) and attempt >= 2:
                    raise
            except Exception as exc:  # sqlalchemy OperationalError: database is locked / schema being created
                if attempt >= 4:
                    raise
                log.info("MLflow store busy (%s); retrying", exc)
            time.sleep(0.5 * (attempt + 1))
        raise BackendError(f"could not create the MLflow experiment {self.experiment!r}")

    # --- lifecycle ---------------------------------------------------------------------------------------
    def open(self, run: RunInfo) -> dict[str, Any]:
        client = self._connect()
        self._run_dir = Path(run.run_dir)
        experiment_id = self._experiment_id(client)
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
                self._params = dict(existing.data.params)
                experiment_id = existing.info.experiment_id
        if self.run_id is None:
            tags = {"run_id": run.run_id, "run_dir": str(run.run_dir), "mlflow.source.name": "train.py"}
            tags.update({_key(t): "" for t in run.tags})
            if run.sweep:
                tags["sweep_id"] = str(run.sweep.get("id"))
                parent = ((run.sweep.get("backends") or {}).get(self.name) or {}).get("run_id")
                if parent:
                    tags["mlflow.parentRunId"] = str(parent)
            created = client.create_run(experiment_id, run_name=f"{run.name}-{run.run_id}", tags=tags)
            self.run_id = created.info.run_id
        ids = {"run_id": self.run_id, "experiment_id": str(experiment_id), "tracking_uri": self.tracking_uri}
        if _remote(self.tracking_uri):
            ids["url"] = f"{self.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{self.run_id}"
        return ids

    # --- events: gathered per batch, sent in flush() with log_batch (MLflow's limits per call) -----------
    def log_metrics(self, step: int, metrics: dict[str, float], wall: float) -> None:
        stamp = int(wall * 1000)
        pending = self._metrics
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

    def set_tags(self, tags: dict[str, Any], step: int | None, wall: float) -> None:
        self._tags.extend((_key(k), str(v)[:_MAX_TAG_VALUE]) for k, v in tags.items())

    def log_artifact(self, artifact: ArtifactData, step: int | None, wall: float) -> None:
        self._collect_artifact(artifact, self._files)

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
            metrics = [Metric(key, value, stamp, step) for key, value, stamp, step in self._metrics]
            for i in range(0, len(metrics), _MAX_METRICS):
                client.log_batch(run_id, metrics=metrics[i : i + _MAX_METRICS])
            if self._files:
                self._log_files(self._files)
        finally:
            self.discard()

    def discard(self) -> None:
        self._metrics, self._pending_params, self._tags, self._files = [], [], [], {}

    def close(self, status: Status) -> None:
        if self._client is None or self.run_id is None:
            return
        client = self._client
        client.set_tag(self.run_id, "run_status", status.value)
        traceback = self._run_dir / "traceback.txt" if self._run_dir else None
        if status is Status.FAILED and traceback is not None and traceback.is_file():
            client.log_artifact(self.run_id, str(traceback))
        client.set_terminated(self.run_id, status=STATUS.get(status, "FAILED"))

    # --- sweeps ------------------------------------------------------------------------------------------
    def open_sweep(self, sweep: SweepInfo) -> dict[str, Any]:
        """A parent run for the sweep; each job's run is its child (tag mlflow.parentRunId)."""
        client = self._connect()
        experiment_id = self._experiment_id(client)
        previous = sweep.previous.get("run_id")
        if previous:
            client.update_run(previous, status="RUNNING")
            self._sweep_run_id = previous
        else:
            tags = {"sweep_id": sweep.sweep_id, "sweep_dir": str(sweep.sweep_dir)}
            created = client.create_run(experiment_id, run_name=f"{sweep.name}-{sweep.sweep_id}", tags=tags)
            self._sweep_run_id = created.info.run_id
            self._log_params(created.info.run_id, sweep.config)
        return {
            "run_id": self._sweep_run_id,
            "experiment_id": experiment_id,
            "tracking_uri": self.tracking_uri,
        }

    def close_sweep(self, sweep: SweepInfo, status: str, summary: dict[str, Any]) -> None:
        """End the parent run: the summary's numbers as metrics, the rest as tags, the status mapped."""
        from mlflow.entities import Metric, RunTag

        run_id = self._sweep_run_id or sweep.previous.get("run_id")
        if not run_id:
            return
        client = self._connect()
        stamp = int(time.time() * 1000)
        metrics, tags = [], [RunTag("run_status", status)]
        for key, value in flatten(summary or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics.append(Metric(_key(key), float(value), stamp, 0))
            elif value is not None:
                tags.append(RunTag(_key(key), str(value)[:_MAX_TAG_VALUE]))
        for i in range(0, len(metrics), _MAX_METRICS):
            client.log_batch(run_id, metrics=metrics[i : i + _MAX_METRICS])
        for i in range(0, len(tags), _MAX_TAGS):
            client.log_batch(run_id, tags=tags[i : i + _MAX_TAGS])
        client.set_terminated(run_id, status=STATUS.get(status, "FAILED"))

    # --- helpers -----------------------------------------------------------------------------------------
    def _log_params(self, run_id: str, config: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(_key(k), str(v)[:_MAX_PARAM_VALUE]) for k, v in flatten(config or {}).items()]
        for i in range(0, len(params), _MAX_PARAMS):
            self._client.log_batch(run_id, params=params[i : i + _MAX_PARAMS])

    def _collect_artifact(self, data: ArtifactData, files: dict[tuple[str, str], Path]) -> None:
        assert self._run_dir is not None
        rel = Path(str(data.get("path", "")))
        source = self._run_dir / rel
        if data.get("kind") == "checkpoint":
            if not self.log_checkpoints:
                return
            for alias in data.get("aliases") or [rel.stem]:
                files[("checkpoints", f"{alias}{rel.suffix}")] = source
        else:
            folder = rel.parent.as_posix()
            files[("" if folder == "." else folder, rel.name)] = source

    def _log_files(self, files: dict[tuple[str, str], Path]) -> None:
        with tempfile.TemporaryDirectory(prefix="mlflow-artifacts-") as tmp:
            for (folder, name), source in files.items():
                if not source.exists():  # replaced or removed since it was logged: the newer one follows
                    log.warning("artifact %s no longer exists; not sending it to MLflow", source)
                    continue
                if source.is_dir():
                    self._client.log_artifacts(self.run_id, str(source), f"{folder}/{name}".strip("/"))
                    continue
                path = source
                if source.name != name:  # e.g. a checkpoint under an alias: send it under that name
                    path = Path(tmp) / folder / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, path)
                self._client.log_artifact(self.run_id, str(path), folder or None)
