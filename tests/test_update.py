"""Updating a project from the template: a plain `cookiecutter` bake records the template and its commit
(.cruft.json, tracked in the first commit), `cruft diff` is clean, and `cruft update` brings a real upstream
change into the project (no .git noise from the post-generation hook in cruft's own renders)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEMPLATE

CRUFT = Path(sys.executable).with_name("cruft")
COOKIECUTTER = Path(sys.executable).with_name("cookiecutter")


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def template_repo(dest: Path) -> Path:
    """This template as its own git repository (what a user would clone), with one commit."""
    files = git(TEMPLATE, "ls-files", "-co", "--exclude-standard").splitlines()
    for rel in files:
        src = TEMPLATE / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "-c", "user.name=t", "-c", "user.email=t@e.x", "commit", "-q", "-m", "template v1")
    return dest


@pytest.fixture(scope="module")
def upstream_and_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("update")
    upstream = template_repo(root / "template")
    proc = subprocess.run(
        [str(COOKIECUTTER), str(upstream), "--no-input", "-o", str(root / "projects")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return upstream, root / "projects" / "research-project"


def test_a_plain_bake_records_the_template_and_its_commit(upstream_and_project):
    upstream, project = upstream_and_project
    record = json.loads((project / ".cruft.json").read_text())
    assert record["template"] == str(upstream.resolve())
    assert record["commit"] == git(upstream, "rev-parse", "HEAD")
    assert record["context"]["cookiecutter"]["package_name"] == "research_project"
    assert git(project, "ls-files", ".cruft.json") == ".cruft.json"  # in the first commit, not untracked
    assert git(project, "status", "--porcelain") == ""


def test_cruft_diff_is_clean_and_update_brings_an_upstream_change(upstream_and_project):
    upstream, project = upstream_and_project
    diff = subprocess.run([str(CRUFT), "diff", "--exit-code"], cwd=project, capture_output=True, text=True)
    assert diff.returncode == 0, diff.stdout + diff.stderr

    # Upstream: a kit fix and a config comment change, committed.
    kit_init = upstream / "{{cookiecutter.project_slug}}" / "src" / "runkit" / "__init__.py"
    kit_init.write_text(kit_init.read_text() + "\n# upstream fix\n")
    config = upstream / "{{cookiecutter.project_slug}}" / "configs" / "git" / "default.yaml"
    config.write_text(config.read_text().replace("refuse to start", "refuse (upstream) to start"))
    git(upstream, "-c", "user.name=t", "-c", "user.email=t@e.x", "commit", "-qam", "template v2")

    proc = subprocess.run(
        [str(CRUFT), "update", "--skip-apply-ask"], cwd=project, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "# upstream fix" in (project / "src" / "runkit" / "__init__.py").read_text()
    assert "refuse (upstream) to start" in (project / "configs" / "git" / "default.yaml").read_text()
    record = json.loads((project / ".cruft.json").read_text())
    assert record["commit"] == git(upstream, "rev-parse", "HEAD")
    changed = {line.split(maxsplit=1)[1] for line in git(project, "status", "--porcelain").splitlines()}
    assert changed == {".cruft.json", "src/runkit/__init__.py", "configs/git/default.yaml"}, changed
