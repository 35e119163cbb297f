"""What a W&B offline run really holds, read back from its own run file (`run-<id>.wandb`): the rows W&B's
writer (wandb-core, a separate process that buffers) wrote before it stopped, so a session that reopens the
run sends again exactly what it lost. Read without importing wandb where the file allows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def held_rows(wandb_dir: Path, run_id: str) -> dict[int, set[str]]:
    """{global_step: metric names} of every history row in the run files of W&B run `run_id` under
    `wandb_dir` (every session: offline-run-*-<id>/run-<id>.wandb, or run-*-<id>/ online)."""
    held: dict[int, set[str]] = {}
    for path in sorted(wandb_dir.glob(f"*run-*-{run_id}/run-{run_id}.wandb")):
        for row in _history_rows(path):
            step = row.get("global_step")
            if isinstance(step, (int, float)):
                held.setdefault(int(step), set()).update(row)
    return held


def first_missing(events_file: Path, end: int, held: dict[int, set[str]]) -> tuple[int, int] | None:
    """(offset, seq) just before the first metrics event of the log's first `end` bytes whose step has no
    row in `held` (None: it holds them all). Judged by step, not by name: a row holds what the adapter made
    of the event's metrics, which need not be their names in the log."""
    from runkit.storage.events import read_events

    before = (0, 0)
    for offset, event in read_events(events_file):
        if offset > end:
            break
        if event.get("type") == "metrics" and int(event.get("step") or 0) not in held:
            return before
        before = (offset, int(event.get("seq") or 0))
    return None


_BLOCK, _HEADER = 32768, 7


def _history_rows(path: Path) -> list[dict[str, Any]]:
    """The history rows of one W&B run file (a LevelDB-style log of protobuf records), up to the first
    damaged or cut record (a writer killed mid-record)."""
    import json
    import struct
    import zlib

    from wandb.proto import wandb_internal_pb2 as pb

    try:
        data = path.read_bytes()
    except OSError:
        return []
    rows: list[dict[str, Any]] = []
    pos, pending = _HEADER, b""
    if data[:4] != b":W&B":
        return rows
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's trailer
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0 and length == 0:  # zero padding
            pos += left
            continue
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        if len(chunk) < length or zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF != crc:
            break  # cut or damaged: what follows is not trusted
        pos += _HEADER + length
        if kind in (2, 3):  # FIRST, MIDDLE
            pending += chunk
            continue
        payload, pending = pending + chunk, b""
        record = pb.Record()  # type: ignore[attr-defined]
        try:
            record.ParseFromString(payload)
        except Exception:
            break
        if record.WhichOneof("record_type") == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                try:
                    row[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
                except ValueError:
                    continue
            rows.append(row)
    return rows
