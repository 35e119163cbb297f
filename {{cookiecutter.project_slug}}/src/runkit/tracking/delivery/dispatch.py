"""The one place that looks at an event's kind: each event of a batch goes to its backend method.

Adapters implement typed methods (`Backend.log_metrics`, `set_tags`, ...) and never branch on `type`; this
module turns the decoded line into those calls, with the defaults every adapter used to apply on its own: a
metrics event without a step is at step 0, an event without a time is stamped now.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from runkit.storage.events import (
    ArtifactData,
    DatasetData,
    Event,
    HParamsData,
    ImageData,
    ResumeData,
    StatusData,
    TableData,
)
from runkit.tracking.backends.base import Backend

_Handler = Callable[[Backend, dict[str, Any], "int | None", float], None]

# Every kind but metrics, which the loop below calls without this table's indirection (it is nearly every
# event of a batch). A kind not listed here (from a newer kit) is skipped, as an adapter skipped it before.
_HANDLERS: dict[str, _Handler] = {
    "params": lambda backend, data, step, wall: backend.log_params(data),
    "tags": lambda backend, data, step, wall: backend.set_tags(data, step, wall),
    "artifact": lambda backend, data, step, wall: backend.log_artifact(cast(ArtifactData, data), step, wall),
    "status": lambda backend, data, step, wall: backend.mark_status(cast(StatusData, data), step, wall),
    "resume": lambda backend, data, step, wall: backend.mark_resume(cast(ResumeData, data), step, wall),
    "image": lambda backend, data, step, wall: backend.log_image(cast(ImageData, data), step, wall),
    "table": lambda backend, data, step, wall: backend.log_table(cast(TableData, data), step, wall),
    "hparams": lambda backend, data, step, wall: backend.log_hparams(cast(HParamsData, data), step, wall),
    "dataset": lambda backend, data, step, wall: backend.log_dataset(cast(DatasetData, data), step, wall),
}


def deliver(backend: Backend, events: Sequence[Event]) -> None:
    """Hand one batch (in log order) to `backend`, then flush it. On any failure the backend discards what it
    gathered and the exception propagates: the caller keeps its cursor and hands the same batch again."""
    log_metrics = backend.log_metrics  # bound once: called for most of up to `batch_events` events
    handlers = _HANDLERS
    try:
        for event in events:
            kind = event.get("type")
            wall = event.get("time") or time.time()
            if kind == "metrics":
                log_metrics(int(event.get("step") or 0), event.get("data") or {}, float(wall))
                continue
            handler = handlers.get(kind)  # None for a kind this kit does not know
            if handler is not None:
                handler(backend, event.get("data") or {}, event.get("step"), float(wall))
        backend.flush()
    except BaseException:
        backend.discard()
        raise
