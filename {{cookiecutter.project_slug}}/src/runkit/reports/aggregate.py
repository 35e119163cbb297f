"""Sweep aggregation for reports: jobs grouped by their swept values, scores across seeds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from runkit.catalog.entry import RunEntry
from runkit.catalog.history import History
from runkit.formatting import fmt_value
from runkit.sweeps.grouping import SEED_KEY, group_over_seeds

__all__ = [
    "SEED_KEY",
    "Group",
    "default_curve_metrics",
    "has_seed_groups",
    "job_score",
    "params_label",
    "sweep_groups",
]

SKIP_CURVES = ("epoch",)


@dataclass
class Group:
    """The jobs of a sweep that share every swept value but the seed."""

    values: dict[str, Any]
    scores: list[float]
    run_ids: list[str]

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores) if self.scores else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.scores) if len(self.scores) > 1 else 0.0


def job_score(job: RunEntry, metric: str) -> float | None:
    """The metric's best value when it is the monitored one, its last value otherwise."""
    value = job.monitor_value if job.monitor == metric else job.metrics.get(metric)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
        return float(value)
    return None


def value_order(value: Any) -> tuple[int, float | str]:
    """Numbers first, in numeric order, then the rest as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def sweep_groups(jobs: Sequence[RunEntry], params: Sequence[str], metric: str) -> list[Group]:
    """Jobs grouped by their swept values other than the seed (`sweeps.grouping.group_over_seeds`); a group's
    scores are across seeds. Jobs without a score are left out."""
    scored = [(job, score) for job in jobs if (score := job_score(job, metric)) is not None]
    groups = group_over_seeds(scored, lambda item: {p: item[0].key_params.get(p) for p in params})
    out = [Group(values, [s for _, s in items], [j.id for j, _ in items]) for values, items in groups]
    return sorted(out, key=lambda g: tuple(value_order(v) for v in g.values.values()))


def has_seed_groups(groups: Sequence[Group]) -> bool:
    """Whether some group has several seeds: only then is a mean ± std over seeds worth showing."""
    return any(g.n > 1 for g in groups)


def default_curve_metrics(histories: Iterable[History]) -> list[str]:
    """Every metric some run logged, but the epoch counter."""
    names: set[str] = set()
    for history in histories:
        names.update(k for k, v in history.items() if len(v) > 0)
    return sorted(n for n in names if n not in SKIP_CURVES)


def params_label(job: RunEntry, params: Sequence[str]) -> str:
    return " ".join(f"{p}={fmt_value(job.key_params.get(p))}" for p in params)
