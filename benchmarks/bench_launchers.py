"""How much faster is a local sweep on joblib than on Hydra's basic (one-job-at-a-time) launcher?

Times the same N-job sweep, `python train.py -m seed=1,...,N`, end to end (process start to summary) with
    hydra/launcher=basic                        jobs one after another in the launching process
    hydra/launcher=joblib hydra.launcher.n_jobs=W   W worker processes
and prints both wall times and the speed-up ratio (basic / joblib). Each joblib worker pays its own
start-up (Python, torch, Hydra), so small jobs gain little or lose; the gain grows with the job's length,
up to about min(W, cores). Runs use the local tracker in a temporary directory.

    python benchmarks/bench_launchers.py                       # 4 jobs, 2 workers
    python benchmarks/bench_launchers.py --epochs 30 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from example_project import ROOT  # noqa: E402 - bakes the example project, puts its src/ on the path


def sweep(launcher: list[str], jobs: int, args: argparse.Namespace, runs: Path) -> float:
    seeds = ",".join(str(i) for i in range(1, jobs + 1))
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"paths.runs_dir={runs}",
        f"seed={seeds}",
        f"epochs={args.epochs}",
        f"data.n_samples={args.samples}",
        f"batch_size={args.batch_size}",
        "tracker=local",
        *launcher,
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"sweep failed ({' '.join(launcher) or 'basic'}):\n{proc.stderr[-3000:]}")
    [sweep_json] = runs.glob("sweeps/*/sweep.json")
    record = json.loads(sweep_json.read_text())
    assert record["counts"] == {"completed": jobs}, record["counts"]
    threads = sorted(
        {
            json.loads(p.read_text()).get("torch", {}).get("num_threads")
            for p in runs.glob("sweeps/*/*/environment.json")
        },
        key=str,
    )
    print(f"    torch threads per job: {', '.join(map(str, threads))}", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="OMP/MKL threads per process (0: default)")
    parser.add_argument("--repeats", type=int, default=2, help="best of N timings per launcher")
    args = parser.parse_args()

    launchers = {
        "basic": [],
        f"joblib (n_jobs={args.workers})": ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.workers}"],
    }
    timings: dict[str, list[float]] = {name: [] for name in launchers}
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):  # interleaved, so that a burst of load elsewhere hits both alike
            for name, overrides in launchers.items():
                runs = Path(tmp) / f"{i}-{len(timings[name])}-{name.split()[0]}"
                timings[name].append(sweep(overrides, args.jobs, args, runs))
                print(f"{name:<20} {timings[name][-1]:7.2f} s  ({args.jobs} jobs)", flush=True)
    times = {name: min(values) for name, values in timings.items()}  # best of the repeats
    basic, parallel = times.values()
    print(
        f"speed-up joblib vs basic: {basic / parallel:.2f}x  "
        f"(jobs={args.jobs}, workers={args.workers}, epochs={args.epochs}, samples={args.samples}, "
        f"cores={os.cpu_count()}, threads={args.threads or 'default'}, best of {args.repeats})"
    )


if __name__ == "__main__":
    main()
