"""What a W&B offline run really holds, read back from its own run file (`run-<id>.wandb`): the rows W&B's
writer (wandb-core, a separate process that buffers) wrote before it stopped, so a session that reopens the
run sends again exactly what it lost. Read without importing wandb where the file allows it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def held_rows(wandb_dir: Path, run_id: str) -> dict[int, set[str]]:
    """{global_step: metric names} of every history row in the run files of W&B run `run_id` under
    `wandb_dir` (every session: offline-run-*-<id>/run-<id>.wandb, or run-*-<id>/ online)."""
    held: dict[int, set[str]] = {}
    for step, row in _rows(wandb_dir.glob(f"*run-*-{run_id}/run-{run_id}.wandb")):
        held.setdefault(step, set()).update(row)
    return held


def _rows(files: Iterable[Path]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(global_step, row) of every history row of these run files, oldest session first, once no orphaned
    writer can still add to them."""
    _wait_for_orphaned_writers()
    for path in sorted(files):
        for row in _history_rows(path):
            step = row.get("global_step")
            if isinstance(step, (int, float)):
                yield int(step), row


def _wait_for_orphaned_writers(timeout: float = 30.0) -> None:
    """Wait until every orphaned W&B writer has exited. The writer (wandb-core) runs in a session of its own
    and is told its parent by `--pid`: a kill of the trainer's process group leaves it alive for a moment
    (~0.25 s on a quiet machine, longer on a loaded one) while it notices and closes its run file. Read
    before it is done, the file may look cut short and rows would be sent again. Waiting on the process
    rather than on who has the file open: a live session (the sync's own) keeps its file open throughout.
    Orphans of other runs are waited for too (harmless, bounded)."""
    import psutil

    orphans = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        args = proc.info["cmdline"] or []
        if proc.info["name"] != "wandb-core" or "--pid" not in args[:-1] or "--detached" in args:
            continue  # a detached one outlives its parent on purpose
        try:
            parent = psutil.Process(int(args[args.index("--pid") + 1]))
        except (ValueError, psutil.Error):
            parent = None
        if parent is None or not _running(parent):
            orphans.append(proc)
    deadline = time.monotonic() + timeout
    while orphans and time.monotonic() < deadline:
        orphans = [proc for proc in orphans if _running(proc)]
        time.sleep(0.1)


def _running(proc: Any) -> bool:
    """Alive and not a zombie (a writer that exited but was not reaped, with no init to reap it, is done);
    psutil's Process also tells a reused pid from the process it was."""
    import psutil

    try:
        return bool(proc.is_running()) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def repeated(wandb_dir: Path, run_id: str, events_file: Path) -> list[tuple[int, str]]:
    """(step, metric) that the live sessions' run files of W&B run `run_id` hold in more rows than the log
    has metrics events for them (superseded events not counted): what a session sent again. Only metrics of
    the log are counted (system metrics and media are not, nor W&B's own keys): a resent batch always has
    some, and a user's own repeat (an image logged twice at one step) is not taken for one."""
    from collections import Counter

    from runkit.storage.events import read_events
    from runkit.storage.supersede import Supersession

    held: Counter[tuple[int, str]] = Counter()
    for step, row in _rows(wandb_dir.glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")):
        held.update((step, key) for key in row)
    logged: Counter[tuple[int, str]] = Counter()
    superseded = Supersession.scan(events_file).superseded
    for offset, event in read_events(events_file):
        if event.get("type") == "metrics" and not superseded(offset, event):
            logged.update((int(event.get("step") or 0), key) for key in (event.get("data") or {}))
    return sorted(key for key, count in held.items() if key in logged and count > logged[key])


def first_missing(events_file: Path, end: int, held: dict[int, set[str]]) -> tuple[int, int] | None:
    """(offset, seq) just before the first metrics event of the log's first `end` bytes whose step has no
    row in `held` (None: it holds them all). Judged by step, not by name: a row holds what the adapter made
    of the event's metrics, which need not be their names in the log. A superseded event (a resumed run's)
    is never sent, so never missing."""
    from runkit.storage.events import read_events
    from runkit.storage.supersede import Supersession

    superseded = Supersession.scan(events_file).superseded
    before = (0, 0)
    for offset, event in read_events(events_file):
        if offset > end:
            break
        if (
            event.get("type") == "metrics"
            and int(event.get("step") or 0) not in held
            and not superseded(offset, event)
        ):
            return before
        before = (offset, int(event.get("seq") or 0))
    return None


def held_position(events_file: Path, cursor: int, held: dict[int, set[str]]) -> tuple[int, int] | None:
    """Where a killed session's cursor should be, by what the run files hold: back before the first metrics
    event up to the cursor that W&B lost (its writer buffers), or forward past the metrics events after the
    cursor that it holds all the same (its writer, in a session of its own, outlives a kill of the process
    group and writes out the batch it was handed before the cursor was saved). Forward only across metrics
    events whose every name is in the row of their step: anything else (a file, a tag) is sent again rather
    than risked. None: the cursor is right."""
    from runkit.storage.events import read_events

    back = first_missing(events_file, cursor, held)
    if back is not None:
        return back
    ahead: tuple[int, int] | None = None
    for offset, event in read_events(events_file, cursor):
        step = event.get("step")
        names = set((event.get("data") or {}).keys())
        if event.get("type") != "metrics" or not isinstance(step, int) or not names <= held.get(step, set()):
            break
        ahead = (offset, int(event.get("seq") or 0))
    return ahead


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
