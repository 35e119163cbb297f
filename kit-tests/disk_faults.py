"""A model that fills a disk on purpose, for the disk-full tests (imported by `python train.py` through
`model._target_=disk_faults.DiskFillingMLP`; it must import nothing from the tests themselves)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from research_project.models import MLP


class DiskFillingMLP(MLP):
    """The project's MLP, which fills the file system of `fill_dir` when it is put in eval mode for the
    `fill_at_eval`-th time (each epoch's validation is one; the test report after training is the next)."""

    def __init__(self, *args: Any, fill_dir: str = "", fill_at_eval: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fill_dir, self.fill_at_eval, self.evals = fill_dir, fill_at_eval, 0

    def train(self, mode: bool = True) -> DiskFillingMLP:
        if not mode:
            self.evals += 1
            if self.evals == self.fill_at_eval and self.fill_dir:
                with open(Path(self.fill_dir) / "filler", "wb") as f, contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
        return super().train(mode)
