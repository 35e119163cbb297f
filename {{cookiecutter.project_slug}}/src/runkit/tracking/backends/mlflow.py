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
import json
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
_BAD_KEY = re.compile(r"[^/\w.\- :]")
_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100  # MLflow's log_batch limits
_MAX_PARAM_VALUE, _MAX_TAG_VALUE = 6000, 8000
# MLflow's own HTTP retries (default: 7, minutes against a dead server) are set from our config unless the
# user set them: the shipper retries on its own, then sets MLflow aside.
_RETRY_VARIABLES = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
_USER_SET = {name for name in _RETRY_VARIABLES if os.environ.get(name)}


# The latest value of each key that lost it, from the points left (the highest step, then time, then value,
# as MLflow orders them).
_LATEST_AGAIN = """
INSERT OR REPLACE INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)
SELECT m.key, m.value, m.timestamp, m.step, m.is_nan, m.run_uuid FROM metrics m
WHERE m.run_uuid = ? AND m.key NOT IN (SELECT key FROM latest_metrics WHERE run_uuid = m.run_uuid)
AND NOT EXISTS (
    SELECT 1 FROM metrics o WHERE o.run_uuid = m.run_uuid AND o.key = m.key AND (
        o.step > m.step OR (o.step = m.step AND (o.timestamp > m.timestamp
        OR (o.timestamp = m.timestamp AND o.value > m.value)))))
AND ? IS NOT NULL
"""


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


def _create_store(db: Path, client_class: Any) -> None:
    """Create a new sqlite store aside and move it into place whole, under a file lock: MLflow's schema
    set-up takes seconds, and a process killed in the middle of it must not leave a half-built store that
    breaks every later run (nor may parallel sweep jobs each start building one)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    if db.is_file() and db.stat().st_size > 0:
        return
    with _file_lock(db.with_name(db.name + ".lock")):
        if db.is_file() and db.stat().st_size > 0:  # another process made it while we waited
            return
        for stale in db.parent.glob(f".{db.name}.creating-*"):  # left by a creator that was killed
            with contextlib.suppress(OSError):
                stale.unlink()
        aside = db.with_name(f".{db.name}.creating-{os.getpid()}")
        try:
            client_class(tracking_uri=f"sqlite:///{aside}").search_experiments(max_results=1)
            os.replace(aside, db)
        finally:
            with contextlib.suppress(OSError):
                aside.unlink()


def _store_problem(db: Path) -> str | None:
    """Why an existing sqlite store cannot be used, found without importing MLflow (None: fine, or absent)."""
    import sqlite3

    if not db.is_file() or db.stat().st_size == 0:
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                return None
            if "alembic_version" not in tables:
                return "it has tables but no schema version"
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        return f"sqlite: {exc}"
    heads = _schema_heads()
    if row is None:
        return "its schema version is missing"
    if heads and row[0] not in heads:
        return f"its schema is at version {row[0]}, this MLflow's is {', '.join(sorted(heads))}"
    return None


def _schema_heads() -> set[str]:
    """The latest schema revision(s) of the installed MLflow, read from its migration files (no import)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("mlflow")
    except (ImportError, ValueError):
        return set()
    if spec is None or not spec.submodule_search_locations:
        return set()
    folder = Path(next(iter(spec.submodule_search_locations))) / "store" / "db_migrations" / "versions"
    revisions: set[str] = set()
    parents: set[str] = set()
    pattern = re.compile(r"^(down_revision|revision)\s*=\s*(.+)$", re.MULTILINE)
    for path in folder.glob("*.py"):
        with contextlib.suppress(OSError):
            for key, value in pattern.findall(path.read_text(encoding="utf-8")):
                found = set(re.findall(r"[\"']([0-9a-f]+)[\"']", value))
                (revisions if key == "revision" else parents).update(found)
    return revisions - parents


def _damaged_store(db: Path, problem: object) -> str:
    text = str(problem).strip().splitlines()[0] if str(problem).strip() else type(problem).__name__
    return (
        f"the MLflow store {db} cannot be used ({text[:300]}): if a run was killed while creating it, move "
        f"it aside (mv {db} {db}.damaged) and rebuild it from the run directories (runs sync --all --to "
        f"mlflow); "
        f"if it is only older, upgrade it (mlflow db upgrade sqlite:///{db})"
    )


def _server_command(uri: str) -> str:
    """The command that starts a local server answering at `uri` (its own host and port)."""
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        port = 5000
    return f"mlflow server --host {parsed.hostname or '127.0.0.1'} --port {port}"


def _source_tags(run: RunInfo) -> dict[str, str]:
    """MLflow's own fields for where a run came from: program, git commit/branch/remote, user, and the
    command-line overrides (also as the `overrides` tag)."""
    src = native.source(run)
    tags = {"mlflow.source.name": native.PROGRAM, "mlflow.source.type": "LOCAL"}
    for tag, key in (
        ("mlflow.source.git.commit", "commit"),
        ("mlflow.source.git.branch", "branch"),
        ("mlflow.source.git.repoURL", "remote"),
        ("mlflow.user", "user"),
    ):
        if src.get(key):
            tags[tag] = str(src[key])
    tags["overrides"] = " ".join(native.overrides(run))[:_MAX_TAG_VALUE]
    return tags


def _sweep_tags(sweep_dir: Path) -> dict[str, str]:
    """The sweep's own fields from sweep.json (grid, fixed overrides, search space) as JSON tags."""
    from runkit.storage.jsonio import CorruptRunFileError, read_json

    try:
        record = read_json(Path(sweep_dir) / "sweep.json")
    except (OSError, CorruptRunFileError):
        return {}
    tags = {"sweep.overrides": " ".join(record.get("overrides") or [])}
    for key in ("grid", "fixed", "search_space", "sweeper", "launcher"):
        if record.get(key):
            tags[f"sweep.{key}"] = json.dumps(record[key], default=str)[:_MAX_TAG_VALUE]
    return tags


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
            self._check_server()
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
            self._check_server()
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
                f"({_server_command(self.tracking_uri)}) or set tracker.mlflow.tracking_uri=..."
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
                self._reopened = True
                self._params = dict(existing.data.params)
                experiment_id = existing.info.experiment_id
        if self.run_id is None:
            # Our run id may already have an MLflow run that run.json never learnt of (the trainer was
            # interrupted before it recorded the ids): continue that one, never make a second.
            found = self._tagged_run(client, experiment_id, run.run_id)
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

    @staticmethod
    def _tagged_run(client: Any, experiment_id: str, run_id: str) -> Any:
        """The oldest MLflow run of the experiment tagged with our run id (None: there is none)."""
        try:
            found = client.search_runs(
                [experiment_id],
                filter_string=f"tags.run_id = '{run_id}'",
                order_by=["attributes.start_time ASC"],
            )
        except Exception:  # a search that fails must not stop the run opening
            log.warning("could not look for an existing MLflow run of %s", run_id, exc_info=True)
            return None
        return found[0] if found else None

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
        self._collect_artifact(artifact, self._files)

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
                self._log_files(self._files)
            for kind, data in self._media:
                self._send_media(kind, data)
        finally:
            self.discard()

    def discard(self) -> None:
        self._metrics, self._pending_params, self._tags, self._files = [], [], [], {}
        self._rewind = None

    def _delete_after(self, step: int) -> None:
        """Delete this run's metric points after `step` (superseded by a resumed session) and set its latest
        values back: sqlite stores only, in SQL (MLflow has no API to delete a point)."""
        import sqlite3

        if not self.tracking_uri.startswith("sqlite:///"):
            log.warning(
                "MLflow at %s keeps the points the interrupted session logged after step %d next to the "
                "resumed session's (a server cannot delete a point); the run's tag resumed_from_step says "
                "from where",
                self.tracking_uri,
                step,
            )
            self._tags.append(("resumed_from_step", str(step)))
            return
        con = sqlite3.connect(self.tracking_uri[len("sqlite:///") :], timeout=60)
        try:
            with con:
                run = self.run_id
                con.execute("DELETE FROM metrics WHERE run_uuid = ? AND step > ?", (run, step))
                con.execute("DELETE FROM latest_metrics WHERE run_uuid = ? AND step > ?", (run, step))
                con.execute(_LATEST_AGAIN, (run, run))
        finally:
            con.close()
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
        experiment_id = self._experiment_id(client)
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
        for key, value in (summary or {}).items():  # each part of the summary as one JSON tag
            if value is not None:
                tags.append(RunTag(_key(key), json.dumps(value, default=str)[:_MAX_TAG_VALUE]))
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
    def _job_run(self, client: Any, our_id: str) -> str | None:
        """The MLflow run id of the job whose run id (ours) is `our_id`."""
        try:
            experiment_id = self._experiment_id(client)
            query = f"tags.run_id = '{our_id}'"
            found = client.search_runs([experiment_id], filter_string=query, max_results=1)
        except Exception:
            return None
        return str(found[0].info.run_id) if found else None

    def _send_media(self, kind: str, data: dict[str, Any]) -> None:
        """An image (MLflow's image time series), a table (a JSON table artifact the UI shows) or a
        dataset (MLflow's dataset inputs)."""
        assert self._run_dir is not None
        client, run_id = self._client, self.run_id
        if kind == "dataset":
            from mlflow.entities import Dataset, DatasetInput, InputTag

            profile = {k: data.get(k) for k in ("splits", "classes", "features", "num_classes")}
            dataset = Dataset(
                name=str(data.get("name")),
                digest=str(data.get("fingerprint")),
                source_type="code",
                source=json.dumps({"source": data.get("source")}),
                profile=json.dumps(profile, default=str),
            )
            client.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])
            return
        source = self._run_dir / str(data.get("path", ""))
        if not source.is_file():
            return
        name = str(data.get("name") or source.stem)
        if kind == "image":
            step = data.get("step")
            try:
                from PIL import Image

                with Image.open(source) as opened:
                    client.log_image(
                        run_id,
                        opened.convert("RGBA" if opened.mode in ("RGBA", "LA") else "RGB"),
                        key=_key(name),
                        step=int(step) if step is not None else self._last_step,
                        timestamp=int(float(data.get("wall") or time.time()) * 1000),
                    )
            except ImportError:  # no Pillow: the PNG as a plain artifact
                client.log_artifact(run_id, str(source), "media")
            return
        columns, rows = native.read_table(source)
        with tempfile.TemporaryDirectory(prefix="mlflow-table-") as tmp:
            table = Path(tmp) / f"{source.stem}.json"  # MLflow's table format (what log_table writes)
            table.write_text(json.dumps({"columns": columns, "data": rows}, default=str), encoding="utf-8")
            client.log_artifact(run_id, str(table), "tables")
        client.log_artifact(run_id, str(source), "media")
        logged = json.loads(client.get_run(run_id).data.tags.get("mlflow.loggedArtifacts") or "[]")
        entry = {"path": f"tables/{source.stem}.json", "type": "table"}
        if entry not in logged:
            client.set_tag(run_id, "mlflow.loggedArtifacts", json.dumps([*logged, entry]))

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
