"""`runs list`, `runs show`, `runs export` over real runs, a real sweep and damaged run directories."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from cli_helpers import (
    HTML_NAME,
    cli_subprocess,
    git_head,
    invoke,
    invoke_json,
    record,
    run_id,
    summary,
)

# The session fixture `cli_runs` (real runs made once for all the CLI test modules) lives there.
pytest_plugins = ["cli_helpers"]
pytestmark = pytest.mark.slow


def rows_by_id(cli_runs, *args):
    return {
        row["id"]: row
        for row in invoke_json("runs", "list", "--runs-dir", cli_runs.runs_dir, "-f", "json", *args)
    }


# --- list ------------------------------------------------------------------------------------------------
def test_list_has_every_run_with_its_real_status(cli_runs):
    rows = rows_by_id(cli_runs)
    expected = {run_id(p) for p in cli_runs.real} | {"bad00001", "half0001", "bad00002", "dead0001"}
    assert set(rows) == expected
    assert rows[run_id(cli_runs.base)]["status"] == "completed"
    assert rows[run_id(cli_runs.failed)]["status"] == "failed"
    assert rows["dead0001"]["status"] == "crashed"  # recorded `running`, its process is gone
    for job in cli_runs.jobs:
        assert rows[run_id(job)]["sweep"] == cli_runs.sweep_dir.name.rsplit("-", 1)[-1]


def test_list_reports_damaged_directories_and_keeps_going(cli_runs):
    result = invoke("runs", "list", "--runs-dir", cli_runs.runs_dir, "-f", "json")
    assert result.exit_code == 0
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert rows["bad00001"]["status"] == rows["half0001"]["status"] == "corrupt"
    assert "corrupt or truncated" in rows["bad00001"]["problem"]
    assert "missing" in rows["half0001"]["problem"]
    # A garbage summary.json keeps the run listed (with its status) and is named on stderr.
    assert rows["bad00002"]["status"] == "completed" and rows["bad00002"]["best"] is None
    assert str(cli_runs.truncated / "run.json") in result.stderr
    assert str(cli_runs.half_written / "run.json") in result.stderr
    assert str(cli_runs.bad_summary / "summary.json") in result.stderr
    assert "Traceback" not in result.output


def test_list_key_params_and_monitored_metric_come_from_the_run(cli_runs):
    rows = rows_by_id(cli_runs)
    html = rows[run_id(cli_runs.html)]
    assert html["name"] == HTML_NAME and html["params"]["lr"] == 0.01
    assert "paths.runs_dir" not in html["params"]  # where a run was written is not a key param
    assert html["monitor"] == "val/acc" and html["best"] == summary(cli_runs.html)["best"]["value"]
    assert html["duration_s"] == pytest.approx(record(cli_runs.html)["duration_s"], abs=1e-3)


def test_list_csv_parses_and_matches_json(cli_runs):
    result = invoke("runs", "list", "--runs-dir", cli_runs.runs_dir, "-f", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["id"] for r in rows} == set(rows_by_id(cli_runs))
    base = next(r for r in rows if r["id"] == run_id(cli_runs.base))
    assert float(base["best"]) == summary(cli_runs.base)["best"]["value"] and base["status"] == "completed"


def test_list_table_shows_runs_and_corrupt_rows(cli_runs):
    result = invoke("runs", "list", "--runs-dir", cli_runs.runs_dir)
    assert result.exit_code == 0
    for path in cli_runs.real:
        assert run_id(path) in result.stdout
    out = result.stdout
    assert "corrupt" in out and "run.json is corrupt or truncated" in out and "crashed" in out
    # Runs monitor different metrics (the failed one val/loss), so the metric is named in each cell.
    assert f"val/acc={summary(cli_runs.base)['best']['value']:.4g}" in out


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--status", "failed"], lambda c: [c.failed]),
        (["--status", "corrupt"], lambda c: [c.truncated, c.half_written]),
        (["--tag", "alpha"], lambda c: [c.base, c.bad_summary, c.crashed]),  # the copies keep the tag
        (["--tag", "beta", "--status", "completed"], lambda c: [c.html]),
        (["--sweep", "last"], lambda c: c.jobs),
        (["--where", "name=broken"], lambda c: [c.failed]),
    ],
)
def test_list_filters(cli_runs, args, expect):
    rows = invoke_json("runs", "list", "--runs-dir", cli_runs.runs_dir, "-f", "json", *args)
    assert sorted(r["id"] for r in rows) == sorted(run_id(p) for p in expect(cli_runs))


def test_where_compares_numbers_from_overrides_and_the_config(cli_runs):
    rows = invoke_json(
        "runs", "list", "--runs-dir", cli_runs.runs_dir, "-f", "json", "--where", "params.lr<5e-3"
    )
    # Checked against each run's resolved config: the default lr (1e-3) is not an override, yet it counts.
    # A damaged run directory with a readable config.yaml is matched on it too.
    expected = set()
    for path in [*cli_runs.real, cli_runs.bad_summary, cli_runs.crashed, cli_runs.truncated]:
        if yaml.safe_load((path / "config.yaml").read_text())["lr"] < 5e-3:
            expected.add(run_id(path))
    assert {r["id"] for r in rows} == expected and run_id(cli_runs.base) in expected


def test_where_on_a_metric_and_sort(cli_runs):
    rows = invoke_json(
        "runs",
        "list",
        "--runs-dir",
        cli_runs.runs_dir,
        "-f",
        "json",
        "--where",
        "val/acc>=0",
        "--sort",
        "val/acc",
    )
    # Exactly the runs whose summary.json is readable and holds a val/acc (the garbled one has none to read;
    # whether the failed run logged any depends on when its monitor check refused).
    paths = {}
    for path in [*cli_runs.real, cli_runs.bad_summary, cli_runs.crashed]:
        try:
            if "val/acc" in summary(path)["last"]:
                paths[run_id(path)] = path
        except (ValueError, OSError):
            continue
    assert {r["id"] for r in rows} == set(paths) and run_id(cli_runs.base) in paths
    values = [summary(paths[r["id"]])["last"]["val/acc"] for r in rows]
    assert values == sorted(values)
    down = invoke_json(
        "runs", "list", "--runs-dir", cli_runs.runs_dir, "-f", "json", "--sort", "best", "-r", "-n", "2"
    )
    assert len(down) == 2 and down[0]["best"] >= down[1]["best"]
    assert down[0]["best"] == max(r["best"] for r in rows_by_id(cli_runs).values() if r["best"] is not None)


@pytest.mark.parametrize("bad", ["lr", "lr<", "<3", "lr=>1"])
def test_a_bad_where_is_one_clear_line(cli_runs, bad):
    result = invoke("runs", "list", "--runs-dir", cli_runs.runs_dir, "--where", bad)
    assert result.exit_code == 1
    assert (
        result.stderr.startswith("ERROR: cannot read --where")
        and len(result.stderr.strip().splitlines()) == 1
    )


def test_list_sweeps(cli_runs):
    rows = invoke_json("runs", "list", "--runs-dir", cli_runs.runs_dir, "--sweeps", "-f", "json")
    assert len(rows) == 1
    sweep = rows[0]
    assert sweep["jobs"] == 4 and sweep["status"] == {"completed": 4}
    assert set(sweep["swept"]) == {"lr", "seed"}
    best = max(cli_runs.jobs, key=lambda p: summary(p)["best"]["value"])
    assert sweep["best_run"] == run_id(best) and sweep["best"] == summary(best)["best"]["value"]


def test_list_in_a_fresh_interpreter(cli_runs):
    proc = cli_subprocess(
        "runs", "list", "--runs-dir", cli_runs.runs_dir, "--format", "csv", "--status", "completed"
    )
    assert proc.returncode == 0, proc.stderr
    ids = {row["id"] for row in csv.DictReader(io.StringIO(proc.stdout))}
    assert run_id(cli_runs.base) in ids and run_id(cli_runs.failed) not in ids
    assert "summary.json" in proc.stderr  # the garbage summary is still reported


def test_a_missing_runs_dir_is_one_clear_line(tmp_path):
    result = invoke("runs", "list", "--runs-dir", tmp_path / "nope")
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == f"ERROR: runs directory {tmp_path / 'nope'} does not exist (train a run first, or pass --runs-dir)"
    )


# --- show ------------------------------------------------------------------------------------------------
def test_show_json_reads_back_the_run(cli_runs):
    rid = run_id(cli_runs.base)
    info = invoke_json("runs", "show", rid[:5], "--runs-dir", cli_runs.runs_dir, "--json")
    assert (
        info["id"] == rid and info["status"] == "completed" and info["seed"] == record(cli_runs.base)["seed"]
    )
    assert info["overrides"] == record(cli_runs.base)["overrides"]
    assert info["summary"] == summary(cli_runs.base)
    assert yaml.safe_load(info["config"]) == yaml.safe_load((cli_runs.base / "config.yaml").read_text())
    artifacts = {a["path"]: a for a in info["artifacts"]}
    assert artifacts["checkpoints/best.pt"]["size"] == (cli_runs.base / "checkpoints/best.pt").stat().st_size
    assert "best" in artifacts["checkpoints/best.pt"]["aliases"]
    commit = (record(cli_runs.base).get("git") or {}).get("commit")
    if commit:
        assert info["git"]["commit"] == commit == git_head()
    if (cli_runs.base / "environment.json").exists():
        assert info["environment"]


def test_show_table_has_every_section(cli_runs):
    result = invoke("runs", "show", run_id(cli_runs.html), "--runs-dir", cli_runs.runs_dir)
    assert result.exit_code == 0
    out = result.stdout
    for text in (
        "overrides:",
        "lr=0.01",
        "environment",
        "metrics",
        "val/acc",
        "artifacts",
        "config.yaml",
        HTML_NAME,
    ):
        assert text in out, text
    assert "git" in out


def test_show_failed_run_prints_its_traceback(cli_runs):
    result = invoke("runs", "show", run_id(cli_runs.failed), "--runs-dir", cli_runs.runs_dir, "--no-config")
    assert result.exit_code == 0
    assert "failed" in result.stdout and "traceback" in result.stdout
    assert "ZeroDivisionError" in result.stdout
    assert "config.yaml (resolved)" not in result.stdout


def test_show_stale_running_run_says_crashed(cli_runs):
    info = invoke_json("runs", "show", "dead0001", "--runs-dir", cli_runs.runs_dir, "--json")
    assert info["status"] == "crashed" and info["recorded_status"] == "running"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("bad00001", "is corrupt or truncated"),
        ("half0001", "is missing (a half-written run directory)"),
        ("zzzzzz", "no run matches 'zzzzzz'"),
        ("bad0", "ambiguous"),
    ],
)
def test_show_bad_refs_are_one_clear_line(cli_runs, ref, message):
    result = invoke("runs", "show", ref, "--runs-dir", cli_runs.runs_dir)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and message in lines[0]
    if ref == "bad0":  # the candidates are listed
        assert "bad00001" in lines[0] and "bad00002" in lines[0]


def test_show_by_path_and_last(cli_runs):
    info = invoke_json("runs", "show", str(cli_runs.failed), "--json")
    assert info["id"] == run_id(cli_runs.failed)
    info = invoke_json("runs", "show", "last", "--runs-dir", cli_runs.runs_dir, "--json")
    assert info["id"] in {run_id(p) for p in cli_runs.jobs}  # the sweep ran last


# --- export ----------------------------------------------------------------------------------------------
def test_export_csv_is_one_registry_row_per_run(cli_runs, tmp_path):
    result = invoke("runs", "export", "--runs-dir", cli_runs.runs_dir)
    assert result.exit_code == 0
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert set(rows) == set(rows_by_id(cli_runs))
    base = rows[run_id(cli_runs.base)]
    config = yaml.safe_load((cli_runs.base / "config.yaml").read_text())
    assert float(base["param.lr"]) == config["lr"] and base["param.model.dropout"] == str(
        config["model"]["dropout"]
    )
    assert float(base["metric.val/acc"]) == summary(cli_runs.base)["last"]["val/acc"]
    assert base["status"] == "completed" and rows[run_id(cli_runs.failed)]["status"] == "failed"
    assert base["git_commit"] == ((record(cli_runs.base).get("git") or {}).get("commit") or "")
    assert float(rows[run_id(cli_runs.html)]["param.lr"]) == 0.01
    assert rows["bad00001"]["status"] == "corrupt" and rows["bad00001"]["problem"]

    out = tmp_path / "registry.json"
    result = invoke("runs", "export", "--runs-dir", cli_runs.runs_dir, "-f", "json", "--out", out)
    assert result.exit_code == 0
    data = json.loads(out.read_text())
    assert {r["id"] for r in data} == set(rows)


@pytest.mark.parametrize("args", [["--where", "lr<1e-3"], ["--sort", "lr"]])
def test_a_name_that_is_both_a_param_and_a_metric_must_say_which(cli_runs, args):
    # One of the runs logged a metric named `lr` next to the parameter `lr`: a bare `lr` is ambiguous.
    result = invoke("runs", "list", "--runs-dir", cli_runs.runs_dir, *args)
    assert result.exit_code == 1 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if not line.startswith("WARNING:")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: ") and "params.lr" in errors[0], result.stderr
    assert "metrics.lr" in errors[0]


def test_params_and_metrics_spellings(cli_runs):
    def ids(*args: str) -> set[str]:
        return {
            r["id"] for r in invoke_json("runs", "list", "--runs-dir", cli_runs.runs_dir, "-f", "json", *args)
        }

    by_param = ids("--where", "params.lr>=0.01")
    assert run_id(cli_runs.html) in by_param and run_id(cli_runs.base) not in by_param
    assert ids("--where", "param.lr>=0.01") == by_param  # the singular form of `runs export`'s columns
    # The metric is the last logged value (the run that logged one, 0.0005).
    assert ids("--where", "metrics.lr<=0.0005") == {run_id(cli_runs.crashed)}
    assert ids("--where", "metrics.lr>0.001") == set()
    rows = invoke_json(
        "runs",
        "list",
        "--runs-dir",
        cli_runs.runs_dir,
        "-f",
        "json",
        "--sort",
        "params.lr",
        "-s",
        "completed",
    )
    assert rows[-1]["params"].get("lr") == 0.01 or rows[-1]["id"] in by_param


@pytest.mark.parametrize("columns", [80, 200])
def test_tables_fit_the_terminal_without_cutting_cells(cli_runs, columns):
    env = {"COLUMNS": str(columns)}
    runs = invoke("runs", "list", "--runs-dir", cli_runs.runs_dir, env=env)
    sweeps = invoke("runs", "list", "--sweeps", "--runs-dir", cli_runs.runs_dir, env=env)
    for result in (runs, sweeps):
        assert result.exit_code == 0, result.output
        assert all(len(line) <= columns for line in result.stdout.splitlines()), result.stdout
        assert "…" not in result.stdout, result.stdout
    assert run_id(cli_runs.base) in runs.stdout and "completed" in runs.stdout
    best = f"val/acc={summary(cli_runs.base)['best']['value']:.4g}"
    assert best in runs.stdout
    assert "4 completed" in sweeps.stdout and "val/acc=" in sweeps.stdout
    if columns == 80:
        assert "not shown for width" in runs.stdout
    else:
        assert "not shown for width" not in runs.stdout and "params" in runs.stdout
