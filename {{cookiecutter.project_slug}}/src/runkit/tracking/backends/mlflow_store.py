"""MLflow's stores as the adapter needs them: a new sqlite store built aside and moved into place whole (under
a file lock), a damaged or outdated store found before MLflow is imported, a server told apart from a local
store, and the superseded points of a resumed run deleted from a sqlite store."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runkit.tracking.backends.base import BackendError

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


log = logging.getLogger("runkit.tracking.backends.mlflow")  # the adapter's own name


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


def _remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def check_server(tracking_uri: str, timeout: float) -> None:
    """Raise BackendError (one line, with the command that starts a server) when it does not answer."""
    import urllib.error
    import urllib.request

    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read(64)
    except urllib.error.HTTPError:
        return  # it answered: reachable (a proxy or an auth layer may refuse /health)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BackendError(
            f"the MLflow server at {tracking_uri} is unreachable ({reason}); start it "
            f"({_server_command(tracking_uri)}) or set tracker.mlflow.tracking_uri=..."
        ) from None


def find_experiment(client: Any, name: str, artifact_location: str | None, tracking_uri: str) -> str:
    """The id of experiment `name`, created (with `artifact_location` in a local store) when missing."""
    from mlflow.exceptions import MlflowException

    for attempt in range(5):  # parallel sweep jobs may race to create the experiment (or the sqlite schema)
        try:
            experiment = client.get_experiment_by_name(name)
            if experiment is not None:
                if experiment.lifecycle_stage == "deleted":
                    raise BackendError(
                        f"the MLflow experiment {name!r} is deleted: restore it "
                        f"(mlflow experiments restore) or set tracker.mlflow.experiment=<another name>"
                    )
                return str(experiment.experiment_id)
            location = None
            if artifact_location and not _remote(tracking_uri):
                location = Path(artifact_location).resolve().as_uri()
            return str(client.create_experiment(name, artifact_location=location))
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
    raise BackendError(f"could not create the MLflow experiment {name!r}")


def tagged_run(client: Any, experiment_id: str, run_id: str) -> Any:
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


def delete_points_after(db: str, run_id: str, step: int) -> None:
    """Delete run `run_id`'s metric points after `step` from the sqlite store `db` and set its latest values
    back (MLflow has no API to delete a point)."""
    import sqlite3

    con = sqlite3.connect(db, timeout=60)
    try:
        with con:
            con.execute("DELETE FROM metrics WHERE run_uuid = ? AND step > ?", (run_id, step))
            con.execute("DELETE FROM latest_metrics WHERE run_uuid = ? AND step > ?", (run_id, step))
            con.execute(_LATEST_AGAIN, (run_id, run_id))
    finally:
        con.close()


def holds_points_after(client: Any, run_id: str, step: int) -> bool:
    """Whether run `run_id` holds a metric point after `step` (on a server, which cannot delete one: the
    points a resumed session supersedes). A sync into a server that never had the interrupted session's
    points holds none."""
    metrics = client.get_run(run_id).data.metrics
    return any(point.step > step for key in metrics for point in client.get_metric_history(run_id, key))
