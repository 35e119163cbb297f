"""Shared helpers for this project's tests: a real `python train.py` in a subprocess, with its own runs dir.

The kit (src/runkit) is tested in the template repository it came from; the tests here cover the science
code (data, models, configs) and one end-to-end run through the kit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# A shell starts background jobs (`make test &`, nohup) with SIGINT ignored, and children inherit that: the
# runs these tests interrupt with Ctrl-C would never see it. Handling SIGINT here resets it to the default in
# every child this process starts.
signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
# The quick settings every end-to-end run uses unless a test says otherwise.
FAST = ["epochs=2", "data.n_samples=512"]


def project_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: src/ importable without installing, offline, no colour codes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update({"NO_COLOR": "1", "TERM": "dumb"})
{%- if cookiecutter.use_wandb == "yes" %}
    env.update({"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
{%- endif %}
    env.update(extra)
    return env


def train(runs_dir: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `python train.py` for real, writing its runs under runs_dir."""
    cmd = [sys.executable, str(ROOT / "train.py"), f"paths.runs_dir={runs_dir}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, env=project_env(), capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run with the project's default tracker, shared by the tests that inspect what it left."""
    runs = tmp_path_factory.mktemp("default") / "runs"
    train(runs, *FAST)
    dirs = sorted(p.parent for p in runs.glob("*/run.json"))
    assert len(dirs) == 1, dirs
    return dirs[0]
