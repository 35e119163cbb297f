"""The whole-run benchmark (benchmarks/bench_whole_run.py) in its quick mode: it runs, and every figure it
reports is there. A smoke test of the benchmark, not a timed test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, TEMPLATE, project_env


def test_quick_mode_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    bench = TEMPLATE / "benchmarks" / "bench_whole_run.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--quick", "--project", f"kit={ROOT}", "--project", f"twin={ROOT}"]
        + ["--json", str(out)],
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    local, tensorboard = figures["cases"]["kit:local"], figures["cases"]["kit:tensorboard"]
    assert local["cpu"] > 0 and local["wall"] > 0 and local["cpu_x_local"] == 1.0
    assert tensorboard["delivery"] is not None and tensorboard["delivery"] > 0, proc.stdout
    assert tensorboard["wait"] is not None and tensorboard["wait"] >= 0
    assert figures["yardsticks"]["tensorboard"] > 0
    assert tensorboard["delivery_x_yardstick"] is not None
    assert "targets:" in proc.stdout
    # Two projects: each one's differences to the first, repeat by repeat.
    paired = figures["paired"]["twin:tensorboard"]
    assert paired["cpu"] is not None and paired["delivery"] is not None and paired["wait"] is not None
    assert paired["delivery_x_yardstick"] is not None
    assert "paired differences to kit" in proc.stdout
