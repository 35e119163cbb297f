"""A model that misbehaves on one rank on purpose, for the DDP tests (imported by the torchrun workers
through `model._target_=ddp_faults.FaultyMLP`; it must import nothing from the tests themselves)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from research_project.models import MLP


class FaultyMLP(MLP):
    """The project's MLP, plus a fault on rank `fail_rank` at its `fail_at`-th training step: `raise` an
    exception, or `kill` itself with SIGKILL; `delay` seconds of sleep per training step on every rank."""

    def __init__(
        self,
        *args: Any,
        fail_rank: int = -1,
        fail_at: int = 0,
        fail_how: str = "raise",
        delay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fail_rank, self.fail_at, self.fail_how, self.delay = fail_rank, fail_at, fail_how, delay
        self.calls = 0

    def forward(self, x: Any) -> Any:
        if self.training:
            self.calls += 1
            if self.delay:
                time.sleep(self.delay)
            if _rank() == self.fail_rank and self.calls == self.fail_at:
                if self.fail_how == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError(f"injected failure on rank {self.fail_rank} at step {self.calls}")
        return super().forward(x)


def _rank() -> int:
    """This process's rank: torchrun's RANK, or the process group's (a submitit task joins one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return int(os.environ.get("RANK", "0"))
