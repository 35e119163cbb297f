"""Each parallel sweep job's share of the cores: torch's intra-op threads for a job of a joblib sweep.

W parallel jobs each running torch with one thread per core would oversubscribe the machine (W x cores
threads that spin and wait on each other). joblib's default `loky` backend already starts its workers with
OMP_NUM_THREADS (and MKL_NUM_THREADS, ...) = cores // n_jobs; the `multiprocessing` and `threading` backends
do not, and there this sets `torch.set_num_threads(max(1, cores // n_jobs))`. A user's own OMP_NUM_THREADS
(or one joblib set) is always left alone.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask; the CPU count where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def job_threads(launcher: Any, cores: int, environ: Any = os.environ) -> int | None:
    """The torch thread count for one job of a sweep run by `launcher` (hydra.launcher's config); None: leave
    torch's own choice (not joblib, or OMP_NUM_THREADS is set)."""
    target = str((launcher or {}).get("_target_") or "")
    if "joblib" not in target.lower() or environ.get("OMP_NUM_THREADS"):
        return None
    n_jobs = (launcher or {}).get("n_jobs")
    try:
        n = int(n_jobs) if n_jobs is not None else -1
    except (TypeError, ValueError):
        return None
    if n < 0:  # joblib: -1 all cores, -2 all but one, ...
        n = max(1, cores + 1 + n)
    return max(1, cores // max(n, 1))


def set_job_threads() -> int | None:
    """In a job of a joblib multirun: give torch its share of the cores. Returns the count it set (None:
    none)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        launcher = HydraConfig.get().launcher
    except (ImportError, ValueError):  # pragma: no cover - hydra is a required dependency
        return None
    threads = job_threads(launcher, usable_cores())
    if threads is None or "torch" not in sys.modules and not _has_torch():
        return None
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
        log.debug("torch threads for this job: %d", threads)
    return threads


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None
