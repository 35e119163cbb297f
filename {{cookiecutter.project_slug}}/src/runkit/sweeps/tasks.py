"""The tasks of one multi-process sweep job (submitit's `tasks_per_node > 1`): one decision, one record.

A launcher that starts a job as N tasks runs the task function N times, each a rank of one DDP run. The job
is still ONE job of the sweep: rank 0 alone decides whether it runs (a `sweep.resume` that finds it done, a
sweep asked to stop), writes its record under jobs/ and owns its run; the other ranks follow rank 0's
decision and write nothing of the sweep's. They cannot ask rank 0 through the process group, which the
training function joins later (with the backend its device needs), so rank 0 leaves its decision in a small
hidden file of jobs/, named after the scheduler's job (and its restart count: a requeued SLURM job keeps its
id), which the others wait for.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from runkit.storage.jsonio import write_json
from runkit.storage.layout import SWEEP_JOB_DECISION_SUFFIX, SWEEP_JOBS_DIR

log = logging.getLogger(__name__)

DECISION_WAIT_SECONDS = 300.0  # rank 0 only reads a few small files before it decides


@dataclass
class Decision:
    """Rank 0's decision for its job: run it, or not (then what the job returns)."""

    run: bool
    value: float | None = None


@dataclass
class JobTasks:
    """Where this process stands among its job's tasks."""

    rank: int
    world_size: int
    key: str  # the scheduler's job id (and restart count): the same for every task of one attempt

    @property
    def leads(self) -> bool:
        return self.rank == 0

    def decision_file(self, sweep_dir: Path, job_num: int) -> Path:
        return Path(sweep_dir) / SWEEP_JOBS_DIR / f".{job_num:04d}-{self.key}{SWEEP_JOB_DECISION_SUFFIX}"

    def announce(self, sweep_dir: Path, job_num: int, decision: Decision) -> None:
        """Rank 0: tell the other tasks of this job what it decided."""
        path = self.decision_file(sweep_dir, job_num)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, asdict(decision))

    def await_decision(
        self, sweep_dir: Path, job_num: int, timeout: float = DECISION_WAIT_SECONDS
    ) -> Decision:
        """Another rank: rank 0's decision, once it is written (run, if it never comes: rank 0 is then
        gone, and training fails at once to join it)."""
        path = self.decision_file(sweep_dir, job_num)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                return Decision(run=bool(data["run"]), value=data.get("value"))
            except (OSError, ValueError, KeyError, TypeError):
                time.sleep(0.05)
        log.warning(
            "rank %d: no decision from rank 0 for job #%d in %gs; running it", self.rank, job_num, timeout
        )
        return Decision(run=True)


def job_tasks() -> JobTasks | None:
    """This process's place among its job's tasks, when the launcher started the job as several tasks
    (submitit with `tasks_per_node > 1` or several nodes); None for a job of one process."""
    from runkit.distributed import detect

    rank, world_size, _, source = detect()
    if world_size <= 1 or source != "submitit":
        return None
    import submitit

    job_id = str(submitit.JobEnvironment().job_id)
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    return JobTasks(rank, world_size, f"{job_id}-{restarts}")
