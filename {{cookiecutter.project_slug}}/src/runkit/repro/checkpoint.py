"""Checkpoints: model, optimizer, scheduler, counters and every RNG state, written atomically."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runkit.errors import UserError, naming


def rng_states(generator: torch.Generator | None = None) -> dict[str, Any]:
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if generator is not None:
        states["loader"] = generator.get_state()
    return states


def restore_rng_states(states: dict[str, Any], generator: torch.Generator | None = None) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        # One state per device the run had; a machine with fewer devices restores those it has.
        for index, state in enumerate(states["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, index)
    if generator is not None and "loader" in states:
        generator.set_state(states["loader"])


def save_checkpoint(path: Path, **state: Any) -> Path:
    """Save via a temporary file and an atomic rename: readers (and the shipper) never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with naming(path):
            torch.save(state, tmp)
    except BaseException:
        tmp.unlink(
            missing_ok=True
        )  # half a checkpoint (a full disk, Ctrl-C) is worth nothing: free its space
        raise
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> Any:
    """What `save_checkpoint` wrote (a dict for the kit's own checkpoints; a bare state dict, or anything
    torch saved, for a file given to init_from). Raises UserError when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        # weights_only=False: our own checkpoints hold RNG states (numpy arrays, tuples) next to the tensors.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc})") from exc
