"""How low can `log_metrics` go in Python? The tracker's hot path against the least a Python method can cost.

Bakes the default project, then measures each variant between ~1 ms training steps with the generated
kit's own harness (`benchmarks/bench_tracking.py`: shuffled blocks without logging, with logging and
with a stopwatch; trimmed means; a 95 % bootstrap interval), each in a fresh interpreter, variants
alternating:

    floor       appending the dict to a list
    noop        a method with log_metrics' signature that does nothing
    names       ... that also sets the step and takes the names (tuple(metrics)), as any durable log must
    binary      a binary journal: one struct.pack_into per call into a memory-mapped file (no JSON), with
                the names looked up, a sequence number, the wall time and the summary's reference
    tracker     ExperimentTracker.log_metrics (tracker=local): the packed JSON line in events.jsonl

Usage: python scripts/bench_hot_path.py [--repeats 2] [--rounds 300] [--variants ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import mmap
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parents[1]
VARIANTS = ("floor", "noop", "names", "binary", "tracker")


class Noop:
    def __init__(self) -> None:
        self._step = 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> bool:
        return False


class Names(Noop):
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> bool:
        if step is None:
            step = self._step + 1
        self._step = step = int(step)
        self.names = tuple(metrics)
        return False


class BinaryJournal(Noop):
    """What the hot path would be without JSON: fixed-layout records packed straight into a shared map."""

    def __init__(self, path: Path, size: int = 1 << 26) -> None:
        super().__init__()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        os.posix_fallocate(fd, 0, size)
        self._mm = mmap.mmap(fd, size)
        self._mm.madvise(23, 0, size)  # MADV_POPULATE_WRITE, as the real log does per window
        self._forms: dict[tuple[str, ...], tuple[Any, int, int]] = {}
        self._next_seq = itertools.count(1).__next__
        self._off, self._limit = 0, size
        self.pending: dict[tuple[str, ...], int] = {}
        self.monitor, self.best = "val/acc", float("-inf")

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> bool:
        if step is None:
            step = self._step + 1
        self._step = step = int(step)
        names = tuple(metrics)
        form = self._forms.get(names)
        if form is None:
            record = struct.Struct(f"<IIqqd{len(names)}d")
            form = self._forms[names] = (record.pack_into, record.size, len(self._forms) + 1)
        off = self._off
        if off + form[1] > self._limit:
            raise ValueError("the journal is full")
        self._off = off + form[1]
        form[0](self._mm, off, form[2], form[1], self._next_seq(), step, time.time(), *metrics.values())
        self.pending[names] = off
        if self.monitor in metrics:
            self.best = max(self.best, metrics[self.monitor])
        return False


def child(variant: str, project: Path, rounds: int, block: int) -> dict[str, Any]:
    os.environ["BENCH_PROJECT"] = str(project)  # the benchmarks' example project: this bake
    sys.path[:0] = [str(TEMPLATE / "benchmarks"), str(project / "src")]
    import bench_tracking as bench

    tmp = Path(tempfile.mkdtemp(prefix="bench-hot-path-"))
    train_step = bench.Step(1.0)
    if variant == "tracker":
        case = bench.make_case("tracker:local", tmp)
        case.open()
    else:
        case = bench.Case(tmp)
        if variant != "floor":
            target = {"noop": Noop, "names": Names}.get(variant)
            logger = target() if target else BinaryJournal(tmp / "journal.bin")
            case.log = lambda step, values: logger.log_metrics(values, step=step)  # type: ignore[method-assign]
    figures, _ = bench.in_training_loop(case, train_step, rounds, block)
    return {"variant": variant, **figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="rounds of every variant, alternating")
    parser.add_argument("--rounds", type=int, default=300, help="rounds of blocks per measurement")
    parser.add_argument("--block", type=int, default=10, help="training steps per block")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # variant, baked project
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.rounds, args.block)))
        return 0

    from cookiecutter.main import cookiecutter

    with tempfile.TemporaryDirectory() as tmp:
        answers = {"git_init": "no", "use_mlflow": "no", "use_wandb": "no", "use_tensorboard": "no"}
        answers["default_tracker"] = "local"
        project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=tmp, extra_context=answers))
        results: dict[str, list[dict[str, Any]]] = {v: [] for v in args.variants}
        for _ in range(args.repeats):
            for variant in args.variants:
                print(f"running {variant} ...", file=sys.stderr, flush=True)
                cmd = [sys.executable, __file__, "--child", variant, str(project)]
                cmd += ["--rounds", str(args.rounds), "--block", str(args.block)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                results[variant].append(json.loads(out.strip().splitlines()[-1]))
    print(
        "\nµs of one call between ~1 ms training steps, and the slowdown of those steps "
        f"({os.cpu_count()} CPUs)"
    )
    print(f"{'variant':<10}{'µs in the loop':>22}{'slowdown (95 % interval)':>60}")
    for variant, runs in results.items():
        in_loop = " / ".join(f"{r['in_loop_us']:.1f}" for r in runs)
        slow = " / ".join(
            f"{r['slowdown']:.1%} ({r['slowdown_ci'][0]:.1%} to {r['slowdown_ci'][1]:.1%})" for r in runs
        )
        print(f"{variant:<10}{in_loop:>22}{slow:>60}")
    means = {v: statistics.fmean(r["in_loop_us"] for r in runs) for v, runs in results.items()}
    if "tracker" in means:
        print(
            "\nratio to the tracker's time in the loop: "
            + ", ".join(f"{v} {m / means['tracker']:.2f}" for v, m in means.items())
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
