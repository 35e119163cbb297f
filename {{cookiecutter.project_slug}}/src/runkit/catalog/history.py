"""What a run logged over time, from its events.jsonl: metric histories and artifacts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runkit.storage.events import read_events
from runkit.storage.layout import ARTIFACTS_DIR, CHECKPOINTS_DIR, EVENTS_FILE, FIGURES_DIR

# metric -> (step, value) points sorted by step
History = dict[str, list[tuple[int, float]]]
ARTIFACT_FOLDERS = (CHECKPOINTS_DIR, ARTIFACTS_DIR, FIGURES_DIR)


def metric_history(run_path: Path, names: Iterable[str] | None = None) -> History:
    """Each metric as (step, value) pairs sorted by step, from events.jsonl.

    The last value logged for a step wins; a `resume` event {"from_step": S} drops the points above S that
    the interrupted session logged (the resumed session logs them again, or they never happened).
    """
    wanted = set(names) if names is not None else None
    series: dict[str, dict[int, float]] = {}
    events_file = Path(run_path) / EVENTS_FILE
    if not events_file.is_file():
        return {}
    last_step = 0
    for _, event in read_events(events_file):
        kind = event.get("type")
        data = event.get("data")
        if kind == "resume":
            from_step = data.get("from_step") if isinstance(data, dict) else None
            if isinstance(from_step, (int, float)):
                for points in series.values():
                    for step in [s for s in points if s > from_step]:
                        del points[step]
                last_step = int(from_step)
            continue
        if kind != "metrics" or not isinstance(data, dict):
            continue
        raw_step = event.get("step")
        step = int(raw_step) if isinstance(raw_step, (int, float)) else last_step
        last_step = step
        for key, value in data.items():
            if wanted is not None and key not in wanted:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                series.setdefault(str(key), {})[step] = float(value)
    return {k: sorted(v.items()) for k, v in series.items() if v}


def artifacts_of(run_path: Path) -> list[dict[str, Any]]:
    """Logged artifacts (the latest entry per path), then other files in checkpoints/ artifacts/ figures/."""
    run_path = Path(run_path)
    found: dict[str, dict[str, Any]] = {}
    events_file = run_path / EVENTS_FILE
    if events_file.is_file():
        for _, event in read_events(events_file):
            if event.get("type") != "artifact":
                continue
            data = event.get("data")
            if not isinstance(data, dict) or not data.get("path"):
                continue
            entry = found.setdefault(str(data["path"]), {"path": str(data["path"])})
            entry.update({k: v for k, v in data.items() if k in ("kind", "name")})
            aliases = set(entry.get("aliases", [])) | set(data.get("aliases") or [])
            if aliases:
                entry["aliases"] = sorted(aliases)
    for folder in ARTIFACT_FOLDERS:
        base = run_path / folder
        if not base.is_dir():
            continue
        for file in sorted(base.rglob("*")):
            if file.is_file():
                rel = file.relative_to(run_path).as_posix()
                found.setdefault(rel, {"path": rel, "kind": folder.rstrip("s")})
    for entry in found.values():
        file = run_path / entry["path"]
        entry["exists"] = file.exists()
        entry["size"] = file.stat().st_size if file.is_file() else None
    return list(found.values())
