"""The shapes of events.jsonl's events: what `read_events` yields and what each kind's `data` holds."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

# --- what a line holds -------------------------------------------------------------------------------------
#: The kinds of event the kit writes. Readers dispatch on this field (the shipper hands each kind to its own
#: backend method); a kind they do not know is skipped, so a newer kit's log still reads.
EventType = Literal[
    "params", "metrics", "tags", "artifact", "status", "resume", "image", "table", "hparams", "dataset"
]


class Event(TypedDict):
    """One decoded line, as `read_events` yields it (a packed metrics line reads like any other).

    A TypedDict rather than a class: the reader builds millions of these, and a plain dict from `json.loads`
    costs nothing more to type. Readers still use `.get` on `step` and `data`: a line written by hand or
    by an older kit may leave them out.
    """

    seq: int
    time: float  # wall time when it was logged (seconds since the epoch)
    type: EventType
    step: int | None  # the global step (None: not tied to a step, e.g. params and tags)
    data: dict[str, Any]  # metrics: {name: float}; params and tags: {key: value}; see below for the rest


class ArtifactData(TypedDict, total=False):
    """`data` of an `artifact` event: a file inside the run directory."""

    path: str  # relative to the run directory
    kind: str  # "checkpoint", "figure", "text", "git-diff", "file", ...
    name: str
    aliases: list[str]  # checkpoints only: "last", "best"


class StatusData(TypedDict, total=False):
    """`data` of a `status` event: how the session ended (a `storage.status.Status` value)."""

    status: str
    error: str | None  # the last line of the error, when it failed


class ImageData(TypedDict, total=False):
    """`data` of an `image` event: a PNG file in the run directory (media/<name>[-<step>].png)."""

    path: str  # relative to the run directory
    name: str
    width: int
    height: int


class TableData(TypedDict, total=False):
    """`data` of a `table` event: rows saved as CSV in the run directory (media/<name>[-<step>].csv)."""

    path: str  # relative to the run directory
    name: str
    columns: list[str]
    rows: int  # how many rows the file holds


class HParamsData(TypedDict, total=False):
    """`data` of an `hparams` event: the run's final comparison, the parameters it is compared by and the
    metrics it is judged by (both flat {name: value})."""

    params: dict[str, Any]
    metrics: dict[str, float]


class DatasetData(TypedDict, total=False):
    """`data` of a `dataset` event: what the run trained on (runkit.repro.dataset.describe), also saved as
    dataset.json."""

    path: str  # dataset.json, relative to the run directory
    name: str
    source: str
    fingerprint: str  # a content hash of the tensors: two runs on different data never share it
    splits: dict[str, int]  # split -> number of samples
    classes: dict[str, dict[str, int]]  # split -> class -> count
    features: list[int]  # the shape of one sample


class ResumeData(TypedDict, total=False):
    """`data` of a `resume` event: where a resumed session takes over; later metrics for steps after
    `from_step` supersede what the interrupted session logged."""

    from_step: int | None
    from_epoch: int | None
    session: int
