"""Multi-process training: one run, however many processes train it.

`torchrun --nproc_per_node=N train.py ...` (or a submitit job with `tasks_per_node > 1`) starts N copies of
the training script. `init_distributed()` finds out which copy this is, from torchrun's environment (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or submitit's (`submitit.JobEnvironment()`), and joins the
process group (gloo on the CPU, NCCL on GPUs). A plain `python train.py` gets a `Distributed` of world size 1
and no process group: every helper below is then a no-op that returns its input.

The run belongs to rank 0: it creates (or reopens) the run directory, captures, writes run.json, checkpoints
and events.jsonl, and owns the one delivery process. The other ranks write nothing but one small file each,
`ranks/<rank>.json` in the run directory: `running` when they start, then how they ended (`failed` with the
traceback, `preempted`, `aborted`, `completed`). Rank 0 reads these when its own session ends other than
normally (`resolve_ending`), so the run's status tells what happened to the job:

- a rank raises: its file says `failed` with its traceback. It exits, so rank 0's next collective fails (gloo
  raises on a dead peer) or torchrun sends rank 0 a SIGTERM: either way rank 0 ends, finds the peer's
  failure and records the run as `failed` with that rank's traceback (not its own broken-pipe error);
- a rank is killed (SIGKILL, out of memory): its file still says `running` and its process is gone: `crashed`;
- the job gets SIGTERM (a scheduler taking the nodes back): every rank is `preempted`, and so is the run.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from runkit.errors import UserError
from runkit.storage.jsonio import write_json
from runkit.storage.status import Status, status_for_exception

log = logging.getLogger(__name__)

T = TypeVar("T")

RANKS_DIR = "ranks"  # <run dir>/ranks/<rank>.json: how each rank other than 0 is doing
PEER_GRACE_SECONDS = 10.0  # how long rank 0 waits, after its session ends abnormally, for peers to report


@dataclass
class Distributed:
    """Where this process stands in the job. World size 1: a plain single-process run (no process group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    source: str | None = None  # "torchrun" | "submitit" | None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # --- collectives (no-ops on a single process) ----------------------------------------------------------
    def broadcast(self, obj: T) -> T:
        """Rank 0's `obj`, on every rank (picklable objects)."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box: list[Any] = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._object_device())
        result: T = box[0]
        return result

    def gather(self, obj: T) -> list[T]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of `values` over every rank (float64)."""
        if not self.enabled:
            return [float(v) for v in values]
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self._object_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return [float(v) for v in tensor.cpu().tolist()]

    def mean(self, value: Any) -> float:
        """The mean over ranks of a scalar (a float or a 0-d tensor)."""
        if not self.enabled:
            return float(value.item() if hasattr(value, "item") else value)
        import torch
        import torch.distributed as dist

        if isinstance(value, torch.Tensor):
            tensor = value.detach().reshape(()).to(torch.float64).clone()
        else:
            tensor = torch.tensor(float(value), dtype=torch.float64, device=self._object_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return float(tensor.item()) / self.world_size

    def share(self, produce: Callable[[], T]) -> T:
        """`produce()` run on rank 0 only, its result broadcast to every rank.

        If it raises on rank 0, the other ranks raise too (a UserError with the same message) instead of
        waiting forever in the broadcast; rank 0 re-raises its own exception.
        """
        if not self.enabled:
            return produce()
        if not self.is_main:
            result: T = self.receive()
            return result
        try:
            value = produce()
        except BaseException as exc:
            self.announce_error(exc)
            raise
        self.announce(value)
        return value

    def announce(self, value: Any) -> None:
        """Rank 0: send `value` to the ranks waiting in `receive()`."""
        self.broadcast(("ok", value, False))

    def announce_error(self, exc: BaseException) -> None:
        """Rank 0: make the ranks waiting in `receive()` raise instead (best effort: a peer may be gone)."""
        with contextlib.suppress(Exception):
            self.broadcast(("error", str(exc), isinstance(exc, UserError)))

    def receive(self) -> Any:
        """Ranks other than 0: what rank 0 announced; raises when rank 0 announced an error."""
        kind, payload, user_error = self.broadcast(("", None, False))
        if kind == "error":
            if user_error:
                raise UserError(str(payload))
            raise RuntimeError(f"rank 0 failed: {payload}")
        return payload

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def device(self, name: str) -> str:
        """The device this rank trains on: `auto`/`cuda` mean this rank's GPU (cuda:LOCAL_RANK) under NCCL."""
        if self.enabled and self.backend == "nccl" and name in ("auto", "cuda"):
            return f"cuda:{self.local_rank}"
        return name

    def record(self, seed: int) -> dict[str, Any]:
        """What run.json records under `distributed`."""
        from runkit.repro.seed import rank_seed

        return {
            "world_size": self.world_size,
            "backend": self.backend,
            "launcher": self.source,
            "rank_seeds": [rank_seed(seed, r, self.world_size) for r in range(self.world_size)],
        }

    def _object_device(self) -> Any:
        import torch

        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def close(self) -> None:
        """Leave the process group (at the end of the training function)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            # Free first what still holds the process group: a DistributedDataParallel model lives on in
            # reference cycles until the collector runs. Left to the interpreter's exit, the group is torn
            # down while the interpreter finalizes, and now and then a rank aborts after a finished run
            # ("terminate called without an active exception", SIGABRT): 10 of 110 two-rank runs on a
            # loaded 2-core machine without this collection, 0 of 110 with it, side by side.
            gc.collect()
            with contextlib.suppress(Exception):
                dist.destroy_process_group()


# --- joining the job ----------------------------------------------------------------------------------------
def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def detect() -> tuple[int, int, int, str | None]:
    """(rank, world size, local rank, launcher) from torchrun's or submitit's environment; (0, 1, 0, None)
    for a plain process. torchrun's variables win: submitit can start torchrun itself."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return _env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0), "torchrun"
    if "SUBMITIT_EXECUTOR" in os.environ or "SUBMITIT_LOCAL_JOB_ID" in os.environ:
        try:
            import submitit

            env = submitit.JobEnvironment()
            if env.num_tasks > 1:
                # The first host of the job is the rendezvous point; the port is derived from the job id so
                # that two jobs on the same node do not collide.
                os.environ.setdefault("MASTER_ADDR", env.hostnames[0] if env.hostnames else "127.0.0.1")
                digits = "".join(ch for ch in str(env.job_id) if ch.isdigit()) or "0"
                os.environ.setdefault("MASTER_PORT", str(20000 + int(digits[-6:]) % 20000))
                return env.global_rank, env.num_tasks, env.local_rank, "submitit"
        except (ImportError, RuntimeError, KeyError):
            pass
    return 0, 1, 0, None


def init_distributed(device: str = "auto") -> Distributed:
    """Join the job's process group when this process is one of several (torchrun, submitit tasks).

    gloo on the CPU, NCCL when `device` asks for CUDA (or is `auto` and CUDA is there). Returns a world of
    size 1, without any process group, for a plain `python train.py`.
    """
    rank, world_size, local_rank, source = detect()
    if world_size <= 1:
        return Distributed()
    import torch
    import torch.distributed as dist

    wants_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if wants_cuda and torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, init_method="env://")
    if rank == 0:
        log.info("%d processes (%s, started by %s)", world_size, backend, source)
    return Distributed(rank, world_size, local_rank, backend, source)


# --- the ranks/ folder: how rank 0 learns what happened to its peers ---------------------------------------
def rank_file(run_path: Path, rank: int) -> Path:
    return Path(run_path) / RANKS_DIR / f"{rank}.json"


def write_rank_state(run_path: Path, rank: int, status: str, error: str | None = None) -> None:
    """This rank's state in `ranks/<rank>.json` (atomically); a full disk must not hide the real error."""
    data = {
        "rank": rank,
        "status": status,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "time": time.time(),
        "error": error,
    }
    with contextlib.suppress(OSError):
        path = rank_file(run_path, rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, data)


def read_rank_state(run_path: Path, rank: int) -> dict[str, Any] | None:
    try:
        data = json.loads(rank_file(run_path, rank).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(state: dict[str, Any]) -> bool | None:
    """Whether the rank's process is alive: None when it cannot be told (another host)."""
    if state.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(state["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError, TypeError):
        return True
    # A zombie (exited, not yet reaped by torchrun) counts as dead.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{int(state['pid'])}/stat").read_text()
        if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
            return False
    return True


def peer_states(
    run_path: Path, world_size: int, grace: float = PEER_GRACE_SECONDS
) -> dict[int, dict[str, Any]]:
    """The state of every rank but 0, waiting up to `grace` seconds for each to be final or gone.

    A rank whose file still says `running` (or that never wrote one) once its process is gone, or when the
    grace period ends, is reported `crashed`.
    """
    deadline = time.monotonic() + grace
    states: dict[int, dict[str, Any]] = {}
    pending = set(range(1, world_size))
    while True:
        for rank in sorted(pending):
            state = read_rank_state(run_path, rank)
            if state is None:
                continue
            if state.get("status") != Status.RUNNING.value:
                states[rank] = state
                pending.discard(rank)
            elif _alive(state) is False:
                # Its file may land just after the process is reaped: one last look, then it died silently.
                time.sleep(0.05)
                again = read_rank_state(run_path, rank) or state
                if again.get("status") == Status.RUNNING.value:
                    again = {**again, "status": Status.CRASHED.value, "error": None}
                states[rank] = again
                pending.discard(rank)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for rank in pending:
        state = read_rank_state(run_path, rank) or {"rank": rank}
        states[rank] = {**state, "status": Status.CRASHED.value, "error": None}
    return states


def _is_collective_error(exc: BaseException | None) -> bool:
    """An exception that only says a peer went away (gloo/NCCL), not what went wrong."""
    if exc is None:
        return False
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"DistBackendError", "DistNetworkError", "DistError"}:
        return True
    text = str(exc)
    markers = ("Connection closed by peer", "Connection reset by peer", "Gloo", "NCCL", "gloo", "Broken pipe")
    return isinstance(exc, RuntimeError) and any(m in text for m in markers)


def resolve_ending(
    run_path: Path, world_size: int, exc: BaseException | None, status: Status, error: str | None
) -> tuple[Status, str | None]:
    """Rank 0's final (status, traceback) for the run, from its own ending and its peers' states.

    A normal end stays `completed`; Ctrl-C stays `aborted`. Otherwise the root cause wins: a rank that
    failed (its traceback), then a rank that died silently (`crashed`), then rank 0's own failure when it
    is a real one, then a SIGTERM (`preempted`).
    """
    if status in (Status.COMPLETED, Status.ABORTED) or world_size <= 1:
        return status, error
    peers = peer_states(run_path, world_size)
    own_is_root = status is Status.FAILED and not _is_collective_error(exc)
    if own_is_root:
        return status, error
    failed = sorted(r for r, s in peers.items() if s.get("status") == Status.FAILED.value)
    if failed:
        rank = failed[0]
        text = peers[rank].get("error") or "(no traceback)"
        return Status.FAILED, f"rank {rank} of {world_size} failed:\n{text}"
    crashed = sorted(r for r, s in peers.items() if s.get("status") == Status.CRASHED.value)
    if crashed:
        rank = crashed[0]
        pid = peers[rank].get("pid")
        return Status.CRASHED, (
            f"rank {rank} of {world_size} (pid {pid}) died without a word (killed, or out of memory)"
        )
    return status, error


@contextlib.contextmanager
def rank_session(dist: Distributed, run_path: Path) -> Iterator[None]:
    """A rank other than 0 inside the run: `ranks/<rank>.json` says it is running, then how it ended."""
    write_rank_state(run_path, dist.rank, Status.RUNNING.value)
    try:
        yield
    except BaseException as exc:
        status = status_for_exception(exc)
        error = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        write_rank_state(run_path, dist.rank, status.value, error if status is Status.FAILED else None)
        raise
    write_rank_state(run_path, dist.rank, Status.COMPLETED.value)
