"""How long `runs list` takes over 1,000 runs (target: under 1 s).

Writes N synthetic run directories shaped like real ones (run.json with git and environment summaries,
summary.json, config.yaml, overrides.yaml, a short events.jsonl; a tenth of them as the jobs of one sweep,
a few `running` with a dead pid so the liveness check runs), then times:

- in process: the `runs list` command as the CLI runs it (table, CSV and JSON output), best of `--repeat`;
- end to end: `python -m <package>.cli runs list` in a fresh interpreter (imports included), best of
  `--repeat`.

Usage: python benchmarks/bench_runs_list.py [--runs 1000] [--repeat 3] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from example_project import ROOT  # noqa: E402 - bakes the example project, puts its src/ on the path

PACKAGE = "runkit"
TARGET_S = 1.0

CONFIG = """name: bench
seed: {seed}
lr: {lr}
epochs: 10
batch_size: 64
model:
  hidden_sizes: [64, 64]
  dropout: 0.1
optimizer:
  lr: {lr}
"""


def dead_pid() -> int:
    """A pid that belongs to no process (a child that has exited)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def make_runs(runs_dir: Path, n: int) -> None:
    rng = random.Random(0)
    host, pid = socket.gethostname(), dead_pid()
    sweep_dir = runs_dir / "sweeps" / "20250101-000000-bench-abc123"
    sweep_jobs = n // 10
    t0 = time.time() - 86400
    for i in range(n):
        in_sweep = i < sweep_jobs
        run_id = f"{i:08x}"
        parent = sweep_dir if in_sweep else runs_dir
        start = t0 + i * 60
        path = parent / f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(start))}-bench-{run_id}"
        path.mkdir(parents=True)
        lr = rng.choice([1e-2, 1e-3, 1e-4])
        seed = i % 5
        overrides = [f"lr={lr}", f"seed={seed}", "epochs=10", f"paths.runs_dir={runs_dir}"]
        status = "running" if i % 20 == 7 else rng.choice(["completed"] * 8 + ["failed", "aborted"])
        record = {
            "schema": 1,
            "id": run_id,
            "name": "bench",
            "tags": ["bench"] if i % 3 == 0 else [],
            "status": status,
            "start_time": start,
            "end_time": None if status == "running" else start + 42.0,
            "duration_s": None if status == "running" else 42.0,
            "heartbeat": start + 42.0,
            "host": host,
            "pid": pid,
            "argv": ["train.py", *overrides],
            "overrides": overrides,
            "seed": seed,
            "backends": {},
            "error": None,
            "config_hash": f"{i:012x}",
            "git": {"commit": "0" * 40, "branch": "main", "dirty": False, "remote": None},
            "environment": {"python": "3.11.7", "torch": "2.3.0", "cuda": None, "gpus": [], "os": "Linux"},
        }
        if in_sweep:
            record["sweep"] = {"dir": str(sweep_dir), "id": "abc123", "job_num": i}
        acc = rng.random()
        summary = {
            "last": {"train/loss": rng.random(), "val/loss": rng.random(), "val/acc": acc, "epoch": 10.0},
            "last_step": 1000,
            "best": {"metric": "val/acc", "mode": "max", "value": acc, "step": 900},
        }
        (path / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        (path / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
        (path / "config.yaml").write_text(CONFIG.format(seed=seed, lr=lr))
        (path / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        events = [
            {
                "seq": s + 1,
                "time": start + s,
                "type": "metrics",
                "step": s + 1,
                "data": {"train/loss": 1.0 / (s + 1)},
            }
            for s in range(20)
        ]
        (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def best_of(repeat: int, func) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check", action="store_true", help=f"exit 1 when a figure is over {TARGET_S} s")
    args = parser.parse_args()

    from typer.testing import CliRunner

    cli = __import__(f"{PACKAGE}.cli", fromlist=["app"])
    runner = CliRunner()
    env = {"COLUMNS": "200", "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        started = time.perf_counter()
        make_runs(runs_dir, args.runs)
        print(f"wrote {args.runs} run directories in {time.perf_counter() - started:.1f} s")

        def in_process(*extra: str) -> None:
            result = runner.invoke(cli.app, ["runs", "list", "--runs-dir", str(runs_dir), *extra], env=env)
            assert result.exit_code == 0, result.output
            if extra[-1:] == ("json",):
                assert len(json.loads(result.stdout)) == args.runs

        figures = {
            "in process, table": best_of(args.repeat, lambda: in_process("--format", "table")),
            "in process, csv": best_of(args.repeat, lambda: in_process("--format", "csv")),
            "in process, json": best_of(args.repeat, lambda: in_process("--format", "json")),
            "in process, --where lr<1e-3 (overrides only)": best_of(
                args.repeat, lambda: in_process("--where", "lr<1e-3", "--format", "csv")
            ),
            "in process, --where model.dropout=0.1 (reads config.yaml)": best_of(
                args.repeat, lambda: in_process("--where", "model.dropout=0.1", "--format", "csv")
            ),
        }
        sub_env = {**os.environ, **env, "PYTHONPATH": str(ROOT / "src")}
        cmd = [sys.executable, "-m", f"{PACKAGE}.cli", "runs", "list", "--runs-dir", str(runs_dir)]
        figures["new process, table (python start + imports included)"] = best_of(
            args.repeat,
            lambda: subprocess.run(cmd, env=sub_env, capture_output=True, check=True),
        )
    print(f"\n`runs list` over {args.runs} runs (best of {args.repeat}; target < {TARGET_S:.1f} s):")
    width = max(len(k) for k in figures)
    over = False
    for name, seconds in figures.items():
        flag = "" if seconds < TARGET_S else "  OVER TARGET"
        over |= bool(flag) and "config.yaml" not in name
        print(f"  {name:<{width}}  {seconds * 1000:7.0f} ms{flag}")
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())
