"""`runs rerun`, `runs sync`, `runs archive`, `runs gc` for real: new runs, backend files, moved folders."""

from __future__ import annotations

import shlex
import shutil

import pytest

from cli_helpers import (
    cli_subprocess,
    copy_run,
    git_head,
    invoke,
    invoke_json,
    record,
    run_id,
    summary,
)
from conftest import ROOT, project_env, read_events

# The session fixture `cli_runs` (real runs made once for all the CLI test modules) lives there.
pytest_plugins = ["cli_helpers"]
pytestmark = pytest.mark.slow


def code_flags(run_dir) -> list[str]:
    """--allow-different-code when the run or the project has no commit to compare (a project without git)."""
    commit = (record(run_dir).get("git") or {}).get("commit")
    return [] if commit and commit == git_head() else ["--allow-different-code"]


# --- rerun -----------------------------------------------------------------------------------------------
def test_rerun_dry_run_prints_the_saved_overrides_seed_and_link(cli_runs):
    job = cli_runs.jobs[0]
    rec = record(job)
    result = invoke(
        "runs", "rerun", run_id(job), "epochs=2", "--dry-run", "--runs-dir", cli_runs.runs_dir,
        "--project-dir", ROOT, *code_flags(job),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cd, command = result.stdout.strip().split(" && ", 1)
    assert cd == f"cd {shlex.quote(str(ROOT))}"
    args = shlex.split(command)[2:]  # after `python train.py`
    swept = [o for o in rec["overrides"] if o.split("=")[0] in ("lr", "name")]
    assert set(swept) <= set(args)
    assert f"seed={rec['seed']}" in args and f"++rerun_of={rec['id']}" in args
    assert f"paths.runs_dir={cli_runs.runs_dir.resolve()}" in args
    assert args[-1] == "epochs=2" and "epochs=1" not in args  # the new override replaces the saved one


def test_rerun_refuses_when_the_code_differs(cli_runs, tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    old = copy_run(
        cli_runs.base, runs_dir, "0dd00001", git={"commit": "0" * 40, "branch": "main", "dirty": False}
    )
    args = ["runs", "rerun", "0dd0", "--runs-dir", runs_dir, "--project-dir", ROOT, "--dry-run"]
    refused = invoke(*args)
    assert refused.exit_code == 1
    line = refused.stderr.strip()
    assert line.startswith("ERROR: ") and "--allow-different-code" in line and len(line.splitlines()) == 1
    assert ("000000000000" in line) if git_head() else ("not a git repository" in line)
    allowed = invoke(*args, "--allow-different-code")
    assert allowed.exit_code == 0 and "++rerun_of=0dd00001" in allowed.stdout
    assert "rerunning anyway" in allowed.stderr

    no_git = copy_run(old, runs_dir, "0dd00002", git=None)
    (no_git / "git.json").unlink(missing_ok=True)  # git.json would tell the commit too
    refused = invoke(
        "runs", "rerun", run_id(no_git), "--runs-dir", runs_dir, "--project-dir", ROOT, "--dry-run"
    )
    assert refused.exit_code == 1 and "recorded no git commit" in refused.stderr


def test_rerun_makes_a_linked_run_that_reproduces_the_original(cli_runs, tmp_path):
    runs_dir = tmp_path / "runs"
    original = shutil.copytree(cli_runs.base, runs_dir / cli_runs.base.name)
    result = invoke(
        "runs", "rerun", run_id(original), "--runs-dir", runs_dir, "--project-dir", ROOT,
        *code_flags(original), env=project_env(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    new_id = result.stdout.strip().splitlines()[-1].split()[2]
    new = next(runs_dir.glob(f"*-{new_id}"))
    rec = record(new)
    assert rec["rerun_of"] == run_id(original) and rec["status"] == "completed"
    assert rec["seed"] == record(original)["seed"]
    assert rec.get("config_hash") == record(original).get("config_hash")  # rerun_of is not part of it
    # Same config, same seed, same code: the same numbers.
    assert summary(new)["best"] == summary(original)["best"]
    shown = invoke_json("runs", "show", new_id, "--runs-dir", runs_dir, "--json")
    assert shown["rerun_of"] == run_id(original)


def test_rerun_of_an_unknown_run(cli_runs):
    result = invoke("runs", "rerun", "zzzz", "--runs-dir", cli_runs.runs_dir, "--dry-run")
    assert result.exit_code == 1 and result.stderr.startswith("ERROR: no run matches 'zzzz'")


# --- sync ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sync_available():
    try:
        from runkit.tracking.sync import sync_run  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"tracking/sync.py is not available yet: {exc}")
    if not (ROOT / "configs" / "tracker" / "tensorboard.yaml").is_file():
        pytest.skip("this project was made without the TensorBoard backend")
    pytest.importorskip("tensorboard")


def test_sync_replays_a_local_run_into_tensorboard_once(cli_runs, sync_available, tmp_path):
    from backend_readers import tb_scalars

    run_dir = shutil.copytree(cli_runs.html, tmp_path / cli_runs.html.name)
    first = invoke("runs", "sync", str(run_dir), "--to", "tensorboard")
    assert first.exit_code == 0, first.output
    assert "event(s) sent" in first.stdout and "run completed" in first.stdout
    log_dirs = [p.parent for p in run_dir.rglob("events.out.tfevents.*")]
    assert log_dirs
    scalars = tb_scalars(log_dirs[0])
    events = read_events(run_dir)
    logged = [
        (e["step"], e["data"]["val/acc"]) for e in events if e["type"] == "metrics" and "val/acc" in e["data"]
    ]
    assert [(s, pytest.approx(v)) for s, v in logged] == scalars["val/acc"]
    files = sorted(p.name for p in run_dir.rglob("*") if p.is_file())

    second = invoke("runs", "sync", str(run_dir), "--to", "tensorboard")
    assert second.exit_code == 0 and "already up to date" in second.stdout
    assert sorted(p.name for p in run_dir.rglob("*") if p.is_file()) == files  # nothing new written
    assert tb_scalars(log_dirs[0])["val/acc"] == scalars["val/acc"]  # nothing duplicated


def test_sync_all_skips_damaged_runs_and_reports_each(cli_runs, sync_available, tmp_path):
    runs_dir = tmp_path / "runs"
    shutil.copytree(cli_runs.runs_dir, runs_dir, ignore=shutil.ignore_patterns("sweeps"))
    result = invoke("runs", "sync", "--all", "--to", "tensorboard", "--runs-dir", runs_dir)
    synced = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("synced ")]
    assert run_id(cli_runs.base) in synced and run_id(cli_runs.failed) in synced
    assert "bad00001" not in synced and "half0001" not in synced
    assert "bad00001" in result.stderr and "half0001" in result.stderr
    assert (
        f"of {len(synced) + result.stderr.count('ERROR: sync of')} run(s) synced to tensorboard"
        in result.stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["last", "--to", "nope"], "unknown backend 'nope'"),
        (["last", "--to", "local"], "the run directory is the local record already"),
        (["--to", "tensorboard"], "give one run or --all"),
    ],
)
def test_sync_bad_input(cli_runs, args, message):
    result = invoke("runs", "sync", *args, "--runs-dir", cli_runs.runs_dir)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


# --- archive / gc ----------------------------------------------------------------------------------------
@pytest.fixture
def scratch_runs(cli_runs, tmp_path):
    """A copy of the session's runs to move and delete."""
    runs_dir = tmp_path / "runs"
    shutil.copytree(cli_runs.runs_dir, runs_dir)
    return runs_dir


def listed(runs_dir) -> set[str]:
    return {r["id"] for r in invoke_json("runs", "list", "--runs-dir", runs_dir, "-f", "json")}


def test_archive_lists_first_and_moves_with_yes(cli_runs, scratch_runs, tmp_path):
    before = listed(scratch_runs)
    dry = invoke("runs", "archive", "--status", "failed", "--runs-dir", scratch_runs)
    assert dry.exit_code == 0 and "would move 1 run(s)" in dry.stdout and "pass --yes" in dry.stdout
    assert listed(scratch_runs) == before  # nothing moved
    done = invoke("runs", "archive", "--status", "failed", "--runs-dir", scratch_runs, "--yes")
    assert done.exit_code == 0 and "moved 1 run(s)" in done.stdout
    archive = tmp_path / "runs-archive"
    assert listed(scratch_runs) == before - {run_id(cli_runs.failed)}
    assert listed(archive) == {run_id(cli_runs.failed)}


def test_archive_a_whole_sweep_keeps_its_layout(cli_runs, scratch_runs, tmp_path):
    target = tmp_path / "elsewhere"
    done = invoke("runs", "archive", "--sweep", "last", "--runs-dir", scratch_runs, "--to", target, "--yes")
    assert done.exit_code == 0, done.output
    assert not (scratch_runs / "sweeps" / cli_runs.sweep_dir.name).exists()
    moved = target / "sweeps" / cli_runs.sweep_dir.name
    assert (moved / "sweep.json").is_file() or not (cli_runs.sweep_dir / "sweep.json").is_file()
    rows = invoke_json("runs", "list", "--runs-dir", target, "--sweeps", "-f", "json")
    assert rows[0]["jobs"] == 4


def test_archive_by_age(cli_runs, scratch_runs):
    young = invoke("runs", "archive", "--older-than", "30d", "--runs-dir", scratch_runs)
    assert young.exit_code == 0 and young.stdout.strip() == "no runs match"
    old = invoke("runs", "archive", "--older-than", "0s", "--status", "completed", "--runs-dir", scratch_runs)
    assert old.exit_code == 0 and "would move" in old.stdout and run_id(cli_runs.base) in old.stdout


def test_gc_deletes_only_with_yes(cli_runs, scratch_runs):
    before = listed(scratch_runs)
    collected = {"bad00001", "half0001", run_id(cli_runs.failed), "dead0001"}  # corrupt, failed, crashed
    dry = invoke("runs", "gc", "--delete", "--runs-dir", scratch_runs)
    assert dry.exit_code == 0 and "would delete 4 run(s)" in dry.stdout
    assert listed(scratch_runs) == before
    done = invoke("runs", "gc", "--delete", "--yes", "--runs-dir", scratch_runs)
    assert done.exit_code == 0 and "deleted 4 run(s)" in done.stdout
    assert listed(scratch_runs) == before - collected


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "say which runs"),
        (["--older-than", "soon"], 1, "ERROR: cannot read age 'soon'"),
        (["--status", "failed", "--to", "{runs}/inside"], 1, "must be outside the runs directory"),
    ],
)
def test_archive_bad_input(scratch_runs, args, code, message):
    args = [a.replace("{runs}", str(scratch_runs)) for a in args]
    result = invoke("runs", "archive", *args, "--runs-dir", scratch_runs)
    assert result.exit_code == code and message in result.output


def test_help_lists_every_command_in_a_fresh_interpreter():
    proc = cli_subprocess("runs", "--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("list", "show", "compare", "report", "rerun", "sync", "export", "archive", "gc"):
        assert command in proc.stdout
