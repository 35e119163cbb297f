"""Unit tests of the sweep's parts (no training): reading a sweep directory back into a summary, its files,
finding a sweep to resume, and the Optuna sweeper's search-space translation."""

from __future__ import annotations

import csv
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from runkit.errors import UserError
from runkit.sweeps.callback import SweepCallback, sweep_grid
from runkit.sweeps.grouping import job_key
from runkit.sweeps.lookup import find_sweep
from runkit.sweeps.records import (
    clear_stop,
    request_stop,
    resolve_sweep_dir,
    stop_reason,
)
from runkit.sweeps.summary import (
    CSV_COLUMNS,
    build_summary,
    render_markdown,
    write_summary_files,
)

_counter = iter(range(10_000))


def add_job(
    sweep_dir: Path,
    num: int,
    overrides: list[str],
    status: str = "completed",
    best: float | None = 0.5,
    final: float | None = None,
    run: bool = True,
    start: float | None = None,
    pid: int | None = None,
    error: str | None = None,
) -> dict:
    """Write what a real job leaves behind: its job record and (optionally) its run directory."""
    start = start if start is not None else 1000.0 + next(_counter)
    record = {
        "job_num": num,
        "attempt": f"{next(_counter):06x}",
        "overrides": overrides,
        "status": status,
        "host": "test-host",
        "pid": pid or 1,
        "start_time": start,
        "heartbeat": start,
        "end_time": start + 2,
        "duration_s": 2.0,
        "run_dir": None,
        "run_id": None,
        "error": error,
        "traceback": None,
    }
    if run:
        run_id = f"{next(_counter):08x}"
        run_dir = sweep_dir / f"20250101-000000-train-{run_id}"
        run_dir.mkdir(parents=True)
        (run_dir / "run.json").write_text(
            json.dumps(
                {
                    "id": run_id,
                    "status": status,
                    "host": "test-host",
                    "pid": record["pid"],
                    "heartbeat": start,
                    "start_time": start,
                    "duration_s": 1.5,
                    "error": error,
                    "sweep": {"job_num": num},
                }
            )
        )
        summary = {"last": {"val/acc": final if final is not None else best}, "best": {"value": best}}
        (run_dir / "summary.json").write_text(json.dumps(summary))
        if status == "failed":
            (run_dir / "traceback.txt").write_text("Traceback ...\nValueError: boom\n")
        record.update(run_dir=run_dir.name, run_id=run_id)
    jobs = sweep_dir / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    (jobs / f"{num:04d}-{record['attempt']}.json").write_text(json.dumps(record))
    return record


def test_one_row_per_job_its_newest_attempt(tmp_path):
    add_job(tmp_path, 1, ["lr=0.1"], status="failed", best=None, error="ValueError: boom")
    add_job(tmp_path, 0, ["lr=0.01"], best=0.7)
    retry = add_job(tmp_path, 1, ["lr=0.1", "sweep.resume=/x"], best=0.9)  # a resumed session's attempt
    summary = build_summary(tmp_path, "val/acc", "max")
    assert [(r.job, r.status) for r in summary.rows] == [(0, "completed"), (1, "completed")]
    assert summary.rows[1].run_id == retry["run_id"] and summary.rows[1].is_best
    assert summary.varying == ["lr"] and summary.rows[0].params == {"lr": "0.01"}


@pytest.mark.parametrize(("mode", "expected"), [("max", 2), ("min", 0)])
def test_the_best_job_follows_the_mode_and_ignores_failed_jobs(tmp_path, mode, expected):
    add_job(tmp_path, 0, ["lr=1"], best=0.2)
    add_job(tmp_path, 1, ["lr=2"], status="failed", best=0.01)
    add_job(tmp_path, 2, ["lr=3"], best=0.8)
    summary = build_summary(tmp_path, "val/acc", mode)
    assert [r.job for r in summary.rows if r.is_best] == [expected]
    assert summary.rows[1].traceback.endswith("/traceback.txt") and not summary.all_completed
    assert summary.counts == {"completed": 2, "failed": 1}


def test_no_best_job_when_nothing_completed(tmp_path):
    add_job(tmp_path, 0, ["lr=1"], status="failed", best=None)
    add_job(tmp_path, 1, ["lr=2"], status="skipped", run=False, best=None)
    summary = build_summary(tmp_path, "val/acc")
    assert summary.best is None and [r.status for r in summary.rows] == ["failed", "skipped"]
    assert summary.rows[1].run_id is None and summary.to_dict()["best"] is None


def test_seed_groups_give_mean_and_sample_std_per_configuration(tmp_path):
    values = {("0.1", "1"): 0.5, ("0.1", "2"): 0.7, ("0.1", "3"): 0.9, ("0.2", "1"): 0.4, ("0.2", "2"): None}
    for num, ((lr, seed), best) in enumerate(values.items()):
        status = "completed" if best is not None else "failed"
        add_job(tmp_path, num, [f"lr={lr}", f"seed={seed}", "epochs=1"], status=status, best=best)
    summary = build_summary(tmp_path, "val/acc")
    assert summary.varying == ["lr", "seed"]
    first, second = summary.seed_groups
    assert first.params == {"lr": "0.1"} and first.n == first.completed == 3
    assert math.isclose(first.mean, 0.7) and math.isclose(first.std, 0.2)
    assert (second.n, second.completed, second.mean, second.std) == (2, 1, 0.4, None)


def test_no_seed_groups_when_seed_is_not_swept(tmp_path):
    add_job(tmp_path, 0, ["lr=1", "seed=3"])
    add_job(tmp_path, 1, ["lr=2", "seed=3"])
    summary = build_summary(tmp_path, "val/acc")
    assert summary.varying == ["lr"] and summary.seed_groups == []


def test_always_show_keeps_a_swept_key_with_one_value(tmp_path):
    add_job(tmp_path, 0, ["lr=1", "epochs=2"])
    assert build_summary(tmp_path, "val/acc").varying == []
    assert build_summary(tmp_path, "val/acc", always_show=["lr"]).varying == ["lr"]


def test_a_running_job_whose_process_is_gone_shows_as_crashed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = add_job(tmp_path, 0, ["lr=1"], status="running", run=False, pid=dead.pid)
    path = next((tmp_path / "jobs").glob("*.json"))
    path.write_text(json.dumps({**record, "host": __import__("socket").gethostname()}))
    assert build_summary(tmp_path, "val/acc").rows[0].status == "crashed"


def test_summary_files_csv_columns_and_markdown(tmp_path):
    add_job(tmp_path, 0, ["lr=0.1", "seed=1"], best=0.5, final=0.4)
    add_job(tmp_path, 1, ["lr=0.1", "seed=2"], best=0.7)
    add_job(tmp_path, 2, ["lr=a|b", "seed=1"], status="failed", best=None, error="ValueError: boom")
    summary = build_summary(tmp_path, "val/acc")
    write_summary_files(summary, tmp_path, "sweep abc (train)")
    with open(tmp_path / "summary.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == [*CSV_COLUMNS, "lr", "seed", "group_n", "group_mean", "group_std"]
    assert (rows[0]["final"], rows[0]["best"], rows[0]["is_best"]) == ("0.4", "0.5", "false")
    assert rows[1]["is_best"] == "true" and math.isclose(float(rows[0]["group_mean"]), 0.6)
    assert rows[2]["error"] == "ValueError: boom" and rows[2]["traceback"].endswith("traceback.txt")
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("# sweep abc (train)\n") and "| **1** (best) | 0.1 | 2 | completed |" in md
    assert "a\\|b" in md and "ValueError: boom" in md  # a `|` in a value does not break the table


def test_long_float_values_are_shortened_for_people_only(tmp_path):
    add_job(tmp_path, 0, ["lr=0.0013292918943162175"])
    add_job(tmp_path, 1, ["lr=0.01"])
    summary = build_summary(tmp_path, "val/acc")
    assert "| 0.001329 |" in render_markdown(summary, "t")
    write_summary_files(summary, tmp_path, "t")
    assert "0.0013292918943162175" in (tmp_path / "summary.csv").read_text()


def test_job_key_ignores_order_and_execution_policy():
    assert job_key(["lr=1", "seed=2"]) == job_key(["seed=2", "lr=1", "sweep.resume=/x", "paths.runs_dir=/y"])
    assert job_key(["lr=1"]) != job_key(["lr=2"]) and job_key(["+a=1"]) == job_key(["a=1"])


def test_sweep_grid_splits_swept_and_fixed_overrides():
    grid, fixed = sweep_grid(["lr=1e-3,1e-4", "seed=range(1,4)", "epochs=2", "tracker=[local]"])
    assert grid == {"lr": ["0.001", "0.0001"], "seed": ["1", "2", "3"]}
    assert fixed == {"epochs": "2", "tracker": "[local]"}


def make_sweep(runs: Path, name: str) -> Path:
    path = runs / "sweeps" / name
    path.mkdir(parents=True)
    (path / "sweep.json").write_text("{}")
    return path


def test_find_sweep_by_path_id_prefix_name_or_last(tmp_path):
    older = make_sweep(tmp_path, "20250101-000000-train-abc123")
    newer = make_sweep(tmp_path, "20250102-000000-train-abd456")
    assert find_sweep(str(older), tmp_path) == older.resolve()
    assert find_sweep("abc", tmp_path) == older.resolve()
    assert find_sweep(newer.name, tmp_path) == newer.resolve()
    assert find_sweep("last", tmp_path) == newer.resolve()
    with pytest.raises(UserError, match="ambiguous"):
        find_sweep("ab", tmp_path)
    with pytest.raises(UserError, match="no sweep directory"):
        find_sweep("zzz", tmp_path)


def test_the_sweep_dir_resolver_picks_new_or_resumed(tmp_path):
    old = make_sweep(tmp_path, "20250101-000000-train-abc123")
    assert resolve_sweep_dir(None, tmp_path, "/new/dir") == "/new/dir"
    assert resolve_sweep_dir("abc123", tmp_path, "/new/dir") == str(old.resolve())
    assert resolve_sweep_dir("nope", tmp_path, "/new/dir") == "nope"  # reported by the callback


def test_stop_marker_round_trip(tmp_path):
    assert stop_reason(tmp_path) is None
    request_stop(tmp_path, "first")
    request_stop(tmp_path, "second")  # the first reason stays
    assert stop_reason(tmp_path) == "first"
    clear_stop(tmp_path)
    assert stop_reason(tmp_path) is None


def test_the_callback_can_be_pickled_into_launcher_workers():
    callback = SweepCallback()
    callback._state = {"backends": {"x": (lambda: None, None)}, "dir": Path(".")}  # not picklable
    clone = pickle.loads(pickle.dumps(callback))
    assert clone._state is None
