"""The task function's side of a sweep: what one job does around training, under any launcher.

- A single run: bad input (UserError) becomes one `ERROR: ...` line and exit status 1.
- A job of a multirun: its outcome goes to jobs/<NNNN>-<attempt>.json in the sweep directory. A failed job
  does NOT raise (Hydra's sweepers would stop the whole sweep): its run is already recorded as `failed`
  with traceback.txt, and the job returns NaN, which our Optuna sweeper records as a FAILED trial.
  `sweep.fail_fast=true`, or bad input (a UserError: the same for every job), asks the jobs that have not
  started yet to skip themselves; the sweep then ends at once with a summary that lists them as `skipped`.
- `sweep.resume=<sweep dir>`: a job whose overrides match a job that already completed in that sweep is
  not run again.

Importing this module registers the project's OmegaConf resolvers: launchers that unpickle the task
function in a fresh process (submitit) resolve the job's config before the task function runs.
"""

from __future__ import annotations

import logging
import math
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runkit.errors import UserError
from runkit.hydra_context import HydraContext, hydra_context
from runkit.storage.layout import SWEEP_JOB_TRACEBACK_SUFFIX
from runkit.storage.lookup import find_run
from runkit.storage.run_dir import id_from_name
from runkit.storage.status import Preempted, Status
from runkit.sweeps.callback import stop_with_job
from runkit.sweeps.records import (
    JobRecord,
    completed_job,
    mask_hydra_record,
    request_stop,
    resolve_sweep_dir,
    stop_reason,
)
from runkit.sweeps.resolvers import register_resolvers
from runkit.sweeps.tasks import Decision, JobTasks, job_tasks
from runkit.sweeps.threads import set_job_threads

log = logging.getLogger(__name__)

FAILED = float("nan")  # what a failed or skipped job returns (a sweeper must not take it as a score)

# The run of the last job in this process that was stopped (Ctrl-C, SIGTERM): (run id, run directory).
# A launcher that requeues preempted jobs (runkit.sweeps.slurm) continues it with `resume=<run id>`.
_interrupted: list[tuple[str, str]] = []


def interrupted_run() -> tuple[str, str] | None:
    """(run id, run directory) of the last job run in this process that ended by a signal, if any."""
    return _interrupted[-1] if _interrupted else None


def register_sweep_resolvers() -> None:
    """`${sweep_dir:<sweep.resume>,<runs_dir>,<new dir>}`: the directory a multirun writes to."""
    register_resolvers()
    if not OmegaConf.has_resolver("sweep_dir"):
        OmegaConf.register_new_resolver("sweep_dir", resolve_sweep_dir)


register_sweep_resolvers()


def run_task(cfg: DictConfig, train: Callable[[DictConfig], float]) -> float:
    """Run `train(cfg)` as a single run or as one job of a sweep; return the monitored metric's best value."""
    ctx = hydra_context()
    if ctx.sweep_dir is None:
        try:
            if (cfg.get("sweep") or {}).get("resume"):
                raise UserError(
                    "sweep.resume re-runs the unfinished jobs of a sweep: add -m and the sweep's overrides, "
                    "e.g. `python train.py -m lr=1e-3,1e-4 sweep.resume=<sweep dir>`"
                )
            return train(cfg)
        except UserError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            # The run is recorded as `aborted` and the tracker logged how to resume it: no traceback.
            print("interrupted (Ctrl-C)", file=sys.stderr)
            sys.exit(130)
        except Preempted:
            print("stopped by SIGTERM (preempted)", file=sys.stderr)
            sys.exit(143)
    return run_sweep_job(cfg, ctx, train)


def run_sweep_job(cfg: DictConfig, ctx: HydraContext, train: Callable[[DictConfig], float]) -> float:
    assert ctx.sweep_dir is not None and ctx.job_num is not None
    sweep_dir, job_num = ctx.sweep_dir, ctx.job_num
    tasks = job_tasks()
    if tasks is not None and not tasks.leads:
        return _follow_rank_zero(cfg, tasks, sweep_dir, job_num, train)

    def decide(decision: Decision) -> None:  # the other tasks of a multi-task job follow rank 0
        if tasks is not None:
            tasks.announce(sweep_dir, job_num, decision)

    policy = cfg.get("sweep") or {}
    label = " ".join(ctx.overrides)
    secret_keys = OmegaConf.select(cfg, "tracking.secret_keys", default=None) or []
    mask_hydra_record(sweep_dir, list(ctx.overrides), [str(k) for k in secret_keys])

    if policy.get("resume"):
        done = completed_job(sweep_dir, ctx.overrides)
        if done is not None:
            log.info(
                "job #%d (%s) already completed as run %s: not run again", job_num, label, done["run_id"]
            )
            value = done.get("value")
            decide(Decision(run=False, value=value))
            return float(value) if value is not None else FAILED

    record = JobRecord(sweep_dir, job_num, ctx.overrides)
    reason = stop_reason(sweep_dir)
    if reason is not None:
        log.warning("job #%d (%s) skipped: %s", job_num, label, reason)
        record.write(
            status=Status.SKIPPED.value, error=f"not run: {reason}", end_time=record.data["start_time"]
        )
        decide(Decision(run=False))
        return FAILED

    record.write()
    decide(Decision(run=True))
    set_job_threads()  # a joblib job's share of the cores (torch threads), unless OMP_NUM_THREADS says
    try:
        value = train(cfg)
    except UserError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        _record_failure(record, str(exc))
        request_stop(sweep_dir, f"job #{job_num} stopped the sweep: {exc}")
        return FAILED
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        _record_failure(record, error)
        log.error("job #%d (%s) failed: %s", job_num, label, error)
        if policy.get("fail_fast"):
            request_stop(sweep_dir, f"sweep.fail_fast: job #{job_num} failed ({error})")
        return FAILED
    except BaseException as exc:  # Ctrl-C, SIGTERM: the sweep itself is being stopped
        status = {"KeyboardInterrupt": Status.ABORTED, "Preempted": Status.PREEMPTED}.get(
            type(exc).__name__, Status.FAILED
        )
        record.finish(status, error=f"{type(exc).__name__}: {exc}", **_resumed_run(cfg, sweep_dir))
        if record.data.get("run_id") and record.data.get("run_dir"):
            _interrupted.append((str(record.data["run_id"]), str(sweep_dir / str(record.data["run_dir"]))))
        if status is not Status.FAILED:
            stop_with_job(status)  # the basic launcher: the sweep stops with its job (SystemExit)
        raise
    value = float(value) if value is not None else FAILED
    record.finish(
        Status.COMPLETED, value=None if math.isnan(value) else value, **_resumed_run(cfg, sweep_dir)
    )
    return value


def _follow_rank_zero(
    cfg: DictConfig, tasks: JobTasks, sweep_dir: Path, job_num: int, train: Callable[[DictConfig], float]
) -> float:
    """A task other than rank 0 of a multi-task job: train as one of its ranks when rank 0 runs the job, and
    record nothing of the sweep's (rank 0 records the job, and learns of this rank's fate through the run's
    ranks/ folder)."""
    decision = tasks.await_decision(sweep_dir, job_num)
    if not decision.run:
        return float(decision.value) if decision.value is not None else FAILED
    set_job_threads()
    try:
        value = train(cfg)
    except UserError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return FAILED
    except Exception as exc:  # the run records it (failed, with this rank's traceback) through rank 0
        log.error("rank %d of job #%d failed: %s: %s", tasks.rank, job_num, type(exc).__name__, exc)
        return FAILED
    return float(value) if value is not None else FAILED


def _resumed_run(cfg: DictConfig, sweep_dir: Path) -> dict[str, str]:
    """A job that continued a run (`resume=<run>`, e.g. a requeued SLURM job) ran in that run's directory,
    which it did not create: name it in the job's record (a new run is found by job number and process)."""
    ref = cfg.get("resume")
    if not ref:
        return {}
    try:
        run = find_run(str(ref), Path(cfg.paths.runs_dir))
    except (UserError, OSError):
        return {}
    if run.path.parent.resolve() != sweep_dir.resolve():
        return {}
    return {"run_dir": run.path.name, "run_id": id_from_name(run.path)}


def _record_failure(record: JobRecord, error: str) -> None:
    """Record a failed attempt; a failure before the run directory existed keeps its traceback here."""
    tb_file = record.path.with_suffix(SWEEP_JOB_TRACEBACK_SUFFIX)
    tb_file.parent.mkdir(parents=True, exist_ok=True)
    tb_file.write_text(traceback.format_exc(), encoding="utf-8")
    fields: dict[str, Any] = {"error": error.strip().splitlines()[0] if error.strip() else error}
    fields["traceback"] = tb_file.relative_to(record.sweep_dir).as_posix()
    record.finish(Status.FAILED, **fields)
