"""Read back what each backend really stored, with the backends' own readers (no mocks):
TensorBoard event files through EventAccumulator, MLflow through MlflowClient, W&B through its offline run
file (`run-<id>.wandb`: a LevelDB-style log of protobuf records, parsed with W&B's own protobufs)."""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from pathlib import Path
from typing import Any


# --- TensorBoard -------------------------------------------------------------------------------------------
def tb_accumulator(log_dir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    acc.Reload()
    return acc


def tb_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = tb_accumulator(log_dir)
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def tb_texts(log_dir: Path) -> dict[str, list[tuple[int, str]]]:
    acc = tb_accumulator(log_dir)
    out = {}
    for tag in acc.Tags()["tensors"]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name == "text":
            out[tag] = [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors(tag)]
    return out


def tb_images(log_dir: Path) -> dict[str, list[tuple[int, int, int, bytes]]]:
    acc = tb_accumulator(log_dir)
    return {
        tag: [(e.step, e.width, e.height, e.encoded_image_string) for e in acc.Images(tag)]
        for tag in acc.Tags()["images"]
    }


def tb_hparams(log_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The HParams session: {name: value} and its end status name (e.g. STATUS_SUCCESS)."""
    from tensorboard.plugins.hparams import api_pb2, metadata

    acc = tb_accumulator(log_dir)
    hparams: dict[str, Any] = {}
    status = None
    for tag in acc.Tags()["tensors"]:
        content = acc.SummaryMetadata(tag).plugin_data.content
        if tag == metadata.SESSION_START_INFO_TAG:
            info = metadata.parse_session_start_info_plugin_data(content)
            for key, value in info.hparams.items():
                hparams[key] = getattr(value, value.WhichOneof("kind"))
        elif tag == metadata.SESSION_END_INFO_TAG:
            status = api_pb2.Status.Name(metadata.parse_session_end_info_plugin_data(content).status)
    return hparams, status


# --- MLflow ------------------------------------------------------------------------------------------------
def mlflow_run(tracking_uri: str, run_id: str) -> dict[str, Any]:
    """Everything MLflow holds for a run: info, params, tags, metric histories, artifact paths."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(run_id)
    history = {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        for key in run.data.metrics
    }

    def walk(path: str | None = None) -> list[str]:
        files = []
        for item in client.list_artifacts(run_id, path):
            files.extend(walk(item.path) if item.is_dir else [item.path])
        return files

    return {
        "status": run.info.status,
        "name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "params": dict(run.data.params),
        "tags": dict(run.data.tags),
        "metrics": history,
        "artifacts": sorted(walk()),
        "client": client,
        "run_id": run_id,
    }


def mlflow_runs_tagged(tracking_uri: str, run_id: str) -> list[Any]:
    """Every MLflow run carrying our run id tag (exactly one, whatever happened)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, filter_string=f"tags.run_id = '{run_id}'")


# --- W&B ---------------------------------------------------------------------------------------------------
_BLOCK, _HEADER = 32768, 7


def wandb_records(path: Path) -> list[tuple[str, Any]]:
    """(kind, record) for every record of one offline `run-<id>.wandb` file."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pos, pending = [], _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # block trailer
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        pos += _HEADER
        if kind == 0 and length == 0:  # zero padding
            pos += left - _HEADER
            continue
        chunk, pos = data[pos : pos + length], pos + length
        if kind == 1:  # FULL
            payload = chunk
        elif kind == 2:  # FIRST
            pending = chunk
            continue
        elif kind == 3:  # MIDDLE
            pending += chunk
            continue
        else:  # LAST
            payload, pending = pending + chunk, b""
        record = pb.Record()
        record.ParseFromString(payload)
        which = record.WhichOneof("record_type")
        records.append((which, getattr(record, which) if which else None))
    return records


def _items(items: Any) -> dict[str, Any]:
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}


def wandb_run(run_dir: Path) -> dict[str, Any]:
    """What W&B stored offline for a run (all its sessions, oldest first): config, history rows, summary,
    exit codes, artifacts (name, type, aliases, files), saved files, run ids. Only the live session folders
    (`wandb/offline-run-*`): those a rebuilt run retired into `wandb/superseded/` are not its history."""
    files = sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))
    assert files, f"no offline W&B run under {run_dir}/wandb"
    out: dict[str, Any] = {
        "files": files,
        "ids": [],
        "names": [],
        "groups": [],
        "tags": [],
        "config": {},
        "history": [],
        "summary": {},
        "exit_codes": [],
        "artifacts": [],
        "saved": [],
        "metrics": [],
    }
    for path in files:
        for kind, record in wandb_records(path):
            if kind == "run":
                out["ids"].append(record.run_id)
                out["names"].append(record.display_name)
                out["groups"].append(record.run_group)
                out["tags"].append(list(record.tags))
                out["config"].update(_items(record.config.update))
            elif kind == "config":
                out["config"].update(_items(record.update))
            elif kind == "history":
                out["history"].append(_items(record.item))
            elif kind == "summary":
                out["summary"].update(_items(record.update))
            elif kind == "exit":
                out["exit_codes"].append(record.exit_code)
            elif kind == "artifact":
                out["artifacts"].append(
                    {
                        "name": record.name,
                        "type": record.type,
                        "aliases": list(record.aliases),
                        "files": [c.path for c in record.manifest.contents],
                    }
                )
            elif kind == "files":
                out["saved"].extend(f.path for f in record.files)
            elif kind == "metric":
                out["metrics"].append((record.name or record.glob_name, record.step_metric))
    out["config"].pop("_wandb", None)
    return out


def wandb_series(history: list[dict[str, Any]], key: str) -> list[tuple[int, Any]]:
    """(global_step, value) of one metric across W&B history rows."""
    return [(row["global_step"], row[key]) for row in history if key in row]


def steps_by_metric(events: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) per metric name from events.jsonl events: what every backend must hold."""
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for event in events:
        if event["type"] == "metrics":
            for key, value in event["data"].items():
                out[key].append((event["step"], value))
    return dict(out)
