"""One end-to-end run: `python train.py` trains the science code through the kit, leaving a completed run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, project_env

pytestmark = pytest.mark.slow


def test_the_default_run_completes_and_is_recorded(default_run):
    record = json.loads((default_run / "run.json").read_text())
    assert record["status"] == "completed"
    summary = json.loads((default_run / "summary.json").read_text())
    assert 0 < summary["best"]["value"] <= 1
    for name in ("config.yaml", "events.jsonl", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (default_run / name).is_file(), name


def test_the_runs_command_lists_the_run(default_run):
    cmd = [sys.executable, "-m", "runkit.cli", "runs", "list", "--runs-dir", str(default_run.parent)]
    proc = subprocess.run(cmd, cwd=ROOT, env=project_env(COLUMNS="200"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert default_run.name.rsplit("-", 1)[-1] in proc.stdout
