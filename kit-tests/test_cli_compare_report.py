"""`runs compare` and `runs report` over real runs and a real sweep: tables, plots, HTML and PDF read back."""

from __future__ import annotations

import base64
import csv
import io
import re
import statistics

import pytest

from cli_helpers import (
    HTML_NAME,
    HTML_TAG,
    invoke,
    invoke_json,
    record,
    run_id,
    summary,
)

# The session fixture `cli_runs` (real runs made once for all the CLI test modules) lives there.
pytest_plugins = ["cli_helpers"]
pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n"


# --- compare ---------------------------------------------------------------------------------------------
def test_compare_puts_differing_params_and_metrics_side_by_side(cli_runs, tmp_path):
    base, html = run_id(cli_runs.base), run_id(cli_runs.html)
    plot = tmp_path / "curves.png"
    data = invoke_json(
        "runs", "compare", base[:6], html, "--runs-dir", cli_runs.runs_dir, "-f", "json", "--plot", plot
    )
    assert [r["id"] for r in data["runs"]] == [base, html]
    params = data["params"]
    assert params["lr"] == [0.001, 0.01] and params["optimizer.lr"] == [0.001, 0.01]
    assert "name" not in params and "tags" not in params  # plumbing: shown in the header, not as params
    assert "epochs" not in params and "seed" not in params  # equal everywhere: not shown
    assert not any(k.startswith("paths.") for k in params)
    for metric, values in data["metrics"].items():
        if metric.startswith("best "):
            continue
        assert values == [summary(cli_runs.base)["last"][metric], summary(cli_runs.html)["last"][metric]]
    assert data["metrics"]["best val/acc"] == [
        summary(p)["best"]["value"] for p in (cli_runs.base, cli_runs.html)
    ]
    assert data["plot"] == str(plot) and plot.read_bytes().startswith(PNG) and plot.stat().st_size > 5000


def test_compare_table_and_csv(cli_runs):
    args = ["runs", "compare", run_id(cli_runs.base), run_id(cli_runs.html), "--runs-dir", cli_runs.runs_dir]
    table = invoke(*args)
    assert table.exit_code == 0
    assert "optimizer.lr" in table.stdout and "val/acc" in table.stdout and HTML_NAME in table.stdout
    # Each row says whether it is a param or a metric (the learning rate is both: the knob and train/lr).
    assert "params.lr " in table.stdout and "metrics.train/lr " in table.stdout
    assert "metrics.val/acc (best)" in table.stdout
    rows = list(csv.DictReader(io.StringIO(invoke(*args, "-f", "csv").stdout)))
    lr = next(r for r in rows if r["kind"] == "param" and r["key"] == "lr")
    assert float(lr[run_id(cli_runs.base)]) == 0.001 and float(lr[run_id(cli_runs.html)]) == 0.01


def test_compare_a_sweep(cli_runs, tmp_path):
    data = invoke_json(
        "runs", "compare", "--sweep", "last", "--runs-dir", cli_runs.runs_dir, "-f", "json",
        "--plot", tmp_path / "sweep.png", "--metric", "train/loss", "--metric", "val/acc",
    )  # fmt: skip
    assert sorted(r["id"] for r in data["runs"]) == sorted(run_id(p) for p in cli_runs.jobs)
    assert set(data["params"]) >= {"lr", "seed"}
    assert (tmp_path / "sweep.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["onlyone"], 2, "at least two runs"),
        (["zzzz", "yyyy"], 1, "ERROR: no run matches 'zzzz'"),
        (["--metric", "val/acc", "last", "last"], 2, "same run"),
    ],
)
def test_compare_bad_input(cli_runs, args, code, message):
    result = invoke("runs", "compare", *args, "--runs-dir", cli_runs.runs_dir)
    assert result.exit_code == code and message in result.output and "Traceback" not in result.output


def test_compare_plot_of_an_unknown_metric_is_one_clear_line(cli_runs, tmp_path):
    result = invoke(
        "runs", "compare", run_id(cli_runs.base), run_id(cli_runs.html), "--runs-dir", cli_runs.runs_dir,
        "--plot", tmp_path / "x.png", "--metric", "nope/metric",
    )  # fmt: skip
    assert result.exit_code == 1 and result.stderr.startswith("ERROR: none of nope/metric was logged")


# --- report ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_report_files(cli_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = invoke("runs", "report", run_id(cli_runs.html), "--runs-dir", cli_runs.runs_dir, "--out", out)
    assert result.exit_code == 0, result.output
    rid = run_id(cli_runs.html)
    assert result.stdout.split() == [str(out / f"report-{rid}.html"), str(out / f"report-{rid}.pdf")]
    return out / f"report-{rid}.html", out / f"report-{rid}.pdf"


def pdf_text(path) -> tuple[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return len(reader.pages), "\n".join(page.extract_text() or "" for page in reader.pages)


def test_run_report_html_escapes_names_and_tags(run_report_files):
    text = run_report_files[0].read_text(encoding="utf-8")
    assert "&lt;b&gt;a&amp;b&lt;/b&gt;" in text and HTML_NAME not in text
    assert "&lt;i&gt;x&lt;/i&gt;" in text and HTML_TAG not in text


def test_run_report_html_is_self_contained_with_curves_config_git_env(cli_runs, run_report_files):
    text = run_report_files[0].read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert images and base64.b64decode(images[0]).startswith(PNG)
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched from anywhere
    for heading in ("Summary", "Learning curves", "Overrides", "Git", "Environment", "Config (resolved)"):
        assert f"<h2>{heading}</h2>" in text, heading
    assert run_id(cli_runs.html) in text and "lr: 0.01" in text
    commit = (record(cli_runs.html).get("git") or {}).get("commit")
    if commit:
        assert commit in text
    best = summary(cli_runs.html)["best"]["value"]
    assert f"{best:.4g}" in text


def test_run_report_pdf_has_pages_and_text(cli_runs, run_report_files):
    pages, text = pdf_text(run_report_files[1])
    assert pages >= 3  # summary, learning curves, config
    for expected in (
        run_id(cli_runs.html),
        "val/acc",
        "Learning curves",
        "Config (resolved)",
        "lr: 0.01",
        HTML_NAME,
    ):
        assert expected in text, expected


def test_report_of_a_failed_run_includes_the_traceback(cli_runs, tmp_path):
    result = invoke(
        "runs", "report", run_id(cli_runs.failed), "--runs-dir", cli_runs.runs_dir, "-o", tmp_path, "--no-pdf"
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / f"report-{run_id(cli_runs.failed)}.html").read_text()
    assert "<h2>Traceback</h2>" in text and "ZeroDivisionError" in text
    assert not (tmp_path / f"report-{run_id(cli_runs.failed)}.pdf").exists()


def test_sweep_report_aggregates_across_seeds(cli_runs, tmp_path):
    result = invoke("runs", "report", "--sweep", "last", "--runs-dir", cli_runs.runs_dir, "-o", tmp_path)
    assert result.exit_code == 0, result.output
    sweep_id = cli_runs.sweep_dir.name.rsplit("-", 1)[-1]
    html_file, pdf_file = (
        tmp_path / f"report-sweep-{sweep_id}.html",
        tmp_path / f"report-sweep-{sweep_id}.pdf",
    )
    text = html_file.read_text(encoding="utf-8")
    assert "mean ± std over seeds" in text and len(re.findall(r"data:image/png;base64,", text)) == 2
    by_lr: dict[float, list[float]] = {}
    for job in cli_runs.jobs:
        lr = next(float(o.split("=", 1)[1]) for o in record(job)["overrides"] if o.startswith("lr="))
        by_lr.setdefault(lr, []).append(summary(job)["best"]["value"])
    pages, pdf = pdf_text(pdf_file)
    assert pages >= 3 and f"Sweep {sweep_id}" in pdf
    for lr, values in by_lr.items():
        assert len(values) == 2  # two seeds per point
        mean, std = f"{statistics.fmean(values):.4g}", f"{statistics.stdev(values):.4g}"
        assert f'<td class="num">{mean}</td><td class="num">{std}</td>' in text
        assert re.search(rf"{re.escape(str(lr))}\s+2\s+{re.escape(mean)}\s+{re.escape(std)}", pdf), (
            lr,
            mean,
            std,
        )
    for job in cli_runs.jobs:
        assert run_id(job) in text and run_id(job) in pdf


@pytest.mark.parametrize(
    ("args", "message"),
    [([], "give one run or --sweep"), (["last", "--no-html", "--no-pdf"], "nothing to write")],
)
def test_report_bad_input(cli_runs, args, message):
    result = invoke("runs", "report", *args, "--runs-dir", cli_runs.runs_dir)
    assert result.exit_code == 2 and message in result.output


def test_run_report_pdf_flows_text_and_lists_artifacts(cli_runs, run_report_files):
    from pypdf import PdfReader

    pages = [page.extract_text() or "" for page in PdfReader(str(run_report_files[1])).pages]
    text_pages = [p for p in pages if p.startswith("Run ")]  # text pages open with the report's title
    for page in text_pages[:-1]:
        assert len(page.splitlines()) >= 8, page  # no page left with a stray line or two
    text = "\n".join(pages)
    assert "Artifacts" in text and "checkpoints/best.pt" in text and " KB" in text
    assert "shipped_seq" not in text


def test_sweep_report_never_plots_against_the_seed(cli_runs, tmp_path):
    from runkit.catalog.sweeps import resolve_sweep
    from runkit.reports.model import Figure
    from runkit.reports.report import build_sweep_report

    sweep = resolve_sweep("last", cli_runs.runs_dir)
    report = build_sweep_report(sweep, {}, None, None)
    figures = [b.figure for s in report.sections for b in s.blocks if isinstance(b, Figure)]
    labels = [ax.get_xlabel() for fig in figures for ax in fig.axes if ax.get_visible()]
    assert "lr" in labels and "seed" not in labels
    html = invoke("runs", "report", "--sweep", "last", "--runs-dir", cli_runs.runs_dir, "-o", tmp_path)
    assert html.exit_code == 0, html.output
    text = next(tmp_path.glob("*.html")).read_text(encoding="utf-8")
    sweep_json = text[text.index("<h2>sweep.json</h2>") :]
    assert "<th>job</th>" in sweep_json[: sweep_json.index("<h2>", 5)]  # the jobs as a table
    assert not re.search(r"\de\+0?9", text)  # times as dates, never 1.796e+09
    assert "{'" not in text  # no Python repr of the jobs


@pytest.mark.parametrize("columns", [80, 200])
def test_compare_keeps_every_shown_run_whole_and_names_those_left_out(cli_runs, columns):
    runs = [run_id(p) for p in [cli_runs.base, cli_runs.html, *cli_runs.jobs]]
    result = invoke("runs", "compare", *runs, "--runs-dir", cli_runs.runs_dir, env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), result.stdout
    header = lines[2]  # the ids row
    shown = [r for r in runs if r in header]
    assert shown and shown == runs[: len(shown)] and "…" not in result.stdout
    if len(shown) < len(runs):
        assert f"{len(runs) - len(shown)} more run(s) not shown for width" in result.stdout
        assert all(r in result.stdout.split("not shown for width", 1)[1] for r in runs[len(shown) :])
    else:
        assert columns == 200
