"""Bake the template over the option matrix: file set, rendering, lint, and each project's own test suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEMPLATE, bake
from matrix import BACKENDS, combo_id, combos

TEMPLATE_DIR = TEMPLATE / "{{cookiecutter.project_slug}}"
COMBOS = combos()


def template_files(package: str) -> set[str]:
    """Every file of the template folder, with the package placeholder rendered."""
    files = set()
    for path in TEMPLATE_DIR.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(TEMPLATE_DIR).as_posix()
            files.add(rel.replace("{{cookiecutter.package_name}}", package))
    return files


def backend_only_files(name: str, package: str) -> set[str]:
    return {
        f"configs/tracker/{name}.yaml",
    }


def package_of(answers: dict[str, str]) -> str:
    return answers["project_name"].lower().replace(" ", "_")


def expected_files(answers: dict[str, str]) -> set[str]:
    package = package_of(answers)
    files = template_files(package) | {".cruft.json"}  # written by the post-generation hook
    for name in BACKENDS:
        if answers[f"use_{name}"] == "no":
            files -= backend_only_files(name, package)
    if answers["license"] == "none":
        files.discard("LICENSE")
    if answers["ci"] == "none":
        files = {f for f in files if not f.startswith(".github/")}
    return files


def baked_files(project: Path) -> set[str]:
    return {
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


@pytest.fixture(scope="module", params=COMBOS, ids=[combo_id(c) for c in COMBOS])
def baked(request, tmp_path_factory) -> tuple[dict[str, str], Path]:
    answers = request.param
    return answers, bake(tmp_path_factory.mktemp("bake"), **answers)


def test_exact_file_set(baked):
    answers, project = baked
    files = baked_files(project)
    assert files == expected_files(answers)
    for name in BACKENDS:
        present = backend_only_files(name, package_of(answers)) <= files
        assert present == (answers[f"use_{name}"] == "yes"), name


def test_nothing_left_unrendered(baked):
    _, project = baked
    for rel in baked_files(project):
        text = (project / rel).read_text(encoding="utf-8")
        # GitHub Actions expressions (`${{ ... }}`) are meant to stay.
        stripped = text.replace("${{", "")
        for marker in ("{{", "{%", "{#", "cookiecutter."):
            assert marker not in stripped, f"{rel} still holds {marker!r}"


def test_dependencies_follow_the_backends(baked):
    answers, project = baked
    pyproject = (project / "pyproject.toml").read_text()
    for name in BACKENDS:
        assert (f'{name} = ["' in pyproject) == (answers[f"use_{name}"] == "yes"), name
    assert f'requires-python = ">={answers["python_version"]}"' in pyproject
    default = (project / "configs/train.yaml").read_text()
    assert f"  - tracker: {answers['default_tracker']}\n" in default


# The kit (and its documentation) is the same in every project, so that a template update can move it as a
# whole: it keeps every backend adapter (inert without its config file and its extra) and documents them all.
# Everything else a bake holds names only the backends that were chosen.
SAME_IN_EVERY_PROJECT = ("src/runkit/", "src/hydra_plugins/", "docs/", ".cruft.json")


def test_no_text_names_a_backend_that_was_not_chosen(baked):
    answers, project = baked
    spellings = {"tensorboard": ("tensorboard",), "mlflow": ("mlflow", "mlruns"), "wandb": ("wandb", "w&b")}
    for name in BACKENDS:
        if answers[f"use_{name}"] == "yes":
            continue
        for rel in sorted(baked_files(project)):
            if rel.startswith(SAME_IN_EVERY_PROJECT):
                continue
            text = (project / rel).read_text(encoding="utf-8").lower()
            hits = [s for s in spellings[name] if s in text.replace(f"use_{name}", "")]
            assert not hits, f"{rel} names {name}, which this project does not have"


def test_ci_workflow_uses_the_chosen_python(baked):
    answers, project = baked
    workflow = project / ".github" / "workflows" / "ci.yaml"
    if answers["ci"] == "none":
        assert not workflow.exists()
        return
    assert f'python-version: "{answers["python_version"]}"' in workflow.read_text()


def test_the_kit_is_copied_as_it_is(baked):
    _, project = baked
    kit = TEMPLATE_DIR / "src" / "runkit"
    for path in kit.rglob("*.py"):
        rel = path.relative_to(TEMPLATE_DIR)
        assert (project / rel).read_bytes() == path.read_bytes(), rel


def test_git_init_makes_a_clean_first_commit(baked):
    answers, project = baked
    if answers["git_init"] == "no":
        assert not (project / ".git").exists()
        return
    log = subprocess.run(["git", "log", "--oneline"], cwd=project, capture_output=True, text=True, check=True)
    assert len(log.stdout.splitlines()) == 1
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True)
    assert status.stdout == ""
    tracked = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True, check=True)
    assert set(tracked.stdout.splitlines()) == baked_files(project)  # nothing of the bake is git-ignored


def test_ruff_clean(baked):
    _, project = baked
    ruff = Path(sys.executable).with_name("ruff")
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run([str(ruff), *args], cwd=project, capture_output=True, text=True)
        assert proc.returncode == 0, f"ruff {' '.join(args)}:\n{proc.stdout}{proc.stderr}"


def test_generated_project_test_suite_passes(baked):
    answers, project = baked
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
