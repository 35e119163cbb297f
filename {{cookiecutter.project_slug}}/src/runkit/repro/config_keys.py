"""Which config keys are science (what a run computes) and which are plumbing (where and how it ran).

Plumbing is left out of the config hash, out of the parameters the runs CLI and the reports show, and out of
what identifies a job within a sweep. Keys are top-level config keys; a dotted config key (`paths.root`) or
an override key (`hydra/launcher`, `+tracker.x`) is plumbing when its first part is. The seed is science:
a different seed is a different run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

PLUMBING_KEYS: frozenset[str] = frozenset(
    {
        "paths",  # where files go
        "name",  # a label (part of the run directory name)
        "tags",  # labels
        "tracker",  # which backends receive the run
        "tracking",  # how the run is tracked (shipper, lock timeout, ...)
        "resume",  # continue a run in place
        "init_from",  # start from another run's weights
        "rerun_of",  # set by `runs rerun`
        "stop_after_epochs",  # end this session early
        "git",  # git capture settings
        "sweep",  # sweep bookkeeping (resume, fail_fast)
        "hydra",  # Hydra's own node, and hydra/<group> overrides
        "device",  # which hardware (auto, cpu, cuda:N)
    }
)

# Overrides that concern only the session they are given in: never carried from a run's recorded overrides
# into its resume.
SESSION_KEYS: frozenset[str] = frozenset({"resume", "stop_after_epochs"})

_FIRST_PART = re.compile(r"[./@]")

V = TypeVar("V")


def top_key(key: str) -> str:
    """The top-level config key a dotted config key or an override key falls under: `paths.root` ->
    `paths`, `hydra/launcher` -> `hydra`, `+tracker.x` -> `tracker`."""
    return _FIRST_PART.split(str(key).lstrip("+~").strip(), 1)[0]


def is_plumbing(key: str) -> bool:
    """True for a key (top-level, dotted or an override key) that says where or how a run ran."""
    return top_key(key) in PLUMBING_KEYS


def is_science(key: str) -> bool:
    return not is_plumbing(key)


def split_config(config: Mapping[str, V]) -> tuple[dict[str, V], dict[str, V]]:
    """(science, plumbing) parts of a config, nested (`{"paths": {...}}`) or flat (`{"paths.root": ...}`)."""
    science: dict[str, V] = {}
    plumbing: dict[str, V] = {}
    for key, value in config.items():
        (plumbing if is_plumbing(str(key)) else science)[str(key)] = value
    return science, plumbing


def science_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The science part of a {key: value} mapping (config or overrides), order kept."""
    return split_config(params)[0]
