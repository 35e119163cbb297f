"""Shared by the fault-injection tests (test_faults_*.py): killing a run's whole process family, the real
`runs` command line in a subprocess, and reading every backend's own storage back for one run."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from backend_readers import mlflow_run, mlflow_runs_tagged, steps_by_metric, tb_scalars, wandb_run
from conftest import ROOT, project_env
from tracking_runs import events, record

# A run long enough to be killed mid-way on a slow machine (a few hundred steps a second at most).
LONG = ["epochs=400", "batch_size=16", "data.n_samples=512", "tracking.poll_interval=0.1"]


def children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def shipper_pid(trainer_pid: int) -> int | None:
    """The trainer's shipper process (python -m runkit.tracking.shipper), if it has one."""
    for pid in children(trainer_pid):
        with contextlib.suppress(OSError):
            if b"runkit.tracking.shipper" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


def kill_family(trainer_pid: int) -> None:
    """SIGKILL the trainer's process group and its shipper's (its own session), W&B's helper process with
    it: what a machine that loses power, or an OOM killer taking a cgroup, does."""
    shipper = shipper_pid(trainer_pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(trainer_pid, signal.SIGKILL)
    if shipper is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shipper, signal.SIGKILL)


def runs_cli(
    *args: str, check: bool = True, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m runkit.cli runs ...` for real, in the example project (`env`: instead of project_env())."""
    proc = subprocess.run(
        [sys.executable, "-m", "runkit.cli", "runs", *args],
        cwd=ROOT,
        env=env or project_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"runs {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def every_file_text(root: Path) -> dict[Path, bytes]:
    """Every file under `root` (bytes), for secret searches."""
    return {p: p.read_bytes() for p in Path(root).rglob("*") if p.is_file()}


def same_points(got: list[Any], want: list[Any], what: str, float32: bool = False) -> None:
    """Each step once, in order, with its value (TensorBoard stores float32)."""
    steps, want_steps = [s for s, _ in got], [s for s, _ in want]
    if steps != want_steps:
        dupes = len(steps) - len(set(steps))
        missing = sorted(set(want_steps) - set(steps))
        raise AssertionError(
            f"{what}: {len(steps)} points ({dupes} repeated) for {len(want_steps)} steps; "
            f"missing {missing[:10]}{'...' if len(missing) > 10 else ''}"
        )
    tolerance = 1e-6 if float32 else 0.0
    for (step, value), (_, expected) in zip(got, want, strict=True):
        if math.isnan(expected) and math.isnan(value):  # a NaN logged is a NaN held
            continue
        if value != expected and not math.isclose(value, expected, rel_tol=tolerance, abs_tol=tolerance):
            raise AssertionError(f"{what}: step {step} holds {value}, the log {expected}")


def backends_hold_the_log(run_dir: Path, names: list[str], status: str) -> dict[str, Any]:
    """Assert every chosen backend holds every metric of events.jsonl once, at its step, with the final
    status; returns what was read (for further checks)."""
    logged = steps_by_metric(events(run_dir))
    rec = record(run_dir)
    assert rec["status"] == status, rec
    out: dict[str, Any] = {}
    if "tensorboard" in names:
        scalars = tb_scalars(run_dir / "tensorboard")
        for key, points in logged.items():
            same_points(scalars.get(key) or [], points, f"TensorBoard {key}", float32=True)
        out["tensorboard"] = scalars
    if "mlflow" in names:
        ids = rec["backends"]["mlflow"]
        stored = mlflow_run(ids["tracking_uri"], ids["run_id"])
        # Not from this log: system/* (sampled into system.jsonl) and best/* (the best-so-far series).
        assert {k for k in stored["metrics"] if not k.startswith(("system/", "best/"))} == set(logged)
        for key, points in logged.items():
            same_points(stored["metrics"][key], points, f"MLflow {key}")
        assert stored["tags"]["run_status"] == status and stored["status"] != "RUNNING"
        assert len(mlflow_runs_tagged(ids["tracking_uri"], rec["id"])) == 1
        out["mlflow"] = stored
    if "wandb" in names:
        stored = wandb_run(run_dir)
        for key, points in logged.items():
            series = [(row["global_step"], row[key]) for row in stored["history"] if key in row]
            same_points(series, points, f"W&B {key}")
        assert stored["summary"]["run_status"] == status and stored["exit_codes"]
        out["wandb"] = stored
    return out
