"""The option matrix the template is baked over.

Backends and the default tracker interact (files, dependencies, configs), so every backend subset is baked
with a valid default tracker; the other options are independent of them and are cycled through the rows.
"""

from __future__ import annotations

from itertools import cycle, product

BACKENDS = ("tensorboard", "mlflow", "wandb")
LICENSES = ("MIT", "BSD-3-Clause", "Apache-2.0", "none")
CIS = ("github-actions", "none")
PYTHONS = ("3.11", "3.10", "3.12")


def combos() -> list[dict[str, str]]:
    rows = []
    extras = zip(cycle(LICENSES), cycle(CIS), cycle(PYTHONS), cycle(("yes", "no")), strict=False)
    for chosen in product(("yes", "no"), repeat=len(BACKENDS)):
        use = dict(zip(BACKENDS, chosen, strict=True))
        included = [b for b in BACKENDS if use[b] == "yes"]
        license_, ci, python, git_init = next(extras)
        rows.append(
            {
                **{f"use_{b}": use[b] for b in BACKENDS},
                # the last included backend as default (local when none): every default value gets exercised
                "default_tracker": included[-1] if included else "local",
                "license": license_,
                "ci": ci,
                "python_version": python,
                "git_init": git_init,
            }
        )
    return rows


def combo_id(answers: dict[str, str]) -> str:
    backends = "+".join(b[:2] for b in BACKENDS if answers[f"use_{b}"] == "yes") or "none"
    parts = (answers["default_tracker"], answers["license"], answers["ci"], answers["git_init"])
    return backends + "-" + "-".join(parts)
