"""Everything captured at the start of a run, written into the run directory; returns run.json fields."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from ..tracking.run_dir import RunDir


def capture_run(run_dir: RunDir, cfg: DictConfig) -> dict[str, Any]:
    """Write the run's capture files into run_dir and return the summary fields for run.json."""
    return {}
