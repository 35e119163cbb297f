"""The kit's tests. Shared fixtures: real `python train.py` runs in subprocesses, each with its own
runs directory, driven in an example project baked from this template."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

# A shell starts background jobs (`make test &`, nohup) with SIGINT ignored, and children inherit that: the
# runs these tests interrupt with Ctrl-C would never see it. Handling SIGINT here resets it to the default in
# every child this process starts.
signal.signal(signal.SIGINT, signal.default_int_handler)
# The kit's source is the template's own: no bytecode caches in it, neither from this process nor from the
# runs it starts (a bake copies the kit folder as it is).
sys.dont_write_bytecode = True

TEMPLATE = Path(__file__).resolve().parents[1]
KIT_SRC = TEMPLATE / "{{cookiecutter.project_slug}}" / "src"


def _bake_example_project() -> Path:
    """The default project, baked once per test process: the researcher's side (train.py, configs, the
    example science package) that the kit's end-to-end tests drive. Its copy of the kit is replaced by a link
    to the template's own, so every test runs the kit's source as it is in this repository."""
    from cookiecutter.main import cookiecutter

    out = Path(tempfile.mkdtemp(prefix="kit-project-"))
    atexit.register(shutil.rmtree, out, True)
    project = Path(
        cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), extra_context={"git_init": "no"})
    )
    for name in ("runkit", "hydra_plugins"):
        shutil.rmtree(project / "src" / name)
        (project / "src" / name).symlink_to(KIT_SRC / name, target_is_directory=True)
    return project


# The example project: `python train.py` and the configs live there; the kit comes from this repository.
ROOT = _bake_example_project()
sys.path.insert(0, str(ROOT / "src"))  # the example science package (research_project)
# The quick settings every end-to-end run uses unless a test says otherwise.
FAST = ["epochs=2", "data.n_samples=512"]


def project_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: src/ importable without installing, W&B offline, no colour codes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(
        {
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "NO_COLOR": "1",
            "TERM": "dumb",
            "COLUMNS": "200",
            "HYDRA_FULL_ERROR": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(extra)
    return env


def train(
    runs_dir: Path,
    *overrides: str,
    check: bool = True,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python train.py` for real, writing its runs under runs_dir."""
    # Hydra's flags (-m, --multirun) must come before the first override.
    flags = [o for o in overrides if o.startswith("-")]
    rest = [o for o in overrides if not o.startswith("-")]
    cmd = [sys.executable, str(ROOT / "train.py"), *flags, f"paths.runs_dir={runs_dir}", *rest]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env or project_env(), capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"train.py failed ({proc.returncode}):\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr}"
        )
    return proc


def run_dirs(runs_dir: Path) -> list[Path]:
    """Run directories directly under runs_dir (sweeps are not included), oldest first."""
    return sorted(p.parent for p in Path(runs_dir).glob("*/run.json"))


def only_run(runs_dir: Path) -> Path:
    dirs = run_dirs(runs_dir)
    assert len(dirs) == 1, f"expected one run under {runs_dir}, found {dirs}"
    return dirs[0]


def read_events(run_dir: Path) -> list[dict]:
    """Every event of a run, decoded like the shipper reads them (metrics lines carry packed values)."""
    from runkit.storage.events import read_events as read

    return [event for _, event in read(Path(run_dir) / "events.jsonl")]


@pytest.fixture
def run_train() -> Callable[..., subprocess.CompletedProcess[str]]:
    return train


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real default run (local tracker), shared by the tests that only inspect what it left behind."""
    runs = tmp_path_factory.mktemp("default") / "runs"
    train(runs, *FAST, "tracker=local")
    return only_run(runs)
