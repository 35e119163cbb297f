"""Real multi-process runs for the DDP tests: `torchrun --nproc_per_node=2 train.py ...` on the CPU (gloo),
and the subprocesses import ddp_faults.py (a model that misbehaves on one rank on purpose)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, project_env, read_events
from tracking_runs import free_port

HERE = Path(__file__).resolve().parent
FAULTY = "model._target_=ddp_faults.FaultyMLP"  # the model of ddp_faults.py


def torchrun_cmd(runs_dir: Path, *overrides: str, nproc: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        f"--master_port={free_port()}",
        str(ROOT / "train.py"),
        f"paths.runs_dir={runs_dir}",
        *overrides,
    ]


def ddp_env() -> dict[str, str]:
    env = project_env(OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(HERE)])
    return env


def torchrun(
    runs_dir: Path,
    *overrides: str,
    check: bool = True,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`torchrun --nproc_per_node=2 train.py ...`, for real (`env`: added to the workers' environment)."""
    proc = subprocess.run(
        torchrun_cmd(runs_dir, *overrides),
        cwd=ROOT,
        env={**ddp_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"torchrun failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def start_torchrun(runs_dir: Path, *overrides: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        torchrun_cmd(runs_dir, *overrides),
        cwd=ROOT,
        env=ddp_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def history(run_dir: Path, key: str) -> list[tuple[int, float]]:
    """(step, value) of one metric as an uninterrupted run would have logged it (resume rule applied)."""
    out: dict[int, float] = {}
    for event in read_events(run_dir):
        if event["type"] == "resume":
            out = {s: v for s, v in out.items() if s <= event["data"]["from_step"]}
        elif event["type"] == "metrics" and key in event["data"]:
            out[event["step"]] = event["data"][key]
    return sorted(out.items())
