"""The records the kit keeps on disk, typed: run.json, sweep.json and a sweep job's
jobs/<NNNN>-<attempt>.json.

Every field is optional to the type checker (`total=False`): records written by older versions lack newer
fields, and readers must cope. Status fields hold a `Status` value (storage/status.py) as a string.
"""

from __future__ import annotations

from typing import Any, TypedDict


class SweepLink(TypedDict, total=False):
    """run.json["sweep"]: the sweep a run is a job of."""

    dir: str  # the sweep directory
    id: str  # the sweep id
    job_num: int  # Hydra's job number within the sweep


class ResumeSession(TypedDict, total=False):
    """One entry of run.json["resumes"]: a later session that continued the run in place."""

    time: float
    overrides: list[str]  # that session's command-line overrides
    from_step: int
    from_epoch: int
    git: dict[str, Any]
    config_hash: str
    captures: str  # resumes/<n>: that session's capture files


class RunRecord(TypedDict, total=False):
    """run.json: the run record, written by the training process (and by the shipper after it died)."""

    schema: int
    id: str
    name: str
    tags: list[str]
    status: str  # a Status value
    start_time: float
    heartbeat: float
    end_time: float | None
    duration_s: float
    host: str
    pid: int
    argv: list[str]
    error: str | None
    seed: int | None
    overrides: list[str]  # the run's effective overrides (overrides.yaml)
    backends: dict[str, Any]  # per backend: its ids and urls, what it received
    rerun_of: str | None  # `runs rerun`: the run this one repeats
    init_from: dict[str, Any]  # init_from: where the initial weights came from
    sweep: SweepLink
    resumed: bool
    resume_step: int
    resumes: list[ResumeSession]
    # capture (repro/capture.py)
    git: dict[str, Any]  # commit, branch, dirty, remote, diff, diff_truncated
    config_hash: str
    environment: dict[str, Any]
    deterministic: bool
    capture_seconds: float
    capture_timings: dict[str, float]
    warnings: list[str]


class SweepResume(TypedDict, total=False):
    """One entry of sweep.json["resumes"]: a later session of the sweep (`sweep.resume=`)."""

    time: float
    argv: list[str]


class SweepRecord(TypedDict, total=False):
    """sweep.json: the sweep record, written by the launching process alone (at the start and at the end)."""

    schema: int
    id: str
    name: str
    dir: str
    status: str  # a Status value
    start_time: float
    end_time: float | None
    duration_s: float
    argv: list[str]
    host: str
    pid: int  # the launching process
    overrides: list[str]  # the multirun's task overrides
    grid: dict[str, list[str]]  # swept override key -> its values
    fixed: dict[str, str]  # fixed override key -> its value
    search_space: Any  # hydra.sweeper.params (a search sweeper's space), or None
    sweeper: str | None  # the sweeper's _target_
    launcher: str | None  # the launcher's _target_
    monitor: dict[str, str]  # {"metric", "mode"}
    fail_fast: bool
    backends: dict[str, dict[str, Any]]  # per backend: what groups the sweep's runs there
    resumes: list[SweepResume]
    stopped: str | None  # why the sweep was stopped early
    # the summary (sweeps/summary.py SweepSummary.to_dict), written at the end
    varying: list[str]
    counts: dict[str, int]
    best: dict[str, Any] | None
    jobs: list[dict[str, Any]]
    seed_groups: list[dict[str, Any]] | None


class JobAttempt(TypedDict, total=False):
    """jobs/<NNNN>-<attempt>.json: one attempt of one sweep job, written only by that job."""

    schema: int
    job_num: int
    attempt: str
    overrides: list[str]
    status: str  # a Status value
    host: str
    pid: int
    start_time: float
    heartbeat: float
    end_time: float | None
    duration_s: float | None
    run_dir: str | None  # the job's run directory, relative to the sweep directory
    run_id: str | None
    value: float | None  # the monitored metric's best value
    error: str | None
    traceback: str | None  # relative to the sweep directory
    _file: str  # set by the reader: the record's file name
