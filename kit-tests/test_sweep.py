"""`python train.py -m lr=...,... seed=...,...` with the basic launcher: one sweep directory, one finished run
per job, sweep.json, and a summary (terminal, summary.csv, summary.md) with the best job and seed statistics.
"""

from __future__ import annotations

import math
import statistics

import pytest

from conftest import read_events, run_dirs
from sweep_helpers import TINY, run_record, run_summary, run_sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return run_sweep(
        tmp_path_factory.mktemp("grid") / "runs", "lr=1e-3,1e-2", "seed=1,2", *TINY, "tracker=local"
    )


def test_every_job_has_its_run_inside_one_sweep_directory(grid):
    assert run_dirs(grid.runs) == []  # no job run lands at the top level
    sweep_id = grid.dir.name.rsplit("-", 1)[-1]
    dirs = grid.run_dirs()
    assert len(dirs) == 4 and len({d.name for d in dirs}) == 4
    for num, run_dir in enumerate(dirs):
        record = run_record(run_dir)
        assert record["status"] == "completed"
        assert record["sweep"] == {"dir": str(grid.dir), "id": sweep_id, "job_num": num}


def test_each_job_ran_its_own_overrides(grid):
    import yaml

    seen = set()
    for run_dir in grid.run_dirs():
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        overrides = run_record(run_dir)["overrides"]
        assert f"seed={config['seed']}" in overrides and config["epochs"] == 1
        seen.add((config["lr"], config["seed"]))
    assert seen == {(1e-3, 1), (1e-3, 2), (1e-2, 1), (1e-2, 2)}


def test_jobs_are_finished_before_the_next_one_starts(grid):
    runs = [run_record(d) for d in grid.run_dirs()]
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier["end_time"] <= later["start_time"]
    for run_dir in grid.run_dirs():
        events = read_events(run_dir)
        assert events[-1]["type"] == "status" and events[-1]["data"]["status"] == "completed"
        assert sum(e["type"] == "status" for e in events) == 1  # no job wrote into another job's log


def test_sweep_json_records_the_grid_the_jobs_and_their_statuses(grid):
    record = grid.record
    assert record["id"] == grid.dir.name.rsplit("-", 1)[-1] and record["status"] == "completed"
    assert record["grid"] == {"lr": ["0.001", "0.01"], "seed": ["1", "2"]}
    assert record["fixed"]["epochs"] == "1" and "lr=1e-3,1e-2" in record["overrides"]
    assert record["launcher"].endswith("BasicLauncher") and record["monitor"] == {
        "metric": "val/acc",
        "mode": "max",
    }
    assert record["end_time"] >= record["start_time"] and record["counts"] == {"completed": 4}
    ids = grid.runs_by_id()
    assert [job["job"] for job in record["jobs"]] == [0, 1, 2, 3]
    for job in record["jobs"]:
        assert job["status"] == "completed" and job["run_id"] in ids
        assert (grid.dir / job["run_dir"]) == ids[job["run_id"]]
        assert job["params"] == {"lr": job["params"]["lr"], "seed": job["params"]["seed"]}


def test_summary_csv_has_each_jobs_metric_read_from_its_run(grid):
    rows = grid.csv_rows()
    assert len(rows) == 4
    ids = grid.runs_by_id()
    for row in rows:
        summary = run_summary(ids[row["run_id"]])
        assert row["status"] == "completed" and float(row["duration_s"]) > 0
        assert float(row["best"]) == summary["best"]["value"]
        assert float(row["final"]) == summary["last"]["val/acc"]
        assert f"lr={row['lr']}" in row["overrides"].split() and row["seed"] in ("1", "2")


def test_the_best_job_is_marked_once_and_is_the_best(grid):
    rows = grid.csv_rows()
    best = [r for r in rows if r["is_best"] == "true"]
    assert len(best) == 1
    assert float(best[0]["best"]) == max(float(r["best"]) for r in rows)
    assert grid.record["best"]["run_id"] == best[0]["run_id"]
    assert f"**{best[0]['job']}** (best)" in (grid.dir / "summary.md").read_text()


def test_mean_and_std_over_seeds_per_learning_rate(grid):
    rows = grid.csv_rows()
    groups = {g["params"]["lr"]: g for g in grid.record["seed_groups"]}
    assert set(groups) == {"0.001", "0.01"}
    for lr, group in groups.items():
        values = [run_summary(grid.runs_by_id()[r["run_id"]])["best"]["value"] for r in rows if r["lr"] == lr]
        assert group["n"] == group["completed"] == 2 and sorted(group["seeds"]) == ["1", "2"]
        assert math.isclose(group["mean"], statistics.fmean(values))
        assert math.isclose(group["std"], statistics.stdev(values))
        assert all(math.isclose(float(r["group_mean"]), group["mean"]) for r in rows if r["lr"] == lr)
    md = (grid.dir / "summary.md").read_text()
    assert "## Over seeds" in md and "| lr=0.001 | 2/2 |" in md


def test_the_terminal_shows_the_summary_table(grid):
    out = grid.proc.stderr
    assert f"sweep {grid.record['id']} (train): 4 completed" in out
    assert "over seeds: val/acc" in out and "best val/acc" in out
    assert str(grid.dir / "summary.md") in out
    assert grid.proc.returncode == 0 and "ERROR" not in out
