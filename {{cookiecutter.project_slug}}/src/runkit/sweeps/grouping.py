"""What varies across a sweep's jobs, and the jobs grouped over seeds: one owner for both.

A job is identified by its science overrides (`repro.config_keys`: plumbing such as `paths.*`, `sweep.*`,
`tracker` is left out); the swept parameters are the keys whose value differs between jobs (or that some
jobs lack); jobs that differ only in `seed` form one seed group, whose scores are the spread over seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from runkit.overrides import override_params
from runkit.repro.config_keys import science_params

SEED_KEY = "seed"

T = TypeVar("T")
JobKey = tuple[tuple[str, str], ...]
GroupKey = tuple[tuple[str, str], ...]


def job_params(overrides: Iterable[str]) -> dict[str, str]:
    """A job's science overrides as {key: value text}, in order (a deletion `~y` counts, as `y`)."""
    return science_params(override_params(overrides, deletions=True))


def job_key(overrides: Iterable[str]) -> JobKey:
    """What identifies a job within its sweep: its science overrides, order-free."""
    return tuple(sorted(job_params(overrides).items()))


def swept_params(params: Sequence[Mapping[str, Any]], always: Iterable[str] = ()) -> list[str]:
    """The keys that vary across jobs (each job given as its {key: value}), in first-seen order: a key whose
    value differs between jobs, that some jobs lack, or that is listed in `always` (e.g. the sweep's grid).
    Values are compared by their repr, so unhashable ones (lists) work too."""
    always = set(always)
    keys: list[str] = []
    values: dict[str, set[str]] = {}
    present: dict[str, int] = {}
    for p in params:
        for key, value in p.items():
            if key not in values:
                keys.append(key)
                values[key], present[key] = set(), 0
            values[key].add(repr(value))
            present[key] += 1
    return [k for k in keys if k in always or len(values[k]) > 1 or present[k] < len(params)]


def seed_group_key(params: Mapping[str, Any]) -> GroupKey:
    """The seed group a job belongs to: its parameters other than the seed (values by repr)."""
    return tuple((str(k), repr(v)) for k, v in params.items() if k != SEED_KEY)


def group_over_seeds(
    items: Iterable[T], params_of: Callable[[T], Mapping[str, Any]]
) -> list[tuple[dict[str, Any], list[T]]]:
    """Items grouped by their parameters other than the seed, in first-seen order: [(the group's parameters
    without the seed, its items)]."""
    groups: dict[GroupKey, tuple[dict[str, Any], list[T]]] = {}
    for item in items:
        params = params_of(item)
        key = seed_group_key(params)
        if key not in groups:
            groups[key] = ({k: v for k, v in params.items() if k != SEED_KEY}, [])
        groups[key][1].append(item)
    return list(groups.values())
