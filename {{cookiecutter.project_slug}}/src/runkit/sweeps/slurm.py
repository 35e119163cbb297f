"""SLURM jobs that survive preemption and time limits: the same run continues in a requeued job.

`configs/hydra/launcher/slurm.yaml` builds `hydra_plugins.runkit_slurm_launcher.launcher.SlurmLauncher`:
hydra-submitit-launcher's `SlurmLauncher` with this requeueing mixed in. How a job ends early, and what
happens then:

- **Time limit** (submitit asks sbatch for `--signal=USR2@<signal_delay_s>`: SIGUSR2 that many seconds before
  the limit) or a scheduler that sends SIGUSR2 on preemption: the signal ends the run exactly like a SIGTERM
  (status `preempted`, its last checkpoint kept, every backend closed); the job then writes itself back into
  submitit's job file with `resume=<run id>` added to its overrides and requeues itself (`scontrol requeue`).
  Time limits count against `max_num_timeout`; past it the job ends and the sweep lists it `preempted`.
- **SIGTERM** (preemption with `PreemptMode=REQUEUE`, `scontrol requeue`): the run ends `preempted` the same
  way and the job file gets `resume=<run id>`; SLURM itself puts the job back in the queue.

The requeued job runs `resume=<run id>`: the same run directory and run id, the same run in every backend,
continued from its last checkpoint (steps logged after that checkpoint are superseded, so the history has
every step once), ending `completed` like an uninterrupted run. A run that had no checkpoint yet (stopped
in its first epoch) cannot be continued: the requeued job starts it again as a new run.

Imported only when the SLURM launcher is chosen (hydra-submitit-launcher is in the `sweeps` extra).
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from hydra.core.utils import JobReturn
from omegaconf import DictConfig

from runkit.overrides import override_key
from runkit.storage.layout import CHECKPOINTS_DIR, LAST_CHECKPOINT
from runkit.storage.status import Preempted
from runkit.sweeps.job import interrupted_run

log = logging.getLogger(__name__)

RESUME_KEY = "resume"


class _Ending:
    """How this job attempt is ending: set by the signal handler and the task wrapper."""

    def __init__(self) -> None:
        self.usr2 = False
        self.preempted: BaseException | None = None


class RequeueingJob:
    """Mixed into hydra-submitit-launcher's SLURM launcher (hydra_plugins/runkit_slurm_launcher): its jobs
    requeue themselves to continue their run. `__call__` is what runs inside each SLURM job."""

    def __call__(
        self,
        sweep_overrides: list[str],
        job_dir_key: str,
        job_num: int,
        job_id: str,
        singleton_state: dict[Any, Any],
    ) -> JobReturn:
        started = time.time()
        ending = _Ending()
        previous = signal.signal(signal.SIGUSR2, _usr2_handler(ending))
        task_function = getattr(self, "task_function")  # noqa: B009 - untyped in the base class
        setattr(self, "task_function", _catch_preemption(task_function, ending))  # noqa: B010
        try:
            result = cast(Any, super()).__call__(
                sweep_overrides, job_dir_key, job_num, job_id, singleton_state
            )
        finally:
            setattr(self, "task_function", task_function)  # noqa: B010
        if ending.preempted is None:
            signal.signal(signal.SIGUSR2, previous)
            return result  # type: ignore[no-any-return]
        args = (job_dir_key, job_num, job_id, singleton_state)
        if self._requeue(sweep_overrides, args, ending, started):
            # No result for submitit: the job is not over, its next attempt continues the run.
            raise ending.preempted
        return result  # type: ignore[no-any-return]

    def _requeue(self, overrides: list[str], args: tuple[Any, ...], ending: _Ending, started: float) -> bool:
        """Write the job back into submitit's job file, resuming its run; requeue it after a SIGUSR2.
        False when it must not run again (too many time limits)."""
        import submitit
        from submitit.core import utils

        env = submitit.JobEnvironment()
        paths = env.paths
        delayed = utils.DelayedSubmission.load(paths.submitted_pickle)
        timed_out = ending.usr2 and _timed_out(delayed._timeout_min, started)
        countdown = int(delayed._timeout_countdown) - int(timed_out)
        if countdown < 0:
            log.warning("job %s reached its time limit too often (max_num_timeout): not requeued", env.job_id)
            return False
        kept = [o for o in overrides if override_key(o) != RESUME_KEY]
        run = interrupted_run()
        if run is not None and (Path(run[1]) / CHECKPOINTS_DIR / LAST_CHECKPOINT).is_file():
            kept.append(f"{RESUME_KEY}={run[0]}")
            log.warning("job %s: run %s will continue in the requeued job", env.job_id, run[0])
        else:
            log.warning("job %s: the run has no checkpoint yet; the requeued job starts it again", env.job_id)
        again = utils.DelayedSubmission(self, kept, *args)
        again.set_timeout(delayed._timeout_min, countdown)
        with utils.temporary_save_path(paths.submitted_pickle) as tmp:
            again.dump(tmp)
        if ending.usr2:
            env._requeue(countdown)  # scontrol requeue <job id>; after a SIGTERM, SLURM requeues by itself
        return True


def _timed_out(timeout_min: float, started: float) -> bool:
    """submitit's rule: a SIGUSR2 late in the job's time is its time limit, an early one a preemption."""
    walltime, limit = time.time() - started, float(timeout_min) * 60
    return walltime >= min(limit * 0.8, limit - 600)


def _usr2_handler(ending: _Ending) -> Callable[[int, Any], None]:
    def on_usr2(signum: int, frame: Any) -> None:
        log.warning("received SIGUSR2 (time limit or preemption): ending the run to requeue it")
        first, ending.usr2 = not ending.usr2, True
        # A SIGTERM may already be ending the run (the scheduler sent both): only note the signal then.
        if first and sys.exc_info()[0] is None:
            raise Preempted(f"received signal {signum}")

    return on_usr2


def _catch_preemption(task: Any, ending: _Ending) -> Callable[[DictConfig], Any]:
    """The task function, with a preempted run turned into an ordinary (NaN) job result; its run and job
    record already say `preempted`."""

    def task_function(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except Preempted as exc:
            ending.preempted = exc
            return math.nan

    return task_function
