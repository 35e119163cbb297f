"""The project the kit's benchmarks drive: the default answers, baked once per benchmark process.

The benchmarks measure the kit, which is the same in every project, so they live in the template repository
with the kit's tests (kit-tests/) and run against a fresh bake whose `src/runkit` is this repository's own.
`BENCH_PROJECT=<dir>` runs them against an existing project instead (a researcher's, say).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
KIT_SRC = TEMPLATE / "{{cookiecutter.project_slug}}" / "src"


def _bake() -> Path:
    from cookiecutter.main import cookiecutter

    out = Path(tempfile.mkdtemp(prefix="bench-project-"))
    atexit.register(shutil.rmtree, out, True)
    answers = {"git_init": "yes"}
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), extra_context=answers))
    for name in ("runkit", "hydra_plugins"):
        shutil.rmtree(project / "src" / name)
        (project / "src" / name).symlink_to(KIT_SRC / name, target_is_directory=True)
    return project


ROOT = Path(os.environ["BENCH_PROJECT"]).resolve() if os.environ.get("BENCH_PROJECT") else _bake()
sys.path.insert(0, str(ROOT / "src"))
