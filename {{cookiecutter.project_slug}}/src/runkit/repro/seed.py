"""Seeding: one call sets every generator a training run draws from."""

from __future__ import annotations

import os
import random
import secrets
from typing import Any

from runkit.errors import UserError

MAX_SEED = 2**63 - 1  # what torch.manual_seed, Python and (modulo 2**32) NumPy all accept


def draw_seed() -> int:
    """A fresh seed for `seed=null`, from the OS's entropy (never from a generator we are about to seed)."""
    return secrets.randbelow(2**31 - 1)


def check_seed(seed: Any) -> int | None:
    """The seed as an int (or None to draw one); anything else is a UserError."""
    if seed is None:
        return None
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"seed must be an integer from 0 to 2**63-1, or null to draw one (got {seed!r})")
    return seed


def seed_everything(seed: int | None, deterministic: bool = False) -> int:
    """Seed Python, NumPy and torch (CPU and every CUDA device); return the seed actually used.

    `seed=0` is a seed like any other; only None draws one. `deterministic` switches torch's deterministic
    algorithms on (or back off: a sweep running several jobs in one process must not inherit the last job's
    setting), with the cuDNN flags and the cuBLAS workspace setting they need.
    """
    import numpy as np
    import torch

    seed = check_seed(seed)
    if seed is None:
        seed = draw_seed()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs this workspace setting to be deterministic; it must be set before the first cuBLAS call
        # (this runs before the model is built, so it is).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(bool(deterministic))
    torch.backends.cudnn.deterministic = bool(deterministic)
    if deterministic:
        torch.backends.cudnn.benchmark = False  # benchmarking picks algorithms by timing: not reproducible
    return seed


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker seeding: derive each worker's NumPy/random seed from torch's per-worker seed.

    torch seeds each worker with `base_seed + worker_id`, where base_seed is drawn from the loader's
    generator (whose state is in every checkpoint), so workers are reproducible across resumes too.
    """
    import numpy as np
    import torch

    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def rank_seed(seed: int, rank: int, world_size: int = 1) -> int:
    """The seed of one rank of a multi-process run: `seed + rank` (wrapped into the valid range).

    Rank 0 keeps the run's seed. Every rank builds the model from the run's seed (so the initial weights are
    the same everywhere; DDP broadcasts rank 0's anyway); what each rank draws afterwards (dropout masks,
    augmentations) comes from its own seed, so that ranks do not repeat each other's random numbers.
    """
    del world_size  # the same rule for any world size: rank r of any job draws from seed + r
    return (int(seed) + int(rank)) % (MAX_SEED + 1)


def seed_rank(seed: int, rank: int, world_size: int) -> int:
    """Reseed Python, NumPy and torch with this rank's seed (multi-process runs only; a single process keeps
    the stream `seed_everything` started, exactly as before). Returns the seed applied."""
    import numpy as np
    import torch

    if world_size <= 1:
        return seed
    own = rank_seed(seed, rank, world_size)
    random.seed(own)
    np.random.seed(own % 2**32)
    torch.manual_seed(own)
    return own
