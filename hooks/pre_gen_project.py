"""Reject a bad cookiecutter answer with one clear line, before any file is written.

Cookiecutter renders this file with Jinja, so the answers arrive as literals below.
"""

from __future__ import annotations

import keyword
import re
import sys

ANSWERS = {
    "project_slug": "{{ cookiecutter.project_slug }}",
    "package_name": "{{ cookiecutter.package_name }}",
    "use_tensorboard": "{{ cookiecutter.use_tensorboard }}",
    "use_mlflow": "{{ cookiecutter.use_mlflow }}",
    "use_wandb": "{{ cookiecutter.use_wandb }}",
    "default_tracker": "{{ cookiecutter.default_tracker }}",
    "git_init": "{{ cookiecutter.git_init }}",
    "author_email": "{{ cookiecutter.author_email }}",
}

# Import names a generated project depends on or that would confuse tooling: a package with one of these
# names would shadow the real one (or be shadowed by it) the moment `train.py` imports it.
RESERVED = {
    "hydra",
    "omegaconf",
    "torch",
    "torchvision",
    "numpy",
    "rich",
    "typer",
    "click",
    "sklearn",
    "scipy",
    "matplotlib",
    "mlflow",
    "wandb",
    "tensorboard",
    "tensorboardx",
    "optuna",
    "joblib",
    "submitit",
    "yaml",
    "pytest",
    "test",
    "tests",
    "src",
    "configs",
    "train",
    "setuptools",
    "pip",
    "pandas",
    "git",
    "runs",
    "benchmarks",
    "hydra_plugins",
    "cookiecutter",
}

SLUG = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")


def problem(answers: dict[str, str]) -> str | None:
    """Return a one-line description of what is wrong with the answers, or None when all is well."""
    slug, pkg = answers["project_slug"], answers["package_name"]
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
    for key in ("use_tensorboard", "use_mlflow", "use_wandb", "git_init"):
        if answers[key] not in ("yes", "no"):
            return f"{key} must be 'yes' or 'no', not {answers[key]!r}"
    default = answers["default_tracker"]
    if default != "local" and answers.get(f"use_{default}") != "yes":
        return (
            f"default_tracker {default!r} is not an included backend (set use_{default}=yes or pick 'local')"
        )
    if "@" not in answers["author_email"]:
        return f"author_email {answers['author_email']!r} is not an e-mail address"
    return None


if __name__ == "__main__":
    error = problem(ANSWERS)
    if error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)
