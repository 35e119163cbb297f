# ruff: noqa: E501 - the report's table rows and this docstring's columns are wider than code
"""The whole cost of tracking: CPU and wall time of a real run with each backend, against what the libraries
themselves need for the same data.

    python benchmarks/bench_whole_run.py                  # 20 epochs, batch 16, 8192 samples: 7,200 steps
    python benchmarks/bench_whole_run.py --quick          # a smoke test: a few seconds per case
    python benchmarks/bench_whole_run.py --project before=/tmp/old-project --project after=/tmp/new-project

Each case is `python train.py tracker=<case> epochs=.. batch_size=.. data.n_samples=..` in a fresh root that
holds an existing MLflow sqlite store, as a project has from its second run on (`--fresh-store`: a new store
each time, like a project's first run, for the runs and the MLflow yardstick alike), the cases and projects interleaved repeat by
repeat so that load elsewhere on the machine hits them alike. For each run:

    cpu s        CPU of every process of the run: trainer + shipper + the libraries' helpers (wandb-core),
                 from getrusage(RUSAGE_CHILDREN) of this process around the run
    delivery s   CPU of the shipper process and its children (wandb-core), from a sitecustomize hook that
                 records getrusage in each Python process of the run at its exit (or, where the kit logs its
                 own figure, the shipper's `cpu` in shipper.log)
    wall s       the run's wall time, process start to exit
    end wait s   run.json's end_time minus the time of the run's status event: how long the end of the run
                 waited for the backends

Then the yardsticks: each library's own minimal direct use for the same data, in a fresh process: the run's
metric events (step by step), its params, and its artifacts (every checkpoint event with the real files):

    tensorboard  torch.utils.tensorboard.SummaryWriter: add_scalar per value, add_text per artifact (TensorBoard
                 has no artifact store); the CPU of `import torch` is not counted (a training process has it)
    mlflow       MlflowClient on a new sqlite store: create the run, log_batch of the params and of the metrics
                 (1,000 per call), log_artifact per artifact event, set_terminated
    wandb        wandb.init(mode="offline", system stats off), one `log` per step, the final checkpoints as one
                 model artifact, finish()

and the ratio of our delivery CPU to the yardstick's: the median over the repeats of each repeat's own ratio
(the yardsticks run in every repeat, right after its cases, so a slow spell of a shared machine inflates both
sides of a ratio alike; the ratio of the two medians is in --json too). Figures are medians over --repeats.
With several --project, a last table gives each project's paired differences to the first one (the median
over the repeats of the difference within a repeat): on a shared machine they are steadier than the
difference of two medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BACKENDS = ("tensorboard", "mlflow", "wandb")
TARGET_DELIVERY, TARGET_WALL, TARGET_WAIT = 1.25, 1.5, 0.5

# Records each Python process's own CPU (and its reaped children's) at exit; the shipper is recognised by its
# module name. Put on PYTHONPATH for the measured runs only.
HOOK = """
import os
_dir = os.environ.get("BENCH_RUSAGE_DIR")
if _dir:
    import atexit, json, resource, sys
    def _bench_rusage():
        s = resource.getrusage(resource.RUSAGE_SELF)
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        argv = list(getattr(sys, "orig_argv", sys.argv))
        with open(os.path.join(_dir, f"{os.getpid()}.json"), "w") as f:
            json.dump({"argv": argv, "shipper": "runkit.tracking.shipper" in argv,
                       "cpu": s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime}, f)
    atexit.register(_bench_rusage)
"""


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.strip(b"\0\n\r ")
            if not line:
                continue
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def shipper_log_cpu(run: Path) -> float | None:
    """The shipper's own CPU figure, where the kit logs one (`shipper cpu 1.23s` in shipper.log): a shipper
    that ends with os._exit runs no exit hook."""
    log = run / "shipper.log"
    if not log.exists():
        return None
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if "shipper cpu " in line:
            try:
                return float(line.split("shipper cpu ")[1].split("s")[0])
            except (IndexError, ValueError):
                return None
    return None


def make_store(path: Path) -> None:
    """An MLflow sqlite store with its schema, made once and copied into each run's root (the yardstick's too)."""
    code = "import sys; from mlflow.tracking import MlflowClient; MlflowClient(tracking_uri=sys.argv[1]).search_experiments()"
    subprocess.run([sys.executable, "-c", code, f"sqlite:///{path}"], check=True, capture_output=True)


def train_once(
    project: Path, case: str, args: argparse.Namespace, root: Path, hook: Path, store: Path | None
) -> dict[str, Any]:
    root.mkdir(parents=True)
    if store is not None and case in ("mlflow", "all"):
        shutil.copy2(store, root / "mlruns.db")
    rusage = root / "rusage"
    rusage.mkdir()
    tracker = f"[{','.join(BACKENDS)}]" if case == "all" else case
    cmd = [
        sys.executable,
        str(project / "train.py"),
        f"tracker={tracker}",
        f"paths.root={root}",
        f"epochs={args.epochs}",
        f"batch_size={args.batch_size}",
        f"data.n_samples={args.samples}",
    ]
    env = dict(os.environ, BENCH_RUSAGE_DIR=str(rusage), WANDB_SILENT="true")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(project / "src"), str(hook), env.get("PYTHONPATH")) if p
    )
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    before, started = cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, cpu_children() - before
    if proc.returncode != 0:
        sys.exit(f"the run failed ({case}, {project}):\n{proc.stderr[-3000:]}")
    [run] = [p.parent for p in (root / "runs").glob("*/run.json")]
    record = json.loads((run / "run.json").read_text())
    events = read_events(run / "events.jsonl")
    status_time = max((float(e["time"]) for e in events if e.get("type") == "status"), default=None)
    delivery = None
    if case != "local":
        shipped = [json.loads(p.read_text()) for p in rusage.glob("*.json")]
        shipped = [r for r in shipped if r["shipper"]]
        delivery = sum(r["cpu"] for r in shipped) if shipped else shipper_log_cpu(run)
    return {
        "cpu": cpu,
        "wall": wall,
        "delivery": delivery,
        "wait": float(record["end_time"]) - status_time if status_time and record.get("end_time") else None,
        "run": run,
        "steps": sum(1 for e in events if e.get("type") == "metrics"),
    }


# --- the yardsticks: each library's minimal direct use for the run's data ------------------------------------
def yardstick_data(run: Path, out: Path, project: Path) -> Path:
    """The run's metrics, params and artifacts (files copied) as one JSON file for the yardsticks."""
    sys.path.insert(0, str(project / "src"))
    from runkit.storage.events import read_events as decoded  # the log's packed metric lines

    events = [event for _, event in decoded(run / "events.jsonl")]
    files = out / "files"
    artifacts = []
    for event in events:
        if event.get("type") != "artifact":
            continue
        data = event.get("data") or {}
        source = run / str(data.get("path", ""))
        if not source.is_file():
            continue
        copy = files / str(data["path"])
        copy.parent.mkdir(parents=True, exist_ok=True)
        if not copy.exists():
            shutil.copy2(source, copy)
        artifacts.append({"path": str(copy), "kind": data.get("kind"), "aliases": data.get("aliases") or []})
    params = next((e.get("data") or {} for e in events if e.get("type") == "params"), {})
    metrics = [
        [int(e.get("step") or 0), e.get("data") or {}, float(e["time"])]
        for e in events
        if e.get("type") == "metrics"
    ]
    path = out / "data.json"
    path.write_text(json.dumps({"params": params, "metrics": metrics, "artifacts": artifacts}))
    return path


def yardstick_tensorboard(data: dict[str, Any], out: Path) -> float:
    import torch  # noqa: F401 - in a training process already: not counted

    start = resource.getrusage(resource.RUSAGE_SELF)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tb"))
    for step, values, wall in data["metrics"]:
        for key, value in values.items():
            writer.add_scalar(key, value, step, walltime=wall)
    for i, artifact in enumerate(data["artifacts"]):
        writer.add_text(f"artifacts/{Path(artifact['path']).name}", artifact["path"], i)
    writer.close()
    return start.ru_utime + start.ru_stime


def yardstick_mlflow(data: dict[str, Any], out: Path) -> float:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns.db'}")
    experiment = client.create_experiment("bench", artifact_location=(out / "mlartifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    params = [Param(k.replace("/", "_")[:250], str(v)[:6000]) for k, v in data["params"].items()]
    for i in range(0, len(params), 100):
        client.log_batch(run_id, params=params[i : i + 100])
    points = [
        Metric(key, float(value), int(wall * 1000), step)
        for step, values, wall in data["metrics"]
        for key, value in values.items()
    ]
    for i in range(0, len(points), 1000):
        client.log_batch(run_id, metrics=points[i : i + 1000])
    for artifact in data["artifacts"]:
        client.log_artifact(
            run_id, artifact["path"], "checkpoints" if artifact["kind"] == "checkpoint" else None
        )
    client.set_terminated(run_id, "FINISHED")
    return 0.0


def yardstick_wandb(data: dict[str, Any], out: Path) -> float:
    import wandb

    run = wandb.init(
        project="bench",
        mode="offline",
        dir=str(out),
        config=data["params"],
        settings=wandb.Settings(silent=True, console="off", save_code=False, x_disable_stats=True),
    )
    for step, values, _wall in data["metrics"]:
        run.log({**values, "global_step": step})
    checkpoints: dict[str, str] = {}
    for artifact in data["artifacts"]:
        if artifact["kind"] == "checkpoint":
            for alias in artifact["aliases"]:
                checkpoints[alias] = artifact["path"]
    for alias, path in checkpoints.items():
        model = wandb.Artifact(f"model-{run.id}", type="model")
        model.add_file(path)
        run.log_artifact(model, aliases=[alias])
    run.finish()
    return 0.0


YARDSTICKS = {"tensorboard": yardstick_tensorboard, "mlflow": yardstick_mlflow, "wandb": yardstick_wandb}


def yardstick_main(name: str, data_file: str, out: str) -> None:
    """In a child process: run one yardstick; print the CPU not to count (imports a trainer has anyway)."""
    excluded = YARDSTICKS[name](json.loads(Path(data_file).read_text()), Path(out))
    print(json.dumps({"excluded": excluded}))


def yardstick_once(name: str, data_file: Path, out: Path, store: Path | None) -> dict[str, float]:
    out.mkdir(parents=True)
    if store is not None and name == "mlflow":
        shutil.copy2(store, out / "mlruns.db")
    env = dict(os.environ, WANDB_SILENT="true")
    before, started = cpu_children(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--yardstick", name, str(data_file), str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall, cpu = time.perf_counter() - started, cpu_children() - before
    if proc.returncode != 0:
        sys.exit(f"the {name} yardstick failed:\n{proc.stderr[-3000:]}")
    excluded = json.loads(proc.stdout.strip().splitlines()[-1])["excluded"]
    return {"cpu": cpu - excluded, "wall": wall}


# --- the report ------------------------------------------------------------------------------------------------
def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, spec: str = "6.2f") -> str:
    return format(value, spec) if value is not None else " " * (int(spec.split(".")[0]) - 1) + "-"


def paired_report(
    labels: list[str],
    cases: list[str],
    results: dict[tuple[str, str], list[dict[str, Any]]],
    yard: dict[str, list[dict[str, float]]],
) -> dict[str, Any]:
    """Each project against the first, repeat by repeat: the median of the differences within a repeat (the
    runs of one repeat follow each other, so they share the machine's load)."""

    def diff(label: str, case: str, key: str, per_yardstick: bool = False) -> float | None:
        values: list[float | None] = []
        sticks = yard.get(case) or []
        for i, (mine, base) in enumerate(
            zip(results[(label, case)], results[(labels[0], case)], strict=True)
        ):
            scale = 1.0
            if per_yardstick:  # the difference of the two ratios to this repeat's yardstick
                if i >= len(sticks) or sticks[i]["cpu"] <= 0:
                    continue
                scale = sticks[i]["cpu"]
            if mine[key] is not None and base[key] is not None:
                values.append((mine[key] - base[key]) / scale)
        return median(values)

    print(f"\npaired differences to {labels[0]} (median over the repeats of the difference within a repeat)")
    print(
        f"{'project':>8} {'case':<12} {'cpu s':>7} {'wall s':>7} {'end wait':>8} {'delivery':>8} {'ratio':>6}"
    )
    out: dict[str, Any] = {}
    for label in labels[1:]:
        for case in cases:
            entry = {
                "cpu": diff(label, case, "cpu"),
                "wall": diff(label, case, "wall"),
                "wait": diff(label, case, "wait"),
                "delivery": diff(label, case, "delivery"),
                "delivery_x_yardstick": diff(label, case, "delivery", per_yardstick=True)
                if case in yard
                else None,
            }
            out[f"{label}:{case}"] = entry
            print(
                f"{label:>8} {case:<12} {fmt(entry['cpu'], '+7.2f')} {fmt(entry['wall'], '+7.2f')} "
                f"{fmt(entry['wait'], '+8.2f')} {fmt(entry['delivery'], '+8.2f')} "
                f"{fmt(entry['delivery_x_yardstick'], '+6.2f')}"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default="", help="comma-separated: local,tensorboard,mlflow,wandb,all")
    parser.add_argument("--threads", type=int, default=0, help="OMP/MKL threads of the trainer (0: default)")
    parser.add_argument(
        "--project", action="append", default=[], help="LABEL=DIR of a baked project (repeatable)"
    )
    parser.add_argument("--no-yardsticks", action="store_true")
    parser.add_argument("--fresh-store", action="store_true", help="a new MLflow store for every run")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 1 epoch of 512 samples, 1 repeat")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.batch_size, args.samples, args.repeats = 1, 64, 512, 1

    if args.project:
        projects = {label: Path(path).resolve() for label, path in (p.split("=", 1) for p in args.project)}
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from example_project import ROOT  # bakes the example project (or BENCH_PROJECT)

        projects = {"kit": ROOT}
    first = next(iter(projects.values()))
    have = [b for b in BACKENDS if (first / "configs" / "tracker" / f"{b}.yaml").exists()]
    import importlib.util

    have = [b for b in have if importlib.util.find_spec(b) is not None]
    default_cases = (
        ["local", "tensorboard"] if args.quick else ["local", *have, *(["all"] if len(have) > 1 else [])]
    )
    cases = [c for c in args.cases.split(",") if c] or default_cases
    if "local" not in cases:
        cases.insert(0, "local")

    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.epochs} epochs, batch "
        f"{args.batch_size}, {args.samples} samples, {args.repeats} repeats, threads "
        f"{args.threads or 'default'}; MLflow store: {'new each run' if args.fresh_store else 'existing'}",
        flush=True,
    )
    results: dict[tuple[str, str], list[dict[str, Any]]] = {(p, c): [] for p in projects for c in cases}
    yard: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-whole-run-") as tmp_name:
        tmp = Path(tmp_name)
        hook = tmp / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(HOOK)
        data_file: Path | None = None
        store = None
        if not args.fresh_store and ("mlflow" in cases or "all" in cases) and "mlflow" in have:
            store = tmp / "store" / "mlruns.db"
            store.parent.mkdir()
            make_store(store)
        yard_names = [] if args.no_yardsticks else [b for b in have if b in cases or "all" in cases]
        for repeat in range(args.repeats):
            for case in cases:  # interleaved: every case and project once per repeat
                for label, project in projects.items():
                    root = tmp / f"{repeat}-{label}-{case}"
                    result = train_once(project, case, args, root, hook, store)
                    results[(label, case)].append(result)
                    print(
                        f"  [{repeat + 1}/{args.repeats}] {label:>8} {case:<12} cpu {result['cpu']:6.2f} s  "
                        f"wall {result['wall']:6.2f} s  delivery {fmt(result['delivery'])} s  "
                        f"end wait {fmt(result['wait'])} s  (load {os.getloadavg()[0]:.2f})",
                        flush=True,
                    )
                    if data_file is None and case == "local":
                        data_file = yardstick_data(result["run"], tmp / "yardstick", project)
                    if case != "local":
                        shutil.rmtree(root, ignore_errors=True)
            for name in yard_names:
                assert data_file is not None
                yard.setdefault(name, []).append(
                    yardstick_once(name, data_file, tmp / f"y-{repeat}-{name}", store)
                )
                print(
                    f"  [{repeat + 1}/{args.repeats}] yardstick {name:<12} cpu {yard[name][-1]['cpu']:6.2f} s",
                    flush=True,
                )

    steps = results[(next(iter(projects)), "local")][0]["steps"]
    print(
        f"\nmedians of {args.repeats} ({steps} metric events a run); ratios to tracker=local of the same project"
    )
    print(
        f"{'project':>8} {'case':<12} {'cpu s':>7} {'x local':>7} {'wall s':>7} {'x local':>7} {'end wait':>8} "
        f"{'delivery':>8} {'yardstick':>9} {'ratio':>6}"
    )
    summary: dict[str, Any] = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "cases": {},
        "yardsticks": {},
    }
    for name, runs in yard.items():
        summary["yardsticks"][name] = median([r["cpu"] for r in runs])
    for label in projects:
        base = results[(label, "local")]
        base_cpu, base_wall = median([r["cpu"] for r in base]), median([r["wall"] for r in base])
        for case in cases:
            runs = results[(label, case)]
            cpu, wall = median([r["cpu"] for r in runs]), median([r["wall"] for r in runs])
            wait, delivery = median([r["wait"] for r in runs]), median([r["delivery"] for r in runs])
            yardstick = summary["yardsticks"].get(case)
            of_medians = delivery / yardstick if delivery is not None and yardstick else None
            ratio = median(
                [
                    r["delivery"] / y["cpu"] if r["delivery"] is not None and y["cpu"] > 0 else None
                    for r, y in zip(runs, yard.get(case, []), strict=False)
                ]
            )
            assert cpu is not None and wall is not None and base_cpu and base_wall
            print(
                f"{label:>8} {case:<12} {cpu:7.2f} {cpu / base_cpu:7.2f} {wall:7.2f} {wall / base_wall:7.2f} "
                f"{fmt(wait, '8.2f')} {fmt(delivery, '8.2f')} {fmt(yardstick, '9.2f')} {fmt(ratio, '6.2f')}"
            )
            summary["cases"][f"{label}:{case}"] = {
                "cpu": cpu, "wall": wall, "cpu_x_local": cpu / base_cpu, "wall_x_local": wall / base_wall,
                "wait": wait, "delivery": delivery, "yardstick": yardstick, "delivery_x_yardstick": ratio,
                "delivery_x_yardstick_of_medians": of_medians,
            }  # fmt: skip
    labels = list(projects)
    if len(labels) > 1:
        summary["paired"] = paired_report(labels, cases, results, yard)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(
        f"targets: delivery <= {TARGET_DELIVERY}x the yardstick per backend; all three: wall <= {TARGET_WALL}x "
        f"local, end wait < {TARGET_WAIT} s"
    )
    for label in projects:
        for case in cases:
            entry = summary["cases"][f"{label}:{case}"]
            if entry["delivery_x_yardstick"] is not None:
                met = entry["delivery_x_yardstick"] <= TARGET_DELIVERY
                print(
                    f"  {label} {case}: delivery {entry['delivery_x_yardstick']:.2f}x its yardstick: "
                    f"{'met' if met else 'NOT met'}"
                )
        if "all" in cases:
            entry = summary["cases"][f"{label}:all"]
            ok = entry["wall_x_local"] <= TARGET_WALL
            wait_ok = entry["wait"] is not None and entry["wait"] < TARGET_WAIT
            print(
                f"  {label} all three: wall {entry['wall_x_local']:.2f}x local: {'met' if ok else 'NOT met'}; "
                f"end wait {fmt(entry['wait'], '.2f')} s: {'met' if wait_ok else 'NOT met'}"
            )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--yardstick":
        yardstick_main(*sys.argv[2:])
    else:
        main()
