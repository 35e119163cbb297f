"""The issue's "done when", as a user lives it: bake with --no-input into an empty folder, install the
project, train, and find a completed run directory; the console script answers too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import bake


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The default project, pip-installed (editable, with its dev extra) into a fresh virtual environment.

    The environment sees this repository's pinned packages through a .pth file, so the install resolves
    every dependency offline and adds only the project itself; pip and setuptools come from there as well.
    """
    root = tmp_path_factory.mktemp("install")
    project = bake(root / "projects")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "shared-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-build-isolation", "--no-index", "-e", ".[dev]"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return project, venv


def test_installed_project_trains_and_leaves_a_completed_run(installed):
    project, venv = installed
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": ""}
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "train.py", "epochs=2"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "completed" in proc.stdout + proc.stderr  # the summary table's title
    runs = [p.parent for p in (project / "runs").glob("*/run.json")]
    assert len(runs) == 1
    record = json.loads((runs[0] / "run.json").read_text())
    assert record["status"] == "completed"
    assert (runs[0] / "checkpoints" / "best.pt").is_file()


def test_console_script_is_installed_and_answers(installed):
    project, venv = installed
    script = venv / "bin" / project.name
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "runs" in proc.stdout
