"""Seeding: one call sets every generator a training run draws from."""

from __future__ import annotations

import os
import random
import secrets


def draw_seed() -> int:
    """A fresh seed for `seed=null`, from the OS's entropy (never from a generator we are about to seed)."""
    return secrets.randbelow(2**31 - 1)


def seed_everything(seed: int | None, deterministic: bool = False) -> int:
    """Seed Python, NumPy and torch (CPU and every CUDA device); return the seed actually used.

    `seed=0` is a seed like any other; only None draws one.
    """
    import numpy as np
    import torch

    if seed is None:
        seed = draw_seed()
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs this workspace setting to be deterministic; it must be set before the first CUDA call.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return seed


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker seeding: derive each worker's NumPy/random seed from torch's per-worker seed."""
    import numpy as np
    import torch

    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
