"""System metrics of the training process, sampled by the shipper (never by the trainer itself).

Every `tracking.system_metrics_interval` seconds (0: off) the shipper samples the trainer (its pid is in
run.json) and the trainer's child processes (DataLoader workers):

    system/cpu_percent        CPU of the trainer and its children together (100 = one core busy)
    system/rss_mb             resident memory of the trainer
    system/children_rss_mb    resident memory of its children (DataLoader workers), 0 without any
    system/children           how many child processes it has (the shipper and its helpers not counted)
    system/gpu<i>/util_percent, system/gpu<i>/memory_used_mb, system/gpu<i>/memory_percent
                              each GPU through NVML (nvidia-ml-py), when it is installed and a GPU is there
    system/gpu_process_memory_mb   GPU memory held by the trainer and its children, over every GPU

Each sample is one line of system.jsonl in the run directory (written by the shipper alone: the trainer's
events.jsonl has one writer) and goes to every backend under `system/` (Backend.log_system). psutil is a
required dependency of a project; without it (or for a trainer on another host) sampling is skipped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from runkit.storage.layout import SYSTEM_FILE

log = logging.getLogger(__name__)

_MB = 1024.0 * 1024.0


class SystemSampler:
    """Samples one process tree: `sample()` returns {"system/<name>": value}, None once it is gone."""

    def __init__(self, pid: int, interval: float, run_dir: Path | None = None) -> None:
        self.pid = int(pid)
        self.interval = float(interval)
        self.path = Path(run_dir) / SYSTEM_FILE if run_dir is not None else None
        self.next_at = time.monotonic() + self.interval
        self._process: Any = None
        self._children: dict[int, Any] = {}
        self._nvml: Any = None
        self._gpus: list[Any] = []
        if self.interval <= 0:
            return
        try:
            import psutil
        except ImportError:
            log.info("psutil is not installed: no system metrics (pip install psutil)")
            return
        try:
            self._process = psutil.Process(self.pid)
            self._process.cpu_percent(None)  # the first call only starts the measurement
        except (psutil.Error, OSError) as exc:
            log.info("no system metrics for pid %s: %s", self.pid, exc)
            self._process = None
            return
        self._open_nvml()

    @property
    def enabled(self) -> bool:
        return self._process is not None

    def due(self, now: float | None = None) -> bool:
        return self.enabled and (now if now is not None else time.monotonic()) >= self.next_at

    def sample(self) -> dict[str, float] | None:
        """One sample of the process tree (and the GPUs); None when the trainer is gone."""
        import psutil

        self.next_at = time.monotonic() + self.interval
        process = self._process
        if process is None:
            return None
        try:
            with process.oneshot():
                cpu = process.cpu_percent(None)
                rss = process.memory_info().rss
            children = process.children(recursive=True)
        except (psutil.Error, OSError):
            self._process = None
            return None
        # The shipper is the trainer's child too, and so are the helpers a backend starts (W&B's core):
        # they are not the training's.
        ours = {os.getpid()}
        with contextlib.suppress(psutil.Error, OSError):
            ours.update(p.pid for p in psutil.Process().children(recursive=True))
        children = [child for child in children if child.pid not in ours]
        child_rss = 0
        alive: dict[int, Any] = {}
        for child in children:
            known = self._children.get(child.pid, child)
            try:
                cpu += known.cpu_percent(None)  # 0 at a child's first sample
                child_rss += known.memory_info().rss
                alive[child.pid] = known
            except (psutil.Error, OSError):
                continue
        self._children = alive
        metrics = {
            "system/cpu_percent": round(cpu, 2),
            "system/rss_mb": round(rss / _MB, 2),
            "system/children_rss_mb": round(child_rss / _MB, 2),
            "system/children": float(len(alive)),
        }
        metrics.update(self._gpu_metrics({self.pid, *alive}))
        return metrics

    def record(self, metrics: dict[str, float], wall: float) -> None:
        """Append the sample to system.jsonl (one JSON object per line, wall time first)."""
        if self.path is None:
            return
        with contextlib.suppress(OSError), open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": wall, **metrics}) + "\n")

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml = None

    # --- GPUs ----------------------------------------------------------------------------------------------
    def _open_nvml(self) -> None:
        if os.environ.get("RUNKIT_NO_NVML"):
            return
        try:
            import pynvml  # nvidia-ml-py

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._gpus = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._nvml = pynvml
        except Exception as exc:  # not installed, no driver, no GPU: skipped cleanly
            log.debug("no GPU metrics: %s", exc)
            self._nvml, self._gpus = None, []

    def _gpu_metrics(self, pids: set[int]) -> dict[str, float]:
        nvml = self._nvml
        if nvml is None:
            return {}
        out: dict[str, float] = {}
        held = 0.0
        for index, handle in enumerate(self._gpus):
            try:
                util = nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:
                continue
            out[f"system/gpu{index}/util_percent"] = float(util.gpu)
            out[f"system/gpu{index}/memory_used_mb"] = round(memory.used / _MB, 2)
            out[f"system/gpu{index}/memory_percent"] = round(100.0 * memory.used / max(memory.total, 1), 2)
            with contextlib.suppress(Exception):
                for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if proc.pid in pids and proc.usedGpuMemory:
                        held += proc.usedGpuMemory / _MB
        if self._gpus:
            out["system/gpu_process_memory_mb"] = round(held, 2)
        return out
