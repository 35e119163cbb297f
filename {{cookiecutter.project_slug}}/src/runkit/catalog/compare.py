"""Runs side by side: the params whose values differ, and each metric's value per run."""

from __future__ import annotations

from typing import Any

from runkit.catalog.entry import RunEntry
from runkit.repro.config_keys import is_plumbing


def _param_source(run: RunEntry) -> dict[str, Any]:
    flat = run.flat_config()
    return flat if flat else run.params


def differing_params(runs: list[RunEntry], all_params: bool = False) -> dict[str, list[Any]]:
    """key -> one value per run, for the science keys whose values differ (every key, plumbing included,
    with all_params). Plumbing (`paths.*`, `resume`, `name`, `tags`, ...: `repro.config_keys`) says where
    and how a run ran, not what it computed: a resumed run's `resume` path is no difference."""
    sources = [_param_source(r) for r in runs]
    keys: list[str] = []
    seen: set[str] = set()
    for source in sources:
        for key in source:
            if key not in seen:
                seen.add(key)
                keys.append(key)
    out: dict[str, list[Any]] = {}
    missing = object()
    for key in keys:
        if is_plumbing(key) and not all_params:
            continue
        values = [s.get(key, missing) for s in sources]
        if all_params or len({repr(v) for v in values}) > 1:
            out[key] = [None if v is missing else v for v in values]
    return out


def metrics_side_by_side(runs: list[RunEntry]) -> dict[str, list[Any]]:
    keys = sorted({k for r in runs for k in r.metrics})
    out = {k: [r.metrics.get(k) for r in runs] for k in keys}
    for monitor in sorted({r.monitor for r in runs if r.monitor}):
        out[f"best {monitor}"] = [r.monitor_value if r.monitor == monitor else None for r in runs]
    return out
