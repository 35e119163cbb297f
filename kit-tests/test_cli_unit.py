"""The runs CLI's pieces without training: --where parsing, metric histories with resumes, rerun overrides,
sweep aggregation, damaged files. Fast; the end-to-end tests are in test_cli_*.py (marked slow)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from runkit.catalog.entry import RunEntry
from runkit.catalog.history import metric_history
from runkit.catalog.query import compare, parse_age, parse_where
from runkit.catalog.runs import scan_runs
from runkit.catalog.sweeps import SweepEntry
from runkit.catalog.values import overrides_dict
from runkit.cli.rerun import rerun_overrides
from runkit.errors import UserError
from runkit.reports.aggregate import sweep_groups
from runkit.reports.html import html_kv, html_table

from conftest import ROOT


def write_events(path: Path, events: list[dict]) -> None:
    path.write_text(
        "".join(json.dumps({"seq": i + 1, "time": 0.0, **e}) + "\n" for i, e in enumerate(events))
    )


def fake_run(path: Path, **record) -> RunEntry:
    path.mkdir(parents=True)
    rec = {"id": path.name.rsplit("-", 1)[-1], "name": "x", "status": "completed", "overrides": [], **record}
    (path / "run.json").write_text(json.dumps(rec))
    return RunEntry(path=path, record=rec)


@pytest.mark.parametrize(
    ("expr", "key", "op", "value"),
    [
        ("lr<1e-3", "lr", "<", 1e-3),
        ("val/acc >= 0.9", "val/acc", ">=", 0.9),
        ("status=completed", "status", "=", "completed"),
        ("model.name==mlp", "model.name", "=", "mlp"),
        ("name~base", "name", "~", "base"),
        ("deterministic!=true", "deterministic", "!=", True),
    ],
)
def test_parse_where(expr, key, op, value):
    cond = parse_where(expr)
    assert (cond.key, cond.op, cond.value) == (key, op, value)


@pytest.mark.parametrize("expr", ["lr", "lr<", "<1", "lr<<1", "", "a b<1"])
def test_parse_where_rejects_garbage(expr):
    with pytest.raises(UserError, match="cannot read --where"):
        parse_where(expr)


@pytest.mark.parametrize(
    ("actual", "op", "expected", "result"),
    [
        (0.0005, "<", 1e-3, True),
        ("0.01", "<", 1e-3, False),  # an override value read from the command line is still a number
        (10, ">=", 10, True),
        ("mlp", "=", "mlp", True),
        ("mlp", "!=", "cnn", True),
        (True, "=", True, True),
        (None, "=", None, True),
        ("base-run", "~", "BASE", True),
        ("abc", "<", 3, False),  # a string is never less than a number
    ],
)
def test_compare(actual, op, expected, result):
    assert compare(actual, op, expected) is result


def test_overrides_dict_reads_values():
    assert overrides_dict(
        ["lr=1e-3", "+extra=x", "~drop", "tags=[a,b]", "seed=null", "deterministic=true"]
    ) == {
        "lr": 1e-3,
        "extra": "x",
        "tags": "[a,b]",
        "seed": None,
        "deterministic": True,
    }


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("90s", 90), ("2w", 14 * 86400)]
)
def test_parse_age(text, seconds):
    assert parse_age(text) == seconds


def test_metric_history_last_value_per_step_wins_and_resume_drops_superseded_steps(tmp_path):
    write_events(
        tmp_path / "events.jsonl",
        [
            {"type": "params", "step": None, "data": {"lr": 0.1}},
            *({"type": "metrics", "step": s, "data": {"loss": 10.0 - s}} for s in range(1, 6)),
            {"type": "metrics", "step": 5, "data": {"acc": 0.5}},
            # Interrupted after step 5, resumed from the checkpoint at step 3: steps 4-5 are superseded.
            {"type": "resume", "step": 3, "data": {"from_step": 3}},
            {"type": "metrics", "step": 4, "data": {"loss": 0.4}},
        ],
    )
    with (tmp_path / "events.jsonl").open("a") as f:
        f.write('{"seq": 99, "type": "metrics", "step": 9, "data": {"loss": 9')  # half-written last line
    history = metric_history(tmp_path)
    assert history["loss"] == [(1, 9.0), (2, 8.0), (3, 7.0), (4, 0.4)]
    assert "acc" not in history  # only logged at a superseded step


def test_scan_runs_reports_damage_and_keeps_going(tmp_path):
    good = fake_run(tmp_path / "20250101-000000-a-aaaa0001")
    (good.path / "summary.json").write_text('{"last": {"acc": 1}, "best": {"metric": "acc", "value": 1}}')
    bad = tmp_path / "20250101-000001-b-bbbb0001"
    bad.mkdir()
    (bad / "run.json").write_text('{"id": "bbbb0001", "na')
    half = tmp_path / "20250101-000002-c-cccc0001"
    half.mkdir()
    (half / "events.jsonl").write_text("")
    (tmp_path / "not-a-run").mkdir()  # no run files: not listed
    warnings: list[str] = []
    runs = {r.id: r for r in scan_runs(tmp_path, warn=warnings.append)}
    assert set(runs) == {"aaaa0001", "bbbb0001", "cccc0001"}
    assert runs["aaaa0001"].status == "completed" and runs["aaaa0001"].monitor_value == 1
    assert runs["bbbb0001"].status == runs["cccc0001"].status == "corrupt"
    assert len(warnings) == 2 and str(bad / "run.json") in warnings[0] + warnings[1]


def test_rerun_overrides_replay_the_run_with_its_seed_and_link(tmp_path):
    run = fake_run(
        tmp_path / "r-abcd1234",
        seed=7,
        overrides=[
            "lr=0.1",
            "seed=null",
            "hydra/launcher=joblib",
            "resume=last",
            "paths.runs_dir=/old",
            "epochs=3",
        ],
    )
    out = rerun_overrides(run, ["epochs=5", "+new=1"], tmp_path / "runs")
    assert out == [
        "lr=0.1",
        "seed=7",  # the seed actually drawn, not `null`
        f"paths.runs_dir={(tmp_path / 'runs').resolve()}",
        "++rerun_of=abcd1234",
        "epochs=5",
        "+new=1",
    ]


def test_sweep_groups_mean_and_std_across_seeds(tmp_path):
    jobs = []
    for i, (lr, seed, acc) in enumerate(
        [(0.1, 1, 0.5), (0.1, 2, 0.7), (0.01, 1, 0.2), (0.01, 2, 0.4), (0.01, 3, 0.3)]
    ):
        job = fake_run(tmp_path / f"j-{i:08x}", overrides=[f"lr={lr}", f"seed={seed}"])
        job.summary = {"last": {"acc": acc}, "best": {"metric": "acc", "mode": "max", "value": acc}}
        jobs.append(job)
    sweep = SweepEntry(path=tmp_path, jobs=jobs)
    assert sweep.swept_params() == ["lr", "seed"]
    groups = {g.values["lr"]: g for g in sweep_groups(jobs, sweep.swept_params(), "acc")}
    assert groups[0.1].n == 2 and groups[0.1].mean == pytest.approx(0.6)
    assert groups[0.01].std == pytest.approx(statistics.stdev([0.2, 0.4, 0.3]))
    assert sweep.best_job() is jobs[1]


def test_html_helpers_escape_everything():
    assert "<script>" not in html_kv({"<script>": "<script>alert(1)</script>"})
    assert "&lt;b&gt;&amp;" in html_table(["<b>&"], [["<b>&"]])


def test_the_cli_never_imports_torch():
    code = (
        "import sys; from runkit.cli import app; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    src = str(ROOT / "src")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]
