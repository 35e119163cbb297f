"""Prune what the answers did not choose, record the template (.cruft.json), optionally `git init` and
commit, and say what to do next. Never prompts.

Inside cruft's own renders (`cruft create`/`update`/`diff`, which set `_commit`) there is no `git init`: a
.git folder in those renders is what broke `cruft update`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BACKENDS = {
    "tensorboard": "{{ cookiecutter.use_tensorboard }}" == "yes",
    "mlflow": "{{ cookiecutter.use_mlflow }}" == "yes",
    "wandb": "{{ cookiecutter.use_wandb }}" == "yes",
}
LICENSE = "{{ cookiecutter.license }}"
CI = "{{ cookiecutter.ci }}"
GIT_INIT = "{{ cookiecutter.git_init }}" == "yes"
COMMIT_MESSAGE = "Initial commit from cookiecutter-hydra-research"
AUTHOR = ("{{ cookiecutter.author_name }}", "{{ cookiecutter.author_email }}")
SLUG = "{{ cookiecutter.project_slug }}"
UNDER_CRUFT = "{{ cookiecutter.get('_commit', '') }}" != ""
TEMPLATE_RECORD = r"""{{ template_record(cookiecutter) }}"""


def backend_files(name: str) -> list[str]:
    """Every file that exists only to support one backend; removed when that backend is not chosen."""
    return [
        f"configs/tracker/{name}.yaml",
    ]


def prune(root: Path) -> None:
    # A template folder that has been used (its kit imported by the kit's tests) holds bytecode caches; the
    # kit is copied as it is, so they would come along.
    for cache in list(root.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    for name, chosen in BACKENDS.items():
        if not chosen:
            for rel in backend_files(name):
                (root / rel).unlink(missing_ok=True)
    if LICENSE == "none":
        (root / "LICENSE").unlink(missing_ok=True)
    if CI == "none":
        shutil.rmtree(root / ".github", ignore_errors=True)


def git_init(root: Path) -> None:
    if shutil.which("git") is None:
        print("WARNING: git is not installed; skipped `git init` (runs will record 'no repository')")
        return

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    run("init", "-q")
    run("checkout", "-q", "-b", "main")
    run("add", "-A")
    # Fall back to the author's answers only when no identity is configured: never override a user's own.
    probe = subprocess.run(["git", "config", "user.email"], cwd=root, capture_output=True)
    has_identity = probe.returncode == 0
    identity = [] if has_identity else ["-c", f"user.name={AUTHOR[0]}", "-c", f"user.email={AUTHOR[1]}"]
    subprocess.run(
        ["git", *identity, "commit", "-q", "--no-verify", "-m", COMMIT_MESSAGE],
        cwd=root,
        check=True,
        capture_output=True,
    )


def next_steps() -> str:
    return f"""
Made {SLUG}/. Next:
  cd {SLUG}
  python -m venv .venv && . .venv/bin/activate
  pip install torch --index-url https://download.pytorch.org/whl/cpu   # CPU torch (plain: GBs of CUDA)
  pip install -e ".[dev]"
  python train.py              # trains offline in seconds, then: runkit runs list
"""


if __name__ == "__main__":
    project = Path.cwd()
    prune(project)
    if TEMPLATE_RECORD.strip():
        (project / ".cruft.json").write_text(TEMPLATE_RECORD + "\n", encoding="utf-8")
    if UNDER_CRUFT:
        sys.exit(0)
    print(next_steps())
    if GIT_INIT:
        try:
            git_init(project)
        except subprocess.CalledProcessError as exc:
            print(f"WARNING: git init/commit failed ({exc.stderr.decode().strip()}); the project is intact")
    sys.exit(0)
