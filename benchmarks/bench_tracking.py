"""What tracking costs the training loop: raw backend calls against our ExperimentTracker, side by side.

    python benchmarks/bench_tracking.py [--steps 2000] [--step-ms 1.0] [--cases ...]

Every case runs in a fresh interpreter (so one library's threads or imports never disturb another case) and
logs 10 scalars per step:

    floor                  appending the dict to a list: the least any logger can cost
    raw tensorboard        torch's SummaryWriter.add_scalar x10
    raw mlflow             mlflow.log_metrics(dict, step) on a sqlite store (one call per step)
    raw wandb              wandb.log(dict) offline
    tracker <backends>     ExperimentTracker.log_metrics with tracker=local, each backend alone, all three

Columns: the calling thread's cost per step (µs) and its ratio to the floor; the same call's cost inside a
loop of ~1 ms CPU-bound training steps (torch, 1 thread), where the step has evicted the logger's code and
data from the CPU caches; the slowdown of that loop when each step also logs, from short blocks without and
with logging in a shuffled order (trimmed means, in wall time and in the thread's CPU time, with a 95 %
bootstrap interval); for our tracker also start_run() and finish() time (finish waits until every backend
has everything), whether every backend really holds every point (read back from its own storage), and which
backend libraries the training process imported (the shipper process imports them, not it).
Targets: < 10 µs per step whatever the backends, < 1 % slowdown with all three.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from example_project import ROOT  # noqa: E402 - bakes the example project, puts its src/ on the path

BACKENDS = ("tensorboard", "mlflow", "wandb")
LIBRARIES = ("torch", "tensorboard", "mlflow", "wandb")
N_SCALARS = 10
TARGET_US, TARGET_SLOWDOWN = 10.0, 0.01
ARMS = ("none", "log", "timed")  # the kinds of block in the slowdown measurement


def available(name: str) -> bool:
    return (ROOT / "configs" / "tracker" / f"{name}.yaml").exists() and importlib.util.find_spec(
        name
    ) is not None


def default_cases() -> list[str]:
    have = [b for b in BACKENDS if available(b)]
    cases = ["floor", *(f"raw:{b}" for b in have), "tracker:local", *(f"tracker:{b}" for b in have)]
    if len(have) > 1:
        cases.append("tracker:" + ",".join(have))
    return cases


# --- a ~1 ms CPU-bound training step ------------------------------------------------------------------------
class Step:
    """k matrix products of 128x128 floats on one thread, k chosen so that one step takes `ms`."""

    def __init__(self, ms: float) -> None:
        import torch

        torch.set_num_threads(1)
        self.a = torch.randn(128, 128)
        self.b = torch.randn(128, 128)
        self.k = 1
        for _ in range(3):  # calibrate
            t = time.perf_counter()
            for _ in range(50):
                self()
            per = (time.perf_counter() - t) / 50
            self.k = max(1, round(self.k * ms / 1000 / per))

    def __call__(self) -> None:
        c = self.a
        for _ in range(self.k):
            c = self.a @ self.b
        del c


# --- the loggers --------------------------------------------------------------------------------------------
def metrics(step: int) -> dict[str, float]:
    return {f"train/m{i}": step * 0.001 + i for i in range(N_SCALARS)}


class Case:
    """log(step) is what is measured; open()/close() are not part of the per-step cost."""

    imported_before: set[str] = set()

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.store: list[dict[str, float]] = []

    def open(self) -> None: ...

    def log(self, step: int, values: dict[str, float]) -> None:
        self.store.append(values)

    def close(self) -> dict[str, Any]:
        return {}


class RawTensorBoard(Case):
    def open(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.tmp / "tb"))

    def log(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> dict[str, Any]:
        self.writer.close()
        return {}


class RawMlflow(Case):
    def open(self) -> None:
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{self.tmp / 'mlruns.db'}")
        mlflow.set_experiment("bench")
        self.mlflow = mlflow
        mlflow.start_run()

    def log(self, step: int, values: dict[str, float]) -> None:
        self.mlflow.log_metrics(values, step=step)

    def close(self) -> dict[str, Any]:
        self.mlflow.end_run()
        return {}


class RawWandb(Case):
    def open(self) -> None:
        import wandb

        self.run = wandb.init(
            project="bench",
            mode="offline",
            dir=str(self.tmp),
            settings=wandb.Settings(silent=True, console="off"),
        )

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self) -> dict[str, Any]:
        self.run.finish()
        return {}


class Tracker(Case):
    def __init__(self, tmp: Path, backends: list[str]) -> None:
        super().__init__(tmp)
        self.backends = backends
        self.logged: list[int] = []

    def open(self) -> None:
        from hydra import compose, initialize_config_dir

        sys.path.insert(0, str(ROOT / "src"))
        from runkit.sweeps.resolvers import register_resolvers
        from runkit.tracking import start_run

        self.start_run = start_run
        register_resolvers()
        overrides = [
            f"paths.root={ROOT}",
            f"paths.runs_dir={self.tmp / 'runs'}",
            f"tracker=[{','.join(self.backends)}]",
            "name=bench",
        ]
        if "mlflow" in self.backends:
            overrides.append(f"tracker.mlflow.tracking_uri=sqlite:///{self.tmp / 'mlruns.db'}")
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        t = time.perf_counter()
        self.tracker = self.start_run(cfg)
        self.start_s = time.perf_counter() - t

    def log(self, step: int, values: dict[str, float]) -> None:
        self.tracker.log_metrics(values, step=step)

    def close(self) -> dict[str, Any]:
        t = time.perf_counter()
        self.tracker.finish()
        finish_s = time.perf_counter() - t
        imported = loaded_libraries()  # before check(), which reads each backend back with its library
        return {"start_s": self.start_s, "finish_s": finish_s, "complete": self.check(), "imported": imported}

    def check(self) -> dict[str, bool]:
        """Does every backend hold every point? Read back from each backend's own storage."""
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kit-tests"))
        from backend_readers import mlflow_run, tb_scalars, wandb_run

        run_dir = self.tracker.path
        record = json.loads((run_dir / "run.json").read_text())
        from runkit.storage.events import read_events

        steps = sorted(e["step"] for _, e in read_events(run_dir / "events.jsonl") if e["type"] == "metrics")
        out = {"local": len(steps) == self.n_logged and steps == sorted(set(steps))}
        for name in self.backends:
            if name == "tensorboard":
                stored = [s for s, _ in tb_scalars(run_dir / "tensorboard")["train/m9"]]
            elif name == "mlflow":
                ids = record["backends"]["mlflow"]
                stored = [s for s, _ in mlflow_run(ids["tracking_uri"], ids["run_id"])["metrics"]["train/m9"]]
            elif name == "wandb":
                stored = [row["global_step"] for row in wandb_run(run_dir)["history"] if "train/m9" in row]
            else:
                continue
            out[name] = sorted(stored) == steps
        return out


def make_case(name: str, tmp: Path) -> Case:
    if name == "floor":
        return Case(tmp)
    kind, _, what = name.partition(":")
    if kind == "raw":
        return {"tensorboard": RawTensorBoard, "mlflow": RawMlflow, "wandb": RawWandb}[what](tmp)
    return Tracker(tmp, what.split(","))


def loaded_libraries() -> list[str]:
    return sorted(m for m in LIBRARIES if m in sys.modules and m != "torch")


# --- one case, in its own interpreter -----------------------------------------------------------------------
def trimmed_mean(values: list[float], cut: float = 0.1) -> float:
    """The mean of the middle values: robust to the interrupts and host noise of a shared machine."""
    values = sorted(values)
    k = int(len(values) * cut)
    return statistics.fmean(values[k : len(values) - k] or values)


def slowdown(without: list[float], with_: list[float]) -> float:
    return trimmed_mean(with_) / trimmed_mean(without) - 1


def bootstrap_interval(without: list[float], with_: list[float], n: int = 400) -> tuple[float, float]:
    """A 95 % interval for the slowdown: the rounds resampled with replacement (each round's blocks kept
    together, since they ran side by side)."""
    draw = random.Random(1)
    rounds = range(len(without))
    estimates = []
    for _ in range(n):
        picked = draw.choices(rounds, k=len(without))
        estimates.append(slowdown([without[i] for i in picked], [with_[i] for i in picked]))
    estimates.sort()
    return estimates[int(0.025 * n)], estimates[int(0.975 * n) - 1]


def in_training_loop(
    case: Case, train_step: Step, rounds: int, block: int, step: int = 0
) -> tuple[dict[str, Any], int]:
    """The log call's own time between training steps, and the slowdown of those steps; returns the figures
    and the last step logged."""
    # ~1 ms training steps in short blocks of three kinds, in a shuffled order each round (so drift, host
    # noise and the block before hit every kind alike): steps that do not log, steps that log, and steps
    # that log with a stopwatch around the call. Each step makes its metrics dict, as a training loop does
    # (so they are fresh in the cache, like a loss just read from its tensor), whether it logs them or not.
    # The slowdown compares the first two kinds (so the stopwatch is not counted), in wall time and in the
    # training thread's own CPU time (which leaves out time lost to other processes). Inside such a loop
    # the log call runs with the caches full of the step's data: `in_loop_us` is its own time there, from
    # the third kind (mean over every call, slow ones included).
    clock, cpu_clock = time.perf_counter, time.thread_time
    wall: dict[str, list[float]] = {arm: [] for arm in ARMS}
    cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    in_loop = []
    order = random.Random(0)
    for _ in range(rounds):
        for arm in order.sample(ARMS, len(ARMS)):
            t, c = clock(), cpu_clock()
            for _ in range(block):
                train_step()
                values = metrics(step + 1)
                if arm == "log":
                    case.log(step + 1, values)
                    step += 1
                elif arm == "timed":
                    s = clock()
                    case.log(step + 1, values)
                    in_loop.append(clock() - s)
                    step += 1
            wall[arm].append(clock() - t)
            cpu[arm].append(cpu_clock() - c)
    figures = {
        "in_loop_us": statistics.fmean(in_loop) * 1e6,
        "step_ms": trimmed_mean(wall["none"]) / block * 1000,
        "slowdown": slowdown(wall["none"], wall["log"]),
        "slowdown_ci": bootstrap_interval(wall["none"], wall["log"]),
        "cpu_slowdown": slowdown(cpu["none"], cpu["log"]),
    }
    return figures, step


def run_case(name: str, tmp: Path, steps: int, step_ms: float, rounds: int, block: int) -> dict[str, Any]:
    os.environ.setdefault("WANDB_SILENT", "true")
    train_step = Step(step_ms)
    case = make_case(name, tmp)
    case.open()
    if name.startswith("raw:mlflow"):  # ~5 ms a call: fewer steps are enough to measure
        steps, rounds = min(steps, 300), min(rounds, 40)
    payloads = [metrics(i) for i in range(1, steps + 1)]  # built beforehand: only the logging call is timed
    step = 0
    # 1) the calling thread's cost per step, nothing else in the loop (median of chunks: robust to noise)
    chunks = []
    for _ in range(max(1, steps // 100)):
        t = time.perf_counter()
        for _ in range(min(100, steps)):
            case.log(step + 1, payloads[step])
            step += 1
        chunks.append((time.perf_counter() - t) / min(100, steps) * 1e6)
    per_step_us = statistics.median(chunks)
    # 2) the same call between ~1 ms training steps, and the slowdown of those steps
    figures, step = in_training_loop(case, train_step, rounds, block, step)
    if isinstance(case, Tracker):
        case.n_logged = step  # type: ignore[attr-defined]
    extra = {"imported": loaded_libraries(), **case.close()}
    return {
        "case": name,
        "per_step_us": per_step_us,
        **figures,
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps for the calling-thread measurement")
    parser.add_argument("--step-ms", type=float, default=1.0, help="the simulated training step (ms)")
    parser.add_argument("--rounds", type=int, default=400, help="rounds of blocks (one of each kind)")
    parser.add_argument("--block", type=int, default=10, help="training steps per block")
    parser.add_argument("--cases", nargs="*", help=f"default: {' '.join(default_cases())}")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run a single case in this interpreter
    args = parser.parse_args()
    if args.one:
        tmp = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
        try:
            print(json.dumps(run_case(args.one, tmp, args.steps, args.step_ms, args.rounds, args.block)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    }
    env.setdefault("WANDB_MODE", "offline")
    results = []
    for name in args.cases or default_cases():
        options = ["--steps", str(args.steps), "--step-ms", str(args.step_ms), "--rounds", str(args.rounds)]
        cmd = [sys.executable, __file__, "--one", name, *options, "--block", str(args.block)]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            raise SystemExit(f"case {name} failed")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    report(results)


def verdict(results: list[dict[str, Any]]) -> None:
    """The targets, met or not, from this run's figures."""
    ours = [r for r in results if r["case"].startswith("tracker:")]
    if not ours:
        return
    worst = max(r["per_step_us"] for r in ours)
    cold = max(r["in_loop_us"] for r in ours)
    print(
        f"\ntarget < {TARGET_US:g} µs per step whatever the backends: "
        f"{'met' if worst < TARGET_US else 'NOT met'} (at most {worst:.1f} µs a call in a tight loop; "
        f"{cold:.1f} µs between training steps, with cold caches)"
    )
    every = [r for r in ours if len(r["case"].split(",")) > 1]
    if every:
        r = every[-1]
        low, high = r["slowdown_ci"]
        met = "met" if high < TARGET_SLOWDOWN else "NOT met" if low >= TARGET_SLOWDOWN else "undecided"
        print(
            f"target < {TARGET_SLOWDOWN:.0%} slowdown with {r['case'].split(':', 1)[1]}: {met} "
            f"({r['slowdown']:.1%}, 95 % interval {interval(r['slowdown_ci'])})"
        )


def interval(bounds: list[float]) -> str:
    low, high = bounds
    return f"{low:.1%} to {high:.1%}"


def report(results: list[dict[str, Any]]) -> None:
    floor = next((r["per_step_us"] for r in results if r["case"] == "floor"), None)
    raw = {r["case"].split(":", 1)[1]: r["per_step_us"] for r in results if r["case"].startswith("raw:")}
    step_ms = statistics.median(r["step_ms"] for r in results)
    print(
        f"\n{N_SCALARS} scalars per step; training step ~{step_ms:.2f} ms (torch, 1 thread); "
        f"{os.cpu_count()} CPUs"
    )
    header = (f"{'case':<34}{'µs/step':>10}{'x floor':>10}{'raw/ours':>9}{'in loop':>10}{'slowdown':>10}"
              f"{'95% interval':>20}{'cpu':>9}{'start s':>8}{'finish s':>9}"
              "  all points in? / libraries in the trainer")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in results:
        name = r["case"]
        vs_floor = f"{r['per_step_us'] / floor:,.1f}" if floor else "-"
        vs_raw = ""
        if name.startswith("tracker:"):
            chosen = name.split(":", 1)[1].split(",")
            if len(chosen) == 1 and chosen[0] in raw:
                vs_raw = f"{raw[chosen[0]] / r['per_step_us']:,.0f}x"
            elif len(chosen) > 1 and all(c in raw for c in chosen):
                vs_raw = f"{sum(raw[c] for c in chosen) / r['per_step_us']:,.0f}x"
        start = f"{r['start_s']:.2f}" if "start_s" in r else ""
        finish = f"{r['finish_s']:.2f}" if "finish_s" in r else ""
        complete = ""
        if "complete" in r:
            complete = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["complete"].items()) + ";"
        libraries = "libs: " + (", ".join(r["imported"]) or "none")
        print(f"{name:<34}{r['per_step_us']:>10,.1f}{vs_floor:>10}{vs_raw:>9}{r['in_loop_us']:>10,.1f}"
              f"{r['slowdown']:>10.1%}{interval(r['slowdown_ci']):>20}{r['cpu_slowdown']:>9.1%}"
              f"{start:>8}{finish:>9}"
              f"  {complete}  {libraries}")  # fmt: skip
    verdict(results)
    print(
        "\nµs/step: the calling thread's cost of logging one step. raw/ours: the raw library's over ours"
        "\n(all three: the sum of the three). in loop: µs of the same call between ~1 ms training steps"
        "\n(caches cold). slowdown: wall time of those steps when they also log, over steps that do not"
        "\n(trimmed means of blocks in shuffled order), with a 95 % bootstrap interval over the rounds; cpu:"
        "\nthe same in the training thread's own CPU time; the floor's figures are the measurement noise."
        "\nfinish s: how long finish() waited for the backends to have everything (the shipper's backlog,"
        "\ne.g. MLflow's sqlite store)."
    )


if __name__ == "__main__":
    main()
