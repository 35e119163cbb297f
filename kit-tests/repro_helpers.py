"""Helpers for the reproducibility tests: parallel real runs, real git repositories, reading a run back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from conftest import ROOT, project_env, read_events, run_dirs

TINY = ["data.n_samples=512", "tracker=local"]


def train_many(
    jobs: Sequence[tuple[Path, Sequence[str]]],
    parallel: int = 2,
    timeout: float = 300,
    may_fail: Sequence[int] = (),
) -> list[subprocess.CompletedProcess[str]]:
    """Run several real `python train.py` processes, `parallel` at a time; each must succeed, except the jobs
    whose index is in `may_fail`. Returns one CompletedProcess per job, in order."""
    pending = list(enumerate(jobs))
    running: list[tuple[int, subprocess.Popen[str]]] = []
    results: list[Any] = [None] * len(jobs)
    deadline = time.monotonic() + timeout
    while pending or running:
        while pending and len(running) < parallel:
            index, (runs_dir, overrides) = pending.pop(0)
            cmd = [sys.executable, str(ROOT / "train.py"), f"paths.runs_dir={runs_dir}", *overrides]
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            running.append((index, proc))
        index, proc = running.pop(0)
        stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        results[index] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        if proc.returncode != 0 and index not in may_fail:
            for _, other in running:
                other.kill()
            raise AssertionError(f"train.py {proc.args[2:]} failed ({proc.returncode}):\n{stdout}\n{stderr}")
    return results


def the_run(runs_dir: Path) -> Path:
    dirs = run_dirs(runs_dir)
    assert len(dirs) == 1, f"expected one run under {runs_dir}, found {dirs}"
    return dirs[0]


def record(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text())


def metric_history(run_dir: Path) -> dict[tuple[int, str], float]:
    """{(step, metric): value} as a reader must see it: a `resume` event with from_step S supersedes every
    value logged before it for a step after S (those steps were run again by the resumed session)."""
    history: dict[tuple[int, str], float] = {}
    for event in read_events(run_dir):
        if event["type"] == "resume":
            cut = event["data"]["from_step"]
            history = {k: v for k, v in history.items() if k[0] <= cut}
        elif event["type"] == "metrics":
            for name, value in event["data"].items():
                history[(event["step"], name)] = value
    return history


def checkpoint_state(run_dir: Path, name: str = "last.pt") -> dict[str, Any]:
    return torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=False)


def tensors_equal(a: Any, b: Any) -> bool:
    """Deep, exact (bit-for-bit) equality of nested dicts/lists of tensors and plain values."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and torch.equal(a, b)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(tensors_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder with its bytes: compare two snapshots to prove nothing was written."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# --- the real runs the reproducibility tests share ---------------------------------------------------
RUN = [*TINY, "epochs=4"]
_shared: dict[str, Any] | None = None


def shared_runs(tmp_path_factory: Any) -> dict[str, Any]:
    """Real runs made once per test session and inspected by test_repro_seed, test_repro_git and test_resume
    (a process start costs seconds; these share them). Two batches, two processes at a time:

    1. full: seed=7, 4 epochs. twin: the same, with paths.root a dirty repository whose remote URL holds a
       token (the git capture's subject). split: as full, stopped after epoch 2 (as a SIGTERM at that epoch
       boundary would end it). drawn: seed=null. refused_clean: git.require_clean=true on the dirty repo.
    2. split resumed by id; replay: seed=<the seed drawn>; warm: init_from=full, trained with optimizer.lr=0;
       refused_resume: full resumed with a model-changing override.
    """
    global _shared
    if _shared is not None:
        return _shared
    base = Path(tmp_path_factory.mktemp("repro"))
    repo = make_repo(base / "repo")
    git(repo, "remote", "add", "origin", f"https://ci:{TOKEN}@github.com/org/repo.git")
    make_dirty(repo)
    d = {name: base / name for name in ("full", "twin", "split", "drawn", "replay", "warm", "clean")}
    first = train_many(
        [
            (d["full"], [*RUN, "seed=7"]),
            (d["split"], [*RUN, "seed=7", "stop_after_epochs=2"]),
            (d["twin"], [*RUN, "seed=7", f"paths.root={repo}"]),
            (d["drawn"], [*RUN, "seed=null"]),
            (d["clean"], [*TINY, "epochs=1", f"paths.root={repo}", "git.require_clean=true"]),
        ],
        may_fail=[4],
    )
    runs: dict[str, Any] = {name: the_run(d[name]) for name in ("full", "twin", "split", "drawn")}
    runs.update(repo=repo, refused_clean=first[4], clean_runs_dir=d["clean"])
    runs["split_before"] = {"record": record(runs["split"]), "events": read_events(runs["split"])}
    runs["full_before"] = snapshot(runs["full"])
    second = train_many(
        [
            (
                d["split"],
                [f"resume={runs['split_before']['record']['id']}"],
            ),  # nothing else: its config returns
            (d["replay"], [*RUN, f"seed={record(runs['drawn'])['seed']}"]),
            (d["warm"], [*TINY, f"init_from={runs['full']}", "epochs=1", "optimizer.lr=0.0"]),
            (d["full"], [f"resume={runs['full']}", "model.hidden_sizes=[8]"]),
        ],
        may_fail=[3],
    )
    assert the_run(d["split"]) == runs["split"]
    runs.update(replay=the_run(d["replay"]), warm=the_run(d["warm"]), refused_resume=second[3])
    _shared = runs
    return runs


# --- real git repositories ------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={
            **project_env(),
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )
    return proc.stdout.strip()


def make_repo(path: Path, commit: bool = True) -> Path:
    """A real repository with two tracked files (and, unless commit=False, one commit on branch `main`)."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    (path / "model.py").write_text("WIDTH = 64\n")
    (path / "README.md").write_text("# project\n")
    if commit:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "first")
    return path


TOKEN = "ghp_s3cr3tT0ken"


def make_dirty(repo: Path) -> None:
    """One staged change, one unstaged change, one untracked file and an untracked folder."""
    (repo / "model.py").write_text("WIDTH = 128\n")  # unstaged
    (repo / "README.md").write_text("# project\n\nstaged line\n")
    git(repo, "add", "README.md")  # staged
    (repo / "notes.txt").write_text("scratch\n")
    (repo / "data").mkdir()
    (repo / "data" / "a.csv").write_text("1\n")
