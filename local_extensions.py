"""Answer checks, run in-process by cookiecutter as the answers are given (`_extensions`).

Each check runs right after the question it checks (a `__check_*` entry in cookiecutter.json), so a bad
answer is refused at once, with one line and no traceback, before anything is written. A pre-generation hook
could only refuse after every question, and cookiecutter prints its own traceback after a failed hook.
The default tracker's default is computed from the backends chosen, so it is always valid.
"""

from __future__ import annotations

import json
import keyword
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

BACKENDS = ("tensorboard", "mlflow", "wandb")
# Import names a generated project depends on or that would confuse tooling: a package with one of these
# names would shadow the real one (or be shadowed by it) the moment `train.py` imports it.
RESERVED = {
    *("hydra", "omegaconf", "torch", "torchvision", "numpy", "rich", "typer", "click", "sklearn", "scipy"),
    *("matplotlib", "mlflow", "wandb", "tensorboard", "tensorboardx", "optuna", "joblib", "submitit", "yaml"),
    *("pytest", "test", "tests", "src", "configs", "train", "setuptools", "pip", "pandas", "git", "runs"),
    *("benchmarks", "hydra_plugins", "cookiecutter", "runkit", "docs", "psutil", "pynvml"),
}
SLUG = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")


def names_problem(slug: str, pkg: str) -> str | None:
    if not SLUG.match(slug):
        return (
            f"project_slug {slug!r} is not a valid folder/distribution name: use lower-case letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    if not pkg.isidentifier() or not pkg.isascii():
        return f"package_name {pkg!r} is not a Python identifier: use letters, digits and '_' (my_project)"
    if keyword.iskeyword(pkg) or keyword.issoftkeyword(pkg):
        return f"package_name {pkg!r} is a Python keyword"
    if pkg != pkg.lower():
        return f"package_name {pkg!r} must be lower case (PEP 8)"
    if pkg in sys.stdlib_module_names:
        return f"package_name {pkg!r} shadows the standard library module of the same name"
    if pkg in RESERVED:
        return f"package_name {pkg!r} shadows a dependency or a project folder; choose another name"
    return None


def yes_no_problem(answers: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if answers[key] not in ("yes", "no"):
            return f"{key} must be 'yes' or 'no', not {answers[key]!r}"
    return None


def default_tracker(answers: dict[str, Any]) -> str:
    """The first backend included, or `local`: a default that is always a valid answer."""
    return next((name for name in BACKENDS if answers.get(f"use_{name}") == "yes"), "local")


def tracker_problem(answers: dict[str, Any]) -> str | None:
    chosen = answers["default_tracker"]
    valid = ["local", *(name for name in BACKENDS if answers.get(f"use_{name}") == "yes")]
    if chosen not in valid:
        return f"default_tracker {chosen!r} is not an included backend: choose one of {', '.join(valid)}"
    return None


def email_problem(email: str) -> str | None:
    return None if "@" in email else f"author_email {email!r} is not an e-mail address"


def refuse(problem: str | None) -> str:
    """Stop cookiecutter with one line when there is a problem (SystemExit: no traceback, nothing written)."""
    if problem:
        print(f"ERROR: {problem}", file=sys.stderr)
        raise SystemExit(1)
    return ""


def template_record(answers: dict[str, Any]) -> str:
    """.cruft.json for a plain `cookiecutter` bake: the template, its commit and the answers, so that
    `cruft update` / `cruft diff` work on the project as if `cruft create` had made it. Empty inside cruft's
    own renders (cruft sets `_commit`, and writes .cruft.json itself)."""
    if "_commit" in answers:
        return ""
    here = Path(__file__).resolve().parent
    given = str(answers.get("_template", ""))
    remote = "://" in given or given.startswith(("git@", "gh:", "gl:", "bb:"))
    template = given if remote else str(here)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True)
    commit = head.stdout.strip() if head.returncode == 0 else None
    context = {
        key: value
        for key, value in answers.items()
        if not key.startswith("__") and key not in ("_output_dir", "_repo_dir")
    }
    context.update(_template=template, _commit=commit)
    record = {
        "template": template,
        "commit": commit,
        "checkout": answers.get("_checkout"),
        "context": {"cookiecutter": context},
        "directory": None,
    }
    return json.dumps(record, indent=2)


class AnswerChecks(Extension):
    """Makes the checks callable from cookiecutter.json's `__check_*` entries."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals.update(
            check_names=lambda slug, pkg: refuse(names_problem(slug, pkg)),
            check_email=lambda email: refuse(email_problem(email)),
            check_yes_no=lambda answers, *keys: refuse(yes_no_problem(dict(answers), *keys)),
            check_tracker=lambda answers: refuse(tracker_problem(dict(answers))),
            default_tracker=lambda answers: default_tracker(dict(answers)),
            template_record=lambda answers: template_record(dict(answers)),
        )
