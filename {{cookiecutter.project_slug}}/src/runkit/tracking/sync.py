"""Replay a run's events.jsonl into one backend after the fact.

This is the live shipper's code path (delivery.channel.Channel fed by delivery.pump.Pump), run in the calling
process: it serves `runs sync`, a backend that was set aside mid-run, a run whose shipper was killed, and a
run made with `tracker=local` that should now appear in MLflow, W&B or TensorBoard. The backend's cursor
file (shipper/<name>.json) says what it already has, and its run ids in run.json are reused, so syncing twice
sends nothing twice.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from runkit.errors import UserError
from runkit.storage.events import log_size, read_events
from runkit.storage.layout import SYSTEM_FILE
from runkit.storage.liveness import is_dead
from runkit.storage.run_dir import RunDir
from runkit.storage.run_lock import DEFAULT_LOCK_TIMEOUT, RunLock
from runkit.storage.status import Status
from runkit.tracking.backends.base import BackendError
from runkit.tracking.backends.native import system_samples
from runkit.tracking.delivery.channel import Channel, Cursor
from runkit.tracking.delivery.ending import as_status, final_status_after, mark_crashed, settle_record
from runkit.tracking.delivery.opening import build_backend, run_info
from runkit.tracking.delivery.options import DEFAULT_OPTIONS, one_line
from runkit.tracking.delivery.pump import Pump

LOCAL = "local"


def backend_config(run_dir: RunDir, name: str) -> dict[str, Any]:
    """The resolved settings of backend `name` for a run: its config.yaml's `tracker.<name>` when the run
    used that backend, else the project's configs/tracker/<name>.yaml resolved against the run's config."""
    from omegaconf import DictConfig, OmegaConf

    cfg = OmegaConf.load(run_dir.config_file) if run_dir.config_file.exists() else OmegaConf.create()
    spec = OmegaConf.select(cfg, f"tracker.{name}", default=None)
    if spec is None:
        root = OmegaConf.select(cfg, "paths.root", default=None)
        candidates = [Path(root) / "configs" / "tracker" / f"{name}.yaml"] if root else []
        candidates.append(Path.cwd() / "configs" / "tracker" / f"{name}.yaml")
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise BackendError(
                f"unknown backend {name!r}: the run did not use it and there is no "
                f"configs/tracker/{name}.yaml under {root or Path.cwd()}"
            )
        loaded = OmegaConf.load(found)
        if not isinstance(loaded, DictConfig) or name not in loaded:
            raise BackendError(f"{found} has no `{name}:` section")
        spec = OmegaConf.merge(cfg, {"tracker": {name: loaded[name]}}).tracker[name]
    container = OmegaConf.to_container(spec, resolve=True)
    if not isinstance(container, dict):
        raise BackendError(f"tracker.{name} of run {run_dir.path} is not a mapping")
    return {str(key): value for key, value in container.items()}


def sync_run(
    run_dir: Path,
    backend: str,
    backend_cfg: dict[str, Any] | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> dict[str, Any]:
    """Send whatever backend `backend` has not received of the run in `run_dir`, then close its run there
    with the run's final status. Idempotent: a second call finds nothing to send and touches nothing.

    Returns {"backend", "run_id", "ids" (the backend's run ids, also stored in run.json), "shipped" (events
    sent now), "status" (what the backend's run was closed with), "up_to_date" (True: nothing to do)}.
    Raises UserError for a run that is still running (or still locked by a shipper after `lock_timeout`
    seconds), BackendError when the backend cannot take the run.
    """
    rd = RunDir(Path(run_dir).resolve())
    record = rd.read()
    result: dict[str, Any] = {"backend": backend, "run_id": record.get("id"), "ids": {}, "shipped": 0}
    if backend == LOCAL:  # the run directory is the local backend: always complete
        return {**result, "ids": {"path": str(rd.path)}, "status": record.get("status"), "up_to_date": True}

    if str(record.get("status") or Status.RUNNING.value) == Status.RUNNING.value and not is_dead(record):
        raise UserError(
            f"run {record.get('id')} is still running (pid {record.get('pid')}); "
            "its shipper feeds the backends"
        )
    # The shipper of the run's last session may still be at work (the run was killed a moment ago, or it
    # outlived finish_timeout): wait for it rather than race it on the log and the cursors.
    lock = RunLock.acquire(rd.events_file, lock_timeout, str(record.get("id")))
    try:
        return _sync_locked(rd, backend, backend_cfg, result)
    finally:
        lock.release()


def _sync_locked(
    rd: RunDir,
    backend: str,
    backend_cfg: dict[str, Any] | None,
    result: dict[str, Any],
    verify: bool = True,
) -> dict[str, Any]:
    record = rd.read()  # as the last session's shipper left it
    status = as_status(record.get("status") or Status.RUNNING.value)
    cursor = Cursor.load(rd.path, backend)
    size = log_size(rd.events_file)
    previous = (record.get("backends") or {}).get(backend) or {}
    if (
        verify  # not when opened again to rebuild
        and status is not Status.RUNNING
        and cursor.closed == status.value
        and cursor.offset >= size
        and not cursor.error
    ):
        ids = {k: v for k, v in previous.items() if k != "error"}
        return {**result, "ids": ids, "status": status.value, "up_to_date": True}

    spec = backend_cfg if backend_cfg is not None else backend_config(rd, backend)
    adapter = build_backend(backend, spec)
    try:
        ids = adapter.open(run_info(rd, backend, record)) or {}
    except BackendError:
        raise
    except ImportError as exc:
        raise BackendError(
            f"the {backend} backend needs a package that is not installed ({one_line(exc)}): "
            f"pip install -e '.[{backend}]'"
        ) from exc
    except Exception as exc:
        raise BackendError(
            f"the {backend} backend could not open run {record.get('id')}: {one_line(exc)}"
        ) from exc

    channel = Channel(backend, adapter, rd.path, DEFAULT_OPTIONS["retries"], DEFAULT_OPTIONS["retry_backoff"])
    # The backend holds nothing of this run yet (one that rebuilt its run at open has its samples from then).
    first_time = channel.cursor.offset == 0 and not adapter.rebuilt
    pump = Pump(rd.events_file, [channel], DEFAULT_OPTIONS["batch_events"])
    pump.drain()
    if first_time:
        _replay_system(rd.path, adapter)
    if status is Status.RUNNING:  # dead, and no shipper finished it: the log may still say how it ended
        ended = final_status_after(rd.events_file, _last_session_offset(rd.events_file))
        if ended is not None:  # e.g. a full disk kept run.json from being written at the end
            settle_record(rd, ended)
            status = ended
        else:
            status = mark_crashed(rd, "the training process ended without a word (found by runs sync)")
            pump.drain()
        record = rd.read()
    channel.close(status)

    backends = dict(record.get("backends") or {})
    backends[backend] = {**previous, **ids, **channel.report(), "synced": time.time()}
    rd.update(backends=backends)
    if channel.error:
        raise BackendError(f"syncing run {record.get('id')} into {backend} failed: {channel.error}")
    # Read back: a backend holding a batch twice (sent again after a kill) rebuilds its run at the next
    # open, which is now; once, so that a backend that cannot tell its own repeats apart cannot loop.
    if verify and adapter.repeats():
        again = _sync_locked(rd, backend, backend_cfg, result, verify=False)
        return {**again, "shipped": channel.shipped + again["shipped"]}
    return {**result, "ids": ids, "shipped": channel.shipped, "status": status.value, "up_to_date": False}


def _replay_system(run_dir: Path, adapter: Any) -> None:
    """The trainer's system metrics (system.jsonl, written by the live shipper) into a backend that gets the
    run for the first time; a backend that had part of the run live has its samples from then."""
    if not (run_dir / SYSTEM_FILE).is_file():
        return
    for wall, metrics in system_samples(run_dir):
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            adapter.log_system(metrics, wall)
    with contextlib.suppress(Exception):
        adapter.flush()


def _last_session_offset(events_file: Path) -> int:
    """Where the log's last session starts (the offset after its last `resume` event; 0 for one session): a
    status before it ended an earlier session."""
    offset = 0
    if events_file.exists():
        for end, event in read_events(events_file):
            if event.get("type") == "resume":
                offset = end
    return offset
