"""Shared by the runs-CLI tests: real runs and a real sweep made once per session through `python train.py`,
damaged run directories next to them, and a CliRunner wrapper.

A test module gets the session fixture `cli_runs` with `pytest_plugins = ["cli_helpers"]`: registered once
as a plugin, it is made once per session (imported into each module, it would be made once per module).
The modules also import helpers from here before pytest loads it as a plugin, so assertion rewriting is off
for it (PYTEST_DONT_REWRITE): its asserts carry their own messages.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runkit.cli import app

from conftest import ROOT, project_env, run_dirs

TINY = ["epochs=1", "data.n_samples=256", "tracker=local"]
# Run names and tags are user input that reports must escape.
HTML_NAME = "<b>a&b</b>"
HTML_TAG = "<i>x</i>"
CLI_ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


@dataclass
class CliRuns:
    """What the session fixture made: real runs by role, the sweep, and the damaged directories."""

    runs_dir: Path
    base: Path  # default config, tag `alpha`
    html: Path  # lr=0.01, a name and a tag holding HTML
    failed: Path  # scheduler.T_max=0: fails inside the run (traceback saved); it monitors val/loss
    sweep_dir: Path  # -m lr=0.01,0.001 seed=1,2
    jobs: list[Path]
    truncated: Path  # run.json cut in half
    half_written: Path  # events.jsonl but no run.json
    bad_summary: Path  # a readable run.json, garbage summary.json
    crashed: Path  # `running` in run.json, its process long gone
    extra: dict[str, Path] = field(default_factory=dict)

    @property
    def real(self) -> list[Path]:
        return [self.base, self.html, self.failed, *self.jobs]


def record(path: Path) -> dict:
    return json.loads((path / "run.json").read_text())


def summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


def run_id(path: Path) -> str:
    return path.name.rsplit("-", 1)[-1]


def invoke(*args: str, env: dict[str, str] | None = None):
    """Run the CLI in process; stdout and stderr are kept apart (result.stdout / result.stderr)."""
    result = CliRunner().invoke(app, [str(a) for a in args], env={**CLI_ENV, **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def invoke_json(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def cli_subprocess(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`python -m <package>.cli ...` in a fresh interpreter, as a user would run it."""
    cmd = [sys.executable, "-m", "runkit.cli", *map(str, args)]
    return subprocess.run(
        cmd, cwd=cwd, env=project_env(**CLI_ENV), capture_output=True, text=True, timeout=300
    )


def launch(runs_dir: Path, *overrides: str, multirun: bool = False) -> subprocess.Popen[str]:
    """Start `python train.py [-m] ...` for real, without waiting (see finish)."""
    flag = ["-m"] if multirun else []  # the flag must come before the overrides
    cmd = [sys.executable, str(ROOT / "train.py"), *flag, f"paths.runs_dir={runs_dir}", *overrides]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(proc: subprocess.Popen[str], timeout: float = 600) -> int:
    output, _ = proc.communicate(timeout=timeout)
    proc.output = output  # type: ignore[attr-defined] - kept for a failing assertion's message
    return proc.returncode


def copy_run(src: Path, parent: Path, new_id: str, **fields) -> Path:
    """A copy of a real run directory under a new id, with run.json fields changed."""
    dest = parent / f"{src.name.rsplit('-', 1)[0]}-{new_id}"
    shutil.copytree(src, dest)
    data = record(dest)
    data.update(id=new_id, **fields)
    (dest / "run.json").write_text(json.dumps(data, indent=2))
    return dest


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="session", name="cli_runs")
def cli_runs_fixture(tmp_path_factory: pytest.TempPathFactory) -> CliRuns:
    runs_dir = tmp_path_factory.mktemp("cli") / "runs"
    # Four real training processes at once (three runs and a sweep): the machine's cores share the work.
    launched = [
        launch(runs_dir, *TINY, "name=base", "tags=[alpha]"),
        launch(runs_dir, *TINY, "lr=0.01", f"name='{HTML_NAME}'", f"tags=['{HTML_TAG}',beta]"),
        # CosineAnnealingLR with T_max=0 divides by zero at the first epoch's end: a failure inside the run.
        launch(
            runs_dir, *TINY, "name=broken", "scheduler.T_max=0", "monitor.metric=val/loss", "monitor.mode=min"
        ),
        launch(runs_dir, *TINY, "name=grid", "lr=0.01,0.001", "seed=1,2", multirun=True),
    ]
    codes = [finish(proc) for proc in launched]
    outputs = "\n".join(
        f"--- {p.args[3:]} ({c})\n{p.output[-3000:]}" for p, c in zip(launched, codes, strict=True)
    )
    assert codes[0] == codes[1] == codes[3] == 0, outputs
    assert codes[2] != 0, "the run with T_max=0 should fail\n" + outputs
    by_name = {record(p)["name"]: p for p in run_dirs(runs_dir)}
    sweep_dirs = sorted((runs_dir / "sweeps").iterdir())
    assert len(sweep_dirs) == 1, sweep_dirs
    jobs = sorted(p.parent for p in sweep_dirs[0].glob("*/run.json"))
    assert len(jobs) == 4, jobs

    base = by_name["base"]
    truncated = copy_run(base, runs_dir, "bad00001")
    text = (truncated / "run.json").read_text()
    (truncated / "run.json").write_text(text[: len(text) // 2])
    half = runs_dir / "20200101-000000-half-half0001"
    half.mkdir()
    shutil.copy2(base / "events.jsonl", half / "events.jsonl")
    bad_summary = copy_run(base, runs_dir, "bad00002", name="garbled")
    (bad_summary / "summary.json").write_text("{not json")
    crashed = copy_run(
        base, runs_dir, "dead0001", name="killed", status="running", pid=dead_pid(), end_time=None
    )
    # A run that also logged a metric named like a parameter (`lr`): a bare `lr` in a filter is ambiguous.
    data = summary_of(crashed)
    data["last"]["lr"] = 0.0005
    (crashed / "summary.json").write_text(json.dumps(data))
    return CliRuns(
        runs_dir=runs_dir,
        base=base,
        html=by_name[HTML_NAME],
        failed=by_name["broken"],
        sweep_dir=sweep_dirs[0],
        jobs=jobs,
        truncated=truncated,
        half_written=half,
        bad_summary=bad_summary,
        crashed=crashed,
    )


def git_head() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None
