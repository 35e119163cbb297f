"""A stable hash of the resolved config: two runs with the same hash trained with the same settings.

Plumbing keys (where files go, labels, trackers, how the run was started or continued, git capture settings,
sweep bookkeeping, Hydra's own node, the device: `repro.config_keys.PLUMBING_KEYS`) are left out: they differ
from run to run without changing what is trained. The seed is part of the hash: a different seed is a
different run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig

from runkit.plain import plain
from runkit.repro.config_keys import is_plumbing, science_params

HASH_LENGTH = 12


def hashable_config(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config as plain data, its science part only (no plumbing keys)."""
    if not isinstance(cfg, DictConfig):
        return science_params(cfg)
    data: dict[str, Any] = {}
    for key in cfg:  # resolved key by key, so a plumbing key that cannot resolve here is never touched
        if is_plumbing(str(key)):
            continue
        value = cfg[key]
        data[str(key)] = plain(value)
    return data


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace, floats in their shortest repr: the same data always gives the same text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def config_hash(cfg: DictConfig | Mapping[str, Any]) -> str:
    """The first 12 hex digits of the SHA-256 of the canonical JSON of the hashable config."""
    return hashlib.sha256(canonical_json(hashable_config(cfg)).encode()).hexdigest()[:HASH_LENGTH]
