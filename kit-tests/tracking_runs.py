"""Helpers for the tracking tests: which backends this project has, real runs shared by many tests (made once
per test session, whatever module asks first), runs made in-process through the tracker API, an MLflow
server, and waiting for the shipper."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import FAST, ROOT, only_run, project_env, read_events, train

ALL_BACKENDS = ("tensorboard", "mlflow", "wandb")


def has_backend(name: str) -> bool:
    return (ROOT / "configs" / "tracker" / f"{name}.yaml").exists()


BACKENDS = [name for name in ALL_BACKENDS if has_backend(name)]


def needs(*names: str) -> pytest.MarkDecorator:
    missing = [n for n in names if not has_backend(n)]
    return pytest.mark.skipif(bool(missing), reason=f"backend(s) {', '.join(missing)} not in this project")


@functools.cache
def session_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="tracking-tests-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def mlflow_uri() -> str:
    """One sqlite store for the whole test session (created once: MLflow's schema set-up takes seconds)."""
    return f"sqlite:///{session_dir() / 'mlruns.db'}"


def tracker_overrides(names: list[str] | tuple[str, ...]) -> list[str]:
    out = [f"tracker=[{','.join(names)}]"] if names else ["tracker=local"]
    if "mlflow" in names:
        out += [
            f"tracker.mlflow.tracking_uri={mlflow_uri()}",
            f"tracker.mlflow.artifact_location={session_dir()}/art",
        ]
    return out


@functools.cache
def fanout_run() -> Path:
    """One real `python train.py` run with every backend of this project at once (shared by the backend
    tests, so each backend is checked on the very same run)."""
    runs = session_dir() / "fanout"
    train(runs, *FAST, *tracker_overrides(BACKENDS), "tags=[fan,out]", "name=fanout")
    return only_run(runs)


def record(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "run.json").read_text())


def events(run_dir: Path) -> list[dict[str, Any]]:
    return read_events(Path(run_dir))


# --- runs made in-process through the tracker API ----------------------------------------------------------
def compose(runs_dir: Path, *overrides: str) -> Any:
    """The project's real config (as `python train.py` composes it), outside a Hydra app."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from runkit.sweeps.resolvers import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return hydra_compose(
            "train",
            overrides=[f"paths.root={ROOT}", f"paths.runs_dir={runs_dir}", "tracker=local", *overrides],
        )


def api_run(runs_dir: Path, steps: int = 20, status: str = "completed") -> Path:
    """A run made through the tracker API with every kind of record: metrics (one NaN), tags, a figure, a
    text, a file, checkpoints with aliases; only the run directory is written (tracker=local)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from runkit.tracking import start_run

    tracker = start_run(compose(runs_dir, "name=api"))
    for step in range(1, steps + 1):
        tracker.log_metrics({"train/loss": 1.0 / step, "lr": 0.1 * 0.9**step}, step=step)
    tracker.log_metrics({"val/acc": float("nan")}, step=steps)
    tracker.set_tags({"team": "vision"})
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 2, 3])
    tracker.log_figure(fig, "curve", step=steps)
    plt.close(fig)
    tracker.log_text("hello from the tracker", "notes")
    extra = Path(runs_dir) / "extra.csv"
    extra.write_text("a,b\n1,2\n")
    tracker.log_artifact(extra)
    tracker.run_dir.checkpoints.mkdir(exist_ok=True)
    for name in ("last.pt", "best.pt"):
        (tracker.run_dir.checkpoints / name).write_bytes(name.encode() * 10)
    tracker.log_checkpoint(tracker.run_dir.checkpoints / "best.pt", aliases=["best"], step=steps)
    tracker.log_checkpoint(tracker.run_dir.checkpoints / "last.pt", aliases=["last"], step=steps)
    tracker.finish(status)
    return tracker.path


# --- processes ---------------------------------------------------------------------------------------------
def start_train(
    runs_dir: Path, *overrides: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`python train.py` in the background, in its own process group (like a job started from a terminal)."""
    cmd = [sys.executable, str(ROOT / "train.py"), f"paths.runs_dir={runs_dir}", *overrides]
    out = open(log, "w")  # noqa: SIM115 - closed with the process
    # One torch thread: several runs side by side on a small machine must not fight over cores.
    env = env or project_env(OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    proc.log_file = out  # type: ignore[attr-defined]
    return proc


def wait_for(predicate: Callable[[], Any], timeout: float = 120, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (FileNotFoundError, json.JSONDecodeError, ValueError, KeyError, IndexError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def first_run(runs_dir: Path) -> Path | None:
    """The run directory under runs_dir once it exists (None before)."""
    found = sorted(Path(runs_dir).glob("*/run.json"))
    return found[0].parent if found else None


def metric_lines(run_dir: Path) -> int:
    path = Path(run_dir) / "events.jsonl"
    return path.read_bytes().count(b'"type":"metrics"') if path.exists() else 0


def shipper_done(run_dir: Path, names: list[str] | tuple[str, ...], status: str) -> bool:
    """Every backend's cursor says its run was closed with `status`."""
    for name in names:
        cursor = Path(run_dir) / "shipper" / f"{name}.json"
        if not cursor.exists() or json.loads(cursor.read_text()).get("closed") != status:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(
    root: Path, port: int, store_uri: str, *options: str, timeout: float = 120
) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:`port` in its own session (stopped by its process group), logging to a
    file under `root`; returns once its /health answers."""
    import urllib.request

    mlflow_cli = Path(sys.executable).with_name("mlflow")
    cmd = [
        str(mlflow_cli) if mlflow_cli.exists() else "mlflow", "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", store_uri, *options,
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(Path(root) / f"mlflow-server-{int(time.time() * 1000)}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow server exited ({proc.returncode}); see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_for(up, timeout, "the MLflow server")
    return proc


class MlflowServer:
    """`mlflow server` on 127.0.0.1, in its own process group (stopped with all its workers)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120, seed_db: str | None = None) -> MlflowServer:
        """Start the server; `seed_db`: a sqlite URI whose (already migrated) database it starts from, which
        saves the many seconds MLflow takes to create its schema."""
        db = self.root / "server.db"
        if seed_db and not db.exists():
            from mlflow.tracking import MlflowClient

            MlflowClient(tracking_uri=seed_db).search_experiments()  # make sure the schema exists
            shutil.copy(seed_db[len("sqlite:///") :], db)

        self.proc = start_mlflow_server(
            self.root, self.port, f"sqlite:///{db}",
            "--artifacts-destination", str(self.root / "server-artifacts"), timeout=timeout,
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
