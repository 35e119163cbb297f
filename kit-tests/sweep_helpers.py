"""Helpers for the sweep tests: run a real `python train.py -m ...`, then read the sweep directory back."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT, project_env

# The smallest real sweep job: one epoch on 256 samples.
TINY = ["epochs=1", "data.n_samples=256"]


@dataclass
class Sweep:
    runs: Path
    proc: subprocess.CompletedProcess[str]

    @property
    def dir(self) -> Path:
        dirs = sorted(p.parent for p in (self.runs / "sweeps").glob("*/sweep.json"))
        assert len(dirs) == 1, f"expected one sweep under {self.runs}, found {dirs}\n{self.proc.stderr}"
        return dirs[0]

    @property
    def record(self) -> dict:
        return json.loads((self.dir / "sweep.json").read_text())

    def csv_rows(self) -> list[dict[str, str]]:
        with open(self.dir / "summary.csv", newline="") as f:
            return list(csv.DictReader(f))

    def run_dirs(self) -> list[Path]:
        """The job run directories inside the sweep directory, by job number."""
        dirs = [p.parent for p in self.dir.glob("*/run.json")]
        return sorted(dirs, key=lambda d: (run_record(d)["sweep"]["job_num"], run_record(d)["start_time"]))

    def runs_by_id(self) -> dict[str, Path]:
        return {run_record(d)["id"]: d for d in self.run_dirs()}


def multirun(
    runs: Path, *overrides: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python train.py -m paths.runs_dir=<runs> <overrides>` for real (`-m` goes before the overrides)."""
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", f"paths.runs_dir={runs}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, env=project_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py -m failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_sweep(runs: Path, *overrides: str, check: bool = True, timeout: float = 600) -> Sweep:
    """`python train.py -m <overrides>` with its runs under `runs`."""
    return Sweep(runs, multirun(runs, *overrides, check=check, timeout=timeout))


def run_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def run_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def backend_available(name: str) -> bool:
    """Backends exist only when chosen at bake time (and while being built, only once their config exists)."""
    return (ROOT / "configs" / "tracker" / f"{name}.yaml").is_file()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR: ")]
