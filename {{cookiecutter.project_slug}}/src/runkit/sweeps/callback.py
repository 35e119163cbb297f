"""Hydra callback for multiruns: the sweep record, backend grouping and the end-of-sweep summary.

Runs in the process that launches the jobs (whatever the launcher):
- on_multirun_start: creates the sweep directory and sweep.json (overrides grid, launcher, sweeper), and
  lets each chosen backend open what groups the sweep's runs (MLflow parent run, W&B group, ...); what
  they return goes to sweep.json["backends"], where each job's shipper finds it.
- on_multirun_end: reads the jobs back from disk (sweep_summary.py), prints a table, writes summary.csv and
  summary.md, completes sweep.json, closes the backends' sweep objects, and exits with status 1 when a job
  did not complete.
An interrupted sweep (Ctrl-C, an error in Hydra) is still summarised and closed, at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import shlex
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from runkit.errors import UserError
from runkit.overrides import override_key
from runkit.plain import plain, plain_dict
from runkit.storage.layout import SWEEP_FILE, SWEEP_SUMMARY_MD
from runkit.storage.records import JobAttempt, SweepRecord
from runkit.storage.secrets import Secrets
from runkit.storage.status import Preempted, Status
from runkit.sweeps.grouping import job_key
from runkit.sweeps.lookup import find_sweep, sweep_id_of
from runkit.sweeps.records import clear_stop, read_sweep, request_stop, stop_reason, write_sweep

if TYPE_CHECKING:
    from runkit.sweeps.summary import SweepSummary

log = logging.getLogger(__name__)


def _target_of(node: Any) -> str | None:
    target = (node or {}).get("_target_") if isinstance(node, dict | DictConfig) else None
    return str(target) if target else None


def sweep_grid(overrides: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Split command-line overrides into the swept ones ({key: values}) and the fixed ones ({key: value})."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    grid: dict[str, list[str]] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override_key(override.get_key_element())  # `+x` and `x` are one parameter
        if override.is_sweep_override():
            try:
                grid[key] = list(override.sweep_string_iterator())
            except Exception:  # e.g. interval(...) sweeps, meaningful only to a search sweeper
                grid[key] = [override.get_value_element_as_str()]
        else:
            fixed[key] = override.get_value_element_as_str()
    return grid, fixed


class SweepCallback(Callback):
    """Registered in configs/hydra/default.yaml (hydra.callbacks.sweep)."""

    def __init__(self) -> None:
        self._state: dict[str, Any] | None = None

    # The launchers pickle Hydra's context, callbacks included, into every job: the backends' sweep objects
    # stay in the launching process.
    def __getstate__(self) -> dict[str, Any]:
        return {"_state": None}

    # --- start -------------------------------------------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._start(config)
        except UserError as exc:
            if self._state is not None:  # sweep.json exists: say how it ended
                self._state["ended"] = True
                record = self._state["record"]
                record.update(status=Status.FAILED.value, end_time=time.time(), stopped=str(exc))
                write_sweep(self._state["dir"], record)
            _fail(str(exc))

    def _start(self, config: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(config)  # `${hydra:...}` in paths.* needs it, as in the launchers
        sweep_dir = Path(str(config.hydra.sweep.dir))
        policy = config.get("sweep") or {}
        resume = policy.get("resume")
        previous = SweepRecord()
        if resume:
            if not (sweep_dir / SWEEP_FILE).is_file():
                # raises the clear error
                find_sweep(str(resume), Path(str(config.paths.runs_dir)), option="sweep.resume")
                raise UserError(f"sweep.resume={resume}: {sweep_dir} is not a sweep directory")
            previous = read_sweep(sweep_dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        clear_stop(sweep_dir)

        secrets = Secrets(OmegaConf.select(config, "tracking.secret_keys", default=None))
        overrides = secrets.overrides(str(o) for o in config.hydra.overrides.task)
        if previous and job_key(previous.get("overrides") or []) != job_key(overrides):
            log.warning(
                "sweep.resume: these overrides differ from the sweep's first ones (%s); jobs are matched to "
                "completed ones by their overrides, so unmatched jobs run as new jobs of this sweep",
                " ".join(previous.get("overrides") or []),
            )
        grid, fixed = sweep_grid(overrides)
        sweeper = config.hydra.get("sweeper")
        params = sweeper.get("params") if sweeper is not None else None
        search_space = plain(params) if params else None
        now = time.time()
        record: SweepRecord = {
            **previous,
            "id": sweep_id_of(sweep_dir),
            "name": str(config.name),
            "dir": str(sweep_dir),
            "status": Status.RUNNING.value,
            "start_time": previous.get("start_time", now),
            "end_time": None,
            "argv": secrets.overrides(sys.argv),
            "host": socket.gethostname(),
            "pid": os.getpid(),  # the launching process; jobs run here only under the basic launcher
            "overrides": overrides,
            "grid": grid,
            "fixed": fixed,
            "search_space": search_space,
            "sweeper": _target_of(sweeper),
            "launcher": _target_of(config.hydra.get("launcher")),
            "monitor": {"metric": str(config.monitor.metric), "mode": str(config.monitor.mode)},
            "fail_fast": bool(policy.get("fail_fast")),
            "backends": dict(previous.get("backends") or {}),
        }
        if previous:
            record["resumes"] = [
                *previous.get("resumes", []),
                {"time": now, "argv": secrets.overrides(sys.argv)},
            ]
        self._state = {
            "dir": sweep_dir,
            "record": record,
            "pid": os.getpid(),
            "session_start": now,
            "always_show": [*grid, *(search_space or {})],
            "backends": {},
            "ended": False,
        }
        write_sweep(sweep_dir, record)  # before any backend: a failure below still leaves a record
        self._open_backends(config, previous)
        write_sweep(sweep_dir, record)
        atexit.register(self._at_exit)
        _launched[:] = [self]
        self._catch_stop_signals()

    # --- stopped: Ctrl-C or SIGTERM reaching the launching process -----------------------------------------
    def _catch_stop_signals(self) -> None:
        """Ctrl-C or SIGTERM in the launching process stops the sweep in order: no new job starts (the stop
        file, which every job checks first), jobs running in other processes (joblib's workers) end their
        runs as aborted or preempted, then the sweep record and every backend's sweep object are closed,
        and the process exits with one line. A second signal skips the wait for the running jobs."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, self._on_stop)

    def _on_stop(self, signum: int, frame: Any) -> None:
        state = self._state
        stop = KeyboardInterrupt if signum == signal.SIGINT else Preempted
        if state is None or state["ended"] or os.getpid() != state["pid"] or state.get("stopping"):
            raise stop(f"received signal {signum}")
        status = Status.ABORTED if signum == signal.SIGINT else Status.PREEMPTED
        sweep_dir: Path = state["dir"]
        self._stopping(status)
        since = float(state["session_start"]) - 1
        if _job_running_here(sweep_dir, since):
            # Hydra's basic launcher runs the job in this very process: stop it as a single run is stopped
            # (its run ends aborted or preempted); its job wrapper then ends the sweep (stop_with_job).
            raise stop(f"received signal {signum}")
        # Workers in this process group got a terminal's Ctrl-C themselves; SIGTERM (a scheduler, `kill`)
        # reaches this process only, so it is passed on: their runs end as preempted.
        if signum == signal.SIGTERM or _running_jobs(sweep_dir, 10.0, since):
            _signal_children(signum)
        _running_jobs(sweep_dir, STOP_WAIT, since)
        self._stopped(status)

    def _stopping(self, status: Status) -> None:
        """The first signal: no new job starts (the stop file, which every job checks first)."""
        assert self._state is not None
        if self._state.get("stopping"):
            return
        self._state["stopping"] = status.value
        name = _SIGNAL_NAMES[status]
        request_stop(self._state["dir"], f"the sweep was stopped ({name})")
        print(f"sweep {self._state['record']['id']}: stopping ({name}); no new job starts", file=sys.stderr)

    def _stopped(self, status: Status) -> None:
        """Close the stopped sweep (summary, record, every backend's sweep object) and exit with one line."""
        assert self._state is not None
        self._finish(status)
        record, sweep_dir = self._state["record"], self._state["dir"]
        name = _SIGNAL_NAMES[status]
        print(f"ERROR: sweep {record['id']} {status.value} ({name}); see {sweep_dir}", file=sys.stderr)
        again = " ".join(shlex.quote(str(o)) for o in record.get("overrides") or [])
        print(
            f"continue it (its unfinished jobs) with: python train.py -m {again} sweep.resume={sweep_dir}",
            file=sys.stderr,
        )
        raise SystemExit(130 if status is Status.ABORTED else 143)

    def _open_backends(self, config: DictConfig, previous: SweepRecord) -> None:
        from hydra.utils import instantiate

        from runkit.tracking.backends.base import SweepInfo
        from runkit.tracking.start import chosen_backends

        assert self._state is not None
        record = self._state["record"]
        resolved = {k: v for k, v in plain_dict(config).items() if k != "hydra"}
        for name, spec in chosen_backends(config).items():
            info = SweepInfo(
                sweep_id=record["id"],
                name=record["name"],
                sweep_dir=self._state["dir"],
                config=resolved,
                previous=dict((previous.get("backends") or {}).get(name) or {}),
            )
            try:
                backend = instantiate(spec)
                record["backends"][name] = dict(backend.open_sweep(info) or {})
            except Exception as exc:
                self._close_backends(Status.FAILED, {})
                raise UserError(f"tracker {name}: cannot open the sweep: {exc}") from exc
            self._state["backends"][name] = (backend, info)

    # --- end ---------------------------------------------------------------------------------------------
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._state is None or self._state["ended"]:
            return
        summary = self._finish(None)
        if not summary.all_completed:
            counts = ", ".join(
                f"{n} {s}" for s, n in sorted(summary.counts.items()) if s != Status.COMPLETED.value
            )
            reason = stop_reason(self._state["dir"]) or self._state["record"].get("stopped")
            why = f" ({reason})" if reason else ""
            _fail(
                f"sweep {self._state['record']['id']}: {counts} of {len(summary.rows)} jobs{why}; "
                f"see {self._state['dir'] / SWEEP_SUMMARY_MD}"
            )

    def _at_exit(self) -> None:
        """A sweep that ended without on_multirun_end (Ctrl-C, an exception): summarise and close it."""
        if self._state is None or self._state["ended"] or os.getpid() != self._state["pid"]:
            return
        # How the sweep ended, when Python printed why: Ctrl-C, SIGTERM (tracking.status.Preempted), other.
        ended_by = type(getattr(sys, "last_value", None)).__name__
        status = {"KeyboardInterrupt": Status.ABORTED, "Preempted": Status.PREEMPTED}.get(
            ended_by, Status.FAILED
        )
        try:
            self._finish(status)
        except Exception as exc:  # at exit, never raise
            print(f"WARNING: could not summarise sweep {self._state['dir']}: {exc}", file=sys.stderr)

    def _finish(self, status: Status | None) -> SweepSummary:
        from runkit.console import console
        from runkit.sweeps.summary import build_summary, summary_tables, write_summary_files

        assert self._state is not None
        self._state["ended"] = True
        sweep_dir: Path = self._state["dir"]
        record = self._state["record"]
        monitor = record["monitor"]
        summary = build_summary(sweep_dir, monitor["metric"], monitor["mode"], self._state["always_show"])
        title = f"sweep {record['id']} ({record['name']})"
        write_summary_files(summary, sweep_dir, title)
        for renderable in summary_tables(summary, title, sweep_dir):
            console.print(renderable)
        status = status or (Status.COMPLETED if summary.all_completed else Status.FAILED)
        now = time.time()
        reason = stop_reason(sweep_dir)
        record.update(
            status=status.value,
            end_time=now,
            duration_s=round(now - record["start_time"], 3),
            stopped=reason,
            **summary.to_dict(),
        )
        write_sweep(sweep_dir, record)
        # The stop file stays (the next session of the sweep clears it when it starts): a joblib worker that
        # outlives the stop takes the next queued job after this, and must find it there and skip the job.
        # The backends get the sweep's outcome, not every job (each job is already its own run there).
        self._close_backends(status, {k: v for k, v in summary.to_dict().items() if k != "jobs"})
        return summary

    def _close_backends(self, status: Status, summary: dict[str, Any]) -> None:
        assert self._state is not None
        for name, (backend, info) in list(self._state["backends"].items()):
            try:
                backend.close_sweep(info, status.value, summary)
            except Exception as exc:  # the sweep's own record is complete; say so and go on
                print(f"WARNING: tracker {name}: could not close the sweep: {exc}", file=sys.stderr)
        self._state["backends"] = {}


STOP_WAIT = 120.0  # seconds a stopped sweep waits for its running jobs to end their runs
_SIGNAL_NAMES = {Status.ABORTED: "Ctrl-C", Status.PREEMPTED: "SIGTERM"}
_launched: list[SweepCallback] = []  # the sweep this process launches, for stop_with_job


def stop_with_job(status: Status) -> None:
    """A job that runs in the launching process itself (Hydra's basic launcher) was stopped by Ctrl-C or
    SIGTERM (its run is recorded as aborted or preempted): the sweep stops with it, closed as the sweep
    of a parallel launcher is (SystemExit, one line). Returns in a worker process, which launched nothing."""
    for callback in _launched:
        state = callback._state
        if state is not None and not state["ended"] and state["pid"] == os.getpid():
            callback._stopping(status)
            callback._stopped(status)


def _session_jobs_running(sweep_dir: Path, since: float) -> list[JobAttempt]:
    """The jobs of this session of the sweep (started after `since`) whose record says running."""
    from runkit.sweeps.records import read_jobs

    return [
        job
        for job in read_jobs(sweep_dir)
        if job.get("status") == Status.RUNNING.value and float(job.get("start_time") or 0) >= since
    ]


def _job_running_here(sweep_dir: Path, since: float) -> bool:
    """Whether a job of this session of the sweep runs in this process (Hydra's basic launcher)."""
    return any(job.get("pid") == os.getpid() for job in _session_jobs_running(sweep_dir, since))


def _running_jobs(sweep_dir: Path, timeout: float, since: float = 0.0) -> bool:
    """Wait up to `timeout` seconds until no job of this session of the sweep (started after `since`) is
    running in a live process; returns whether some still are."""
    from runkit.storage.liveness import process_alive

    deadline = time.monotonic() + timeout
    while True:
        running = [
            job
            for job in _session_jobs_running(sweep_dir, since)
            if job.get("pid") != os.getpid()  # a job of this process (basic launcher) has stopped with it
            and (not job.get("pid") or process_alive(int(job["pid"])))
        ]
        if not running or time.monotonic() >= deadline:
            return bool(running)
        time.sleep(0.2)


def _signal_children(signum: int) -> None:
    """Send `signum` to this process's children (a launcher's workers; Linux /proc, elsewhere nothing)."""
    me = os.getpid()
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                os.kill(int(entry.name), signum)
        except (OSError, ValueError, IndexError):
            continue


def _fail(message: str) -> None:
    """One line, exit status 1. SystemExit passes Hydra's callback guard (which only catches Exception)."""
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)
