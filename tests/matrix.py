"""The option matrix the template is baked over.

Backends and the default tracker interact (files, dependencies, configs), so every backend subset is baked
with a valid default tracker; the other options are independent of them and are cycled through the rows.
"""

from __future__ import annotations

from itertools import cycle, product

BACKENDS = ("tensorboard", "mlflow", "wandb")
LICENSES = ("MIT", "BSD-3-Clause", "Apache-2.0", "none")
CIS = ("github-actions", "none")
PYTHONS = ("3.11", "3.10", "3.12", "3.13")  # every offered version, at least twice over the 8 rows
# Package names that sort before and after every other import, so lint never depends on the name chosen.
NAMES = ("Research Project", "Aardvark Study", "Zebra Nets")


def combos() -> list[dict[str, str]]:
    rows = []
    # git_init cycles with period 4 against the CI option's 2, so every pairing of the two is baked.
    extras = zip(
        cycle(LICENSES),
        cycle(CIS),
        cycle(PYTHONS),
        cycle(("yes", "yes", "no", "no")),
        cycle(NAMES),
        strict=False,
    )
    for row, chosen in enumerate(product(("yes", "no"), repeat=len(BACKENDS))):
        use = dict(zip(BACKENDS, chosen, strict=True))
        included = [b for b in BACKENDS if use[b] == "yes"]
        license_, ci, python, git_init, name = next(extras)
        rows.append(
            {
                **{f"use_{b}": use[b] for b in BACKENDS},
                # rotate the default over the included backends (local when none): row 0, all backends with
                # tensorboard as default, is exactly what `cookiecutter --no-input` bakes
                "default_tracker": included[row % len(included)] if included else "local",
                "license": license_,
                "ci": ci,
                "python_version": python,
                "git_init": git_init,
                "project_name": name,
            }
        )
    return rows


def backends_id(answers: dict[str, str]) -> str:
    return "+".join(b[:2] for b in BACKENDS if answers[f"use_{b}"] == "yes") or "none"


def combo_id(answers: dict[str, str]) -> str:
    backends = backends_id(answers)
    parts = (answers["default_tracker"], answers["license"], answers["ci"], answers["git_init"])
    return backends + "-" + "-".join(parts)
