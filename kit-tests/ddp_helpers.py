"""Real multi-process runs for the DDP tests: `torchrun --nproc_per_node=2 train.py ...` on the CPU (gloo),
and the subprocesses import ddp_faults.py (a model that misbehaves on one rank on purpose)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, project_env
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
    runs_dir: Path, *overrides: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`torchrun --nproc_per_node=2 train.py ...`, for real."""
    proc = subprocess.run(
        torchrun_cmd(runs_dir, *overrides),
        cwd=ROOT,
        env=ddp_env(),
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
