"""What the MLflow adapter sends besides metrics and params: keys MLflow accepts, the tags that describe a
run's source and its sweep, images, tables and datasets, and files as artifacts."""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from runkit.flatten import flatten
from runkit.storage.events import ArtifactData
from runkit.tracking.backends import native
from runkit.tracking.backends.base import RunInfo

log = logging.getLogger("runkit.tracking.backends.mlflow")  # the adapter's own name
_BAD_KEY = re.compile(r"[^/\w.\- :]")
_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100  # MLflow's log_batch limits
_MAX_PARAM_VALUE, _MAX_TAG_VALUE = 6000, 8000


def _key(name: Any) -> str:
    key = _BAD_KEY.sub("_", str(name)).replace("..", "_.")
    return key[:250] or "_"


def _source_tags(run: RunInfo) -> dict[str, str]:
    """MLflow's own fields for where a run came from: program, git commit/branch/remote, user, and the
    command-line overrides (also as the `overrides` tag)."""
    src = native.source(run)
    tags = {"mlflow.source.name": native.PROGRAM, "mlflow.source.type": "LOCAL"}
    for tag, key in (
        ("mlflow.source.git.commit", "commit"),
        ("mlflow.source.git.branch", "branch"),
        ("mlflow.source.git.repoURL", "remote"),
        ("mlflow.user", "user"),
    ):
        if src.get(key):
            tags[tag] = str(src[key])
    tags["overrides"] = " ".join(native.overrides(run))[:_MAX_TAG_VALUE]
    return tags


def _sweep_tags(sweep_dir: Path) -> dict[str, str]:
    """The sweep's own fields from sweep.json (grid, fixed overrides, search space) as JSON tags."""
    from runkit.storage.jsonio import CorruptRunFileError, read_json

    try:
        record = read_json(Path(sweep_dir) / "sweep.json")
    except (OSError, CorruptRunFileError):
        return {}
    tags = {"sweep.overrides": " ".join(record.get("overrides") or [])}
    for key in ("grid", "fixed", "search_space", "sweeper", "launcher"):
        if record.get(key):
            tags[f"sweep.{key}"] = json.dumps(record[key], default=str)[:_MAX_TAG_VALUE]
    return tags


def send_media(
    client: Any, run_id: str, run_dir: Path, kind: str, data: dict[str, Any], last_step: int
) -> None:
    """An image (MLflow's image time series), a table (a JSON table artifact the UI shows) or a
    dataset (MLflow's dataset inputs)."""
    if kind == "dataset":
        from mlflow.entities import Dataset, DatasetInput, InputTag

        profile = {k: data.get(k) for k in ("splits", "classes", "features", "num_classes")}
        dataset = Dataset(
            name=str(data.get("name")),
            digest=str(data.get("fingerprint")),
            source_type="code",
            source=json.dumps({"source": data.get("source")}),
            profile=json.dumps(profile, default=str),
        )
        client.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])
        return
    source = run_dir / str(data.get("path", ""))
    if not source.is_file():
        return
    name = str(data.get("name") or source.stem)
    if kind == "image":
        step = data.get("step")
        try:
            from PIL import Image

            with Image.open(source) as opened:
                client.log_image(
                    run_id,
                    opened.convert("RGBA" if opened.mode in ("RGBA", "LA") else "RGB"),
                    key=_key(name),
                    step=int(step) if step is not None else last_step,
                    timestamp=int(float(data.get("wall") or time.time()) * 1000),
                )
        except ImportError:  # no Pillow: the PNG as a plain artifact
            client.log_artifact(run_id, str(source), "media")
        return
    columns, rows = native.read_table(source)
    with tempfile.TemporaryDirectory(prefix="mlflow-table-") as tmp:
        table = Path(tmp) / f"{source.stem}.json"  # MLflow's table format (what log_table writes)
        table.write_text(json.dumps({"columns": columns, "data": rows}, default=str), encoding="utf-8")
        client.log_artifact(run_id, str(table), "tables")
    client.log_artifact(run_id, str(source), "media")
    logged = json.loads(client.get_run(run_id).data.tags.get("mlflow.loggedArtifacts") or "[]")
    entry = {"path": f"tables/{source.stem}.json", "type": "table"}
    if entry not in logged:
        client.set_tag(run_id, "mlflow.loggedArtifacts", json.dumps([*logged, entry]))


def collect_artifact(
    run_dir: Path, data: ArtifactData, files: dict[tuple[str, str], Path], log_checkpoints: bool
) -> None:
    """Where an artifact event's file goes (artifact folder, name), into `files`: the latest wins."""
    rel = Path(str(data.get("path", "")))
    source = run_dir / rel
    if data.get("kind") == "checkpoint":
        if not log_checkpoints:
            return
        for alias in data.get("aliases") or [rel.stem]:
            files[("checkpoints", f"{alias}{rel.suffix}")] = source
    else:
        folder = rel.parent.as_posix()
        files[("" if folder == "." else folder, rel.name)] = source


def log_files(client: Any, run_id: str, files: dict[tuple[str, str], Path]) -> None:
    """Send each file under its artifact folder and name (a copy where the name differs)."""
    with tempfile.TemporaryDirectory(prefix="mlflow-artifacts-") as tmp:
        for (folder, name), source in files.items():
            if not source.exists():  # replaced or removed since it was logged: the newer one follows
                log.warning("artifact %s no longer exists; not sending it to MLflow", source)
                continue
            if source.is_dir():
                client.log_artifacts(run_id, str(source), f"{folder}/{name}".strip("/"))
                continue
            path = source
            if source.name != name:  # e.g. a checkpoint under an alias: send it under that name
                path = Path(tmp) / folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, path)
            client.log_artifact(run_id, str(path), folder or None)


def summary_batch(summary: dict[str, Any], status: str) -> tuple[list[Any], list[Any]]:
    """A sweep's summary for its parent run: its numbers as metrics, each part as one JSON tag, the status."""
    from mlflow.entities import Metric, RunTag

    stamp = int(time.time() * 1000)
    metrics, tags = [], [RunTag("run_status", status)]
    for key, value in flatten(summary or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics.append(Metric(_key(key), float(value), stamp, 0))
    for key, value in (summary or {}).items():
        if value is not None:
            tags.append(RunTag(_key(key), json.dumps(value, default=str)[:_MAX_TAG_VALUE]))
    return metrics, tags
