"""A stable hash of the resolved config: two runs with the same hash trained with the same settings.

Keys that differ from run to run without changing what is trained are left out: where files go (`paths`),
labels (`name`, `tags`), which trackers receive the run and how (`tracker`, `tracking`), how the run was
started or continued (`resume`, `init_from`, `stop_after_epochs`, `rerun_of`), git capture settings
(`git`), sweep bookkeeping (`sweep`) and Hydra's own node (`hydra`). The seed is part of the hash: a
different seed is a different run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

EXCLUDED_KEYS = frozenset(
    {
        "paths",
        "name",
        "tags",
        "tracker",
        "tracking",
        "resume",
        "init_from",
        "stop_after_epochs",
        "rerun_of",
        "git",
        "sweep",
        "hydra",
    }
)
HASH_LENGTH = 12


def hashable_config(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config as plain data, without the run-varying top-level keys."""
    if not isinstance(cfg, DictConfig):
        return {k: v for k, v in cfg.items() if k not in EXCLUDED_KEYS}
    data: dict[str, Any] = {}
    for key in cfg:  # resolved key by key, so an excluded key that cannot resolve here is never touched
        if key in EXCLUDED_KEYS:
            continue
        value = cfg[key]
        data[str(key)] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return data


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace, floats in their shortest repr: the same data always gives the same text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def config_hash(cfg: DictConfig | Mapping[str, Any]) -> str:
    """The first 12 hex digits of the SHA-256 of the canonical JSON of the hashable config."""
    return hashlib.sha256(canonical_json(hashable_config(cfg)).encode()).hexdigest()[:HASH_LENGTH]
