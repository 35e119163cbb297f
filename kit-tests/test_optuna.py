"""`python train.py -m hparams_search=optuna`: our Optuna sweeper plugin, current Optuna, sqlite storage.

Each trial is a sweep job; the value Optuna records is what train.py returned (the monitored metric's best
value), read back here from each run's summary.json; the study can be continued with `sweep.resume`.
"""

from __future__ import annotations

import math

import pytest
import yaml

from sweep_helpers import TINY, error_lines, run_record, run_summary, run_sweep

pytestmark = pytest.mark.slow
optuna = pytest.importorskip("optuna")

SEARCH = ["hparams_search=optuna", "hydra.sweeper.n_startup_trials=2", *TINY, "tracker=local"]


def load_study(sweep_dir):
    return optuna.load_study(study_name="train", storage=f"sqlite:///{sweep_dir}/optuna.db")


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """Three trials (what they left behind is kept in `first`), then the same search continued to five."""
    runs = tmp_path_factory.mktemp("optuna") / "runs"
    sweep = run_sweep(runs, *SEARCH, "hydra.sweeper.n_trials=3")
    first = {
        "dir": sweep.dir,
        "record": sweep.record,
        "rows": sweep.csv_rows(),
        "runs": sweep.run_dirs(),
        "results": yaml.safe_load((sweep.dir / "optimization_results.yaml").read_text()),
        "trials": [(t.number, t.state, t.value, dict(t.params)) for t in load_study(sweep.dir).trials],
    }
    more = run_sweep(runs, *SEARCH, "hydra.sweeper.n_trials=5", f"sweep.resume={sweep.dir}")
    return first, more


def test_the_study_is_stored_in_sqlite_in_the_sweep_directory(search):
    first, _ = search
    assert (first["dir"] / "optuna.db").is_file()
    states = [(n, s) for n, s, _, _ in first["trials"]]
    assert states == [(i, optuna.trial.TrialState.COMPLETE) for i in range(3)]
    assert first["record"]["sweeper"].endswith("_optuna_sweeper.sweeper.OptunaSweeper")
    assert first["record"]["search_space"] == {
        "lr": "tag(log, interval(1e-4, 1e-1))",
        "model.dropout": "interval(0.0, 0.5)",
    }


def test_trials_sample_lr_and_dropout_within_the_search_space(search):
    trials = search[0]["trials"]
    for _, _, _, params in trials:
        assert set(params) == {"lr", "model.dropout"}
        assert 1e-4 <= params["lr"] <= 1e-1 and 0.0 <= params["model.dropout"] <= 0.5
    assert len({p["lr"] for _, _, _, p in trials}) == 3


def test_each_trial_ran_its_parameters_and_scored_the_monitored_metric(search):
    first, _ = search
    for (number, _, value, params), run_dir in zip(first["trials"], first["runs"], strict=True):
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert math.isclose(config["lr"], params["lr"])
        assert math.isclose(config["model"]["dropout"], params["model.dropout"])
        assert value == run_summary(run_dir)["best"]["value"]  # what train.py returned
        assert run_record(run_dir)["sweep"]["job_num"] == number  # job number = trial number


def test_the_summary_marks_optunas_best_trial(search):
    first, _ = search
    best_number = max(first["trials"], key=lambda t: t[2])[0]
    marked = [r for r in first["rows"] if r["is_best"] == "true"]
    assert len(first["rows"]) == 3 and [r["job"] for r in marked] == [str(best_number)]
    assert set(first["record"]["varying"]) >= {"lr", "model.dropout"}
    assert first["results"]["best_trial"] == best_number and first["results"]["trials"]["complete"] == 3


def test_a_search_is_continued_from_its_storage(search):
    first, more = search
    assert more.dir == first["dir"]
    study = load_study(more.dir)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 5
    before = [(n, v, p) for n, _, v, p in first["trials"]]
    assert [(t.number, t.value, dict(t.params)) for t in study.trials[:3]] == before
    rows = more.csv_rows()
    assert [r["job"] for r in rows] == ["0", "1", "2", "3", "4"] and len(more.run_dirs()) == 5


def test_a_missing_monitored_metric_is_one_clear_error_and_a_failed_trial(tmp_path):
    sweep = run_sweep(
        tmp_path / "runs", *SEARCH, "hydra.sweeper.n_trials=3", "monitor.metric=val/nope", check=False
    )
    assert sweep.proc.returncode == 1
    first = error_lines(sweep.proc.stderr)[0]
    assert first == "ERROR: monitor.metric='val/nope' is not one of val/loss, val/acc"
    assert "val/acc" in first and "val/loss" in first
    study = load_study(sweep.dir)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL]  # stopped: no trial wasted
    [row] = sweep.csv_rows()
    assert row["status"] == "failed" and "val/nope" in row["error"] and row["best"] == ""
