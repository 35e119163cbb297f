"""Run and sweep reports: a self-contained HTML file and a PDF, drawn with matplotlib (offline, no browser).

The HTML embeds its figures as base64 PNG and escapes every recorded value (run names and tags are user
input). The PDF is a matplotlib `PdfPages` document: text pages (summary, config, git, environment) and
figure pages (learning curves; for a sweep, the metric against each swept hyperparameter, mean ± std across
seeds). matplotlib is the `report` extra and is imported only here, lazily.
"""

from __future__ import annotations

import base64
import html
import io
import math
import statistics
import textwrap
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runkit.errors import UserError
from runkit.flatten import flatten_raw

SEED_KEY = "seed"
SKIP_CURVES = ("epoch",)
PAGE = (8.27, 11.69)  # A4 portrait, inches
LINES_PER_PAGE = 70
WRAP = 100

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; border-bottom: 2px solid #446; padding-bottom: .3em; }
h2 { font-size: 1.15em; margin-top: 1.8em; color: #335; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ccd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #eef; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6fa; border: 1px solid #dde; padding: .8em; overflow-x: auto; font-size: .82em; }
img { max-width: 100%; border: 1px solid #eee; }
.status-completed { color: #185; font-weight: bold; }
.status-failed, .status-crashed { color: #b22; font-weight: bold; }
.muted { color: #777; font-size: .85em; }
"""


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UserError("reports need matplotlib: pip install -e '.[report]'") from None
    matplotlib.use("Agg", force=False)
    return matplotlib


def _figure(figsize: tuple[float, float] = (10, 6)) -> Any:
    _matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


# --- data ------------------------------------------------------------------------------------------------
@dataclass
class Group:
    """The jobs of a sweep that share every swept value but the seed."""

    values: dict[str, Any]
    scores: list[float]
    run_ids: list[str]

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores) if self.scores else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.scores) if len(self.scores) > 1 else 0.0


def job_score(job: Any, metric: str) -> float | None:
    """The metric's best value when it is the monitored one, its last value otherwise."""
    value = job.monitor_value if job.monitor == metric else job.metrics.get(metric)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
        return float(value)
    return None


def sweep_groups(jobs: Sequence[Any], params: Sequence[str], metric: str) -> list[Group]:
    """Jobs grouped by their swept values other than the seed; a group's scores are across seeds."""
    groups: dict[tuple[str, ...], Group] = {}
    for job in jobs:
        score = job_score(job, metric)
        if score is None:
            continue
        values = {p: job.key_params.get(p) for p in params if p != SEED_KEY}
        key = tuple(repr(values[p]) for p in values)
        group = groups.setdefault(key, Group(values, [], []))
        group.scores.append(score)
        group.run_ids.append(job.id)
    return sorted(groups.values(), key=lambda g: tuple(_order(v) for v in g.values.values()))


def _order(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def default_curve_metrics(histories: Iterable[dict[str, list[tuple[int, float]]]]) -> list[str]:
    names: set[str] = set()
    for history in histories:
        names.update(k for k, v in history.items() if len(v) > 0)
    return sorted(n for n in names if n not in SKIP_CURVES)


# --- figures ---------------------------------------------------------------------------------------------
def curves_figure(
    histories: dict[str, dict[str, list[tuple[int, float]]]], metrics: Sequence[str], title: str
) -> Any:
    """One panel per metric, one line per run (label -> metric -> points)."""
    metrics = list(metrics)[:12] or ["(no metrics)"]
    cols = 1 if len(metrics) == 1 else 2 if len(metrics) <= 4 else 3
    rows = math.ceil(len(metrics) / cols)
    fig = _figure((11, max(3.2, 3.0 * rows)))
    fig.suptitle(title)
    axes = fig.subplots(rows, cols, squeeze=False)
    many = len(histories) > 1
    for index, metric in enumerate(metrics):
        ax = axes[index // cols][index % cols]
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("step")
        plotted = False
        for label, history in histories.items():
            points = history.get(metric) or []
            if not points:
                continue
            steps, values = zip(*points, strict=True)
            marker = "o" if len(points) <= 20 else None
            ax.plot(steps, values, label=label if many else None, marker=marker, markersize=3, linewidth=1.2)
            plotted = True
        if not plotted:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.grid(alpha=0.3)
        if many and plotted and len(histories) <= 12:
            ax.legend(fontsize=7)
    for index in range(len(metrics), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    return fig


def sweep_figure(jobs: Sequence[Any], params: Sequence[str], metric: str, title: str) -> Any:
    """The metric against each swept hyperparameter: mean ± std across seeds, one line per combination of the
    other swept values."""
    swept = [p for p in params if p != SEED_KEY] or list(params)[:1]
    if not swept:
        swept = ["(nothing swept)"]
    cols = 1 if len(swept) == 1 else 2
    rows = math.ceil(len(swept) / cols)
    fig = _figure((11, max(3.5, 3.6 * rows)))
    fig.suptitle(title)
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, param in enumerate(swept):
        ax = axes[index // cols][index % cols]
        others = [p for p in swept if p != param and p in params]
        series: dict[tuple[str, ...], dict[Any, list[float]]] = {}
        labels: dict[tuple[str, ...], str] = {}
        for job in jobs:
            score = job_score(job, metric)
            if score is None or param not in params:
                continue
            key = tuple(repr(job.key_params.get(o)) for o in others)
            labels[key] = ", ".join(f"{o}={fmt(job.key_params.get(o))}" for o in others)
            series.setdefault(key, {}).setdefault(job.key_params.get(param), []).append(score)
        xs_all = [x for points in series.values() for x in points]
        numeric = bool(xs_all) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs_all
        )
        categories = sorted({fmt(x) for x in xs_all}) if not numeric else []
        for key, points in sorted(series.items()):
            xs = sorted(points, key=_order)
            means = [statistics.fmean(points[x]) for x in xs]
            stds = [statistics.stdev(points[x]) if len(points[x]) > 1 else 0.0 for x in xs]
            positions = xs if numeric else [categories.index(fmt(x)) for x in xs]
            ax.errorbar(positions, means, yerr=stds, marker="o", capsize=4, label=labels[key] or None)
        if numeric and xs_all and min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 10:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(categories)), categories)
        ax.set_xlabel(param)
        ax.set_ylabel(f"{metric} (mean ± std over seeds)")
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=7)
        if not series:
            ax.text(0.5, 0.5, "no scores", ha="center", va="center", transform=ax.transAxes, color="gray")
    for index in range(len(swept), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    return fig


def png_base64(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def save_png(fig: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


# --- text pages for the PDF ------------------------------------------------------------------------------
def wrap_lines(lines: Iterable[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        line = line.expandtabs(4).rstrip()
        out.extend(textwrap.wrap(line, WRAP, subsequent_indent="    ", drop_whitespace=False) or [""])
    return out


def text_pages(title: str, sections: Sequence[tuple[str, Sequence[str]]]) -> list[Any]:
    """Sections of monospaced text laid out over as many A4 pages as they need."""
    lines: list[tuple[str, bool]] = []
    for heading, body in sections:
        if lines:
            lines.append(("", False))
        lines.append((heading, True))
        lines.extend((line, False) for line in wrap_lines(body))
    pages = []
    for start in range(0, max(len(lines), 1), LINES_PER_PAGE):
        fig = _figure(PAGE)
        fig.set_layout_engine(None)
        fig.text(0.06, 0.965, title, fontsize=13, weight="bold", parse_math=False)
        y = 0.935
        for text, bold in lines[start : start + LINES_PER_PAGE]:
            fig.text(
                0.06,
                y,
                text,
                fontsize=9 if bold else 7.5,
                family="sans-serif" if bold else "monospace",
                weight="bold" if bold else "normal",
                parse_math=False,
            )
            y -= 0.0128
        pages.append(fig)
    return pages


def write_pdf(path: Path, pages: Sequence[Any], title: str) -> Path:
    matplotlib = _matplotlib()
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # TrueType fonts (42) keep the text extractable and searchable.
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:
        for fig in pages:
            pdf.savefig(fig)
        info = pdf.infodict()
        info["Title"] = title
        info["Creator"] = "runs report"
    return path


def table_lines(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A plain-text table with aligned columns (for the PDF's monospaced pages)."""
    cells = [[fmt(c) for c in columns]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def kv_lines(items: dict[str, Any]) -> list[str]:
    if not items:
        return ["(not recorded)"]
    width = min(max(len(str(k)) for k in items), 28)
    return [f"{str(k):<{width}}  {fmt(v)}" for k, v in items.items()]


# --- HTML ------------------------------------------------------------------------------------------------
def esc(value: Any) -> str:
    return html.escape(fmt(value), quote=True)


def html_kv(items: dict[str, Any]) -> str:
    if not items:
        return '<p class="muted">not recorded</p>'
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items.items())
    return f'<table class="kv">{rows}</table>'


def html_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            attr = ' class="num"' if i in numeric else ""
            cells.append(f"<td{attr}>{esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def html_img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{b64}">'


def html_document(title: str, body: Sequence[str]) -> str:
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        + f"<title>{html.escape(title)}</title>\n"
        + "<style>"
        + CSS
        + "</style>\n</head>\n<body>\n"
    )
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    footer = f'<p class="muted">Generated {html.escape(stamp)} by the runs report command, offline.</p>\n'
    return head + "\n".join(body) + "\n" + footer + "</body>\n</html>\n"


def write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- run report ------------------------------------------------------------------------------------------
def run_report(
    info: dict[str, Any],
    history: dict[str, list[tuple[int, float]]],
    out_dir: Path,
    metrics: Sequence[str] | None = None,
    html_out: bool = True,
    pdf_out: bool = True,
) -> list[Path]:
    """Write report-<id>.html / .pdf for one run. `info` is what `runs show --json` prints."""
    run_id, name = info["id"], info["name"]
    title = f"Run {run_id}: {name}"
    metrics = list(metrics) if metrics else default_curve_metrics([history])
    curves = curves_figure({run_id: history}, metrics, f"Learning curves: {name} ({run_id})")
    summary = info.get("summary") or {}
    last = summary.get("last") or {}
    best = summary.get("best") or {}
    header = {
        "id": run_id,
        "name": name,
        "status": info["status"],
        "start": _fmt_time(info.get("start_time")),
        "end": _fmt_time(info.get("end_time")),
        "duration (s)": None if info.get("duration_s") is None else round(info["duration_s"], 1),
        "seed": info.get("seed"),
        "tags": ", ".join(info.get("tags") or []),
        "host": info.get("host"),
        "rerun of": info.get("rerun_of"),
        "init from": info.get("init_from"),
        "path": info.get("path"),
    }
    header = {k: v for k, v in header.items() if v not in (None, "")}
    best_line = {}
    if best.get("metric") and best.get("value") is not None:
        label = f"best {best['metric']} ({best.get('mode')})"
        best_line[label] = f"{fmt(best['value'])} at step {best.get('step')}"
    metric_rows = [(k, last[k]) for k in sorted(last)]
    backends = flatten_raw(info.get("backends") or {})
    written: list[Path] = []
    out_dir = Path(out_dir)
    stem = f"report-{run_id}"
    if html_out:
        body = [
            f"<h1>{html.escape(title)}</h1>",
            html_kv(header),
            "<h2>Summary</h2>",
            html_kv(best_line) if best_line else "",
            html_table(["metric", "last value"], metric_rows, numeric=[1])
            if metric_rows
            else "<p>no metrics</p>",
            f'<p class="muted">last step: {esc(summary.get("last_step"))}</p>',
            "<h2>Learning curves</h2>",
            html_img(png_base64(curves), "learning curves"),
            "<h2>Overrides</h2>",
            html_pre(" ".join(info.get("overrides") or []) or "(none: all defaults)"),
            "<h2>Git</h2>",
            html_kv(info.get("git") or {}),
            "<h2>Environment</h2>",
            html_kv(info.get("environment") or {}),
            "<h2>Backends</h2>",
            html_kv(backends),
        ]
        if info.get("traceback"):
            body += ["<h2>Traceback</h2>", html_pre(info["traceback"])]
        artifacts = info.get("artifacts") or []
        if artifacts:
            body += [
                "<h2>Artifacts</h2>",
                html_table(
                    ["path", "kind", "aliases", "bytes"],
                    [
                        (a["path"], a.get("kind"), ",".join(a.get("aliases", [])), a.get("size"))
                        for a in artifacts
                    ],
                    numeric=[3],
                ),
            ]
        body += ["<h2>Config (resolved)</h2>", html_pre(info.get("config") or "(no config.yaml)")]
        written.append(write_text(out_dir / f"{stem}.html", html_document(title, body)))
    if pdf_out:
        sections: list[tuple[str, Sequence[str]]] = [
            ("Run", kv_lines(header)),
            (
                "Summary",
                kv_lines(
                    {**best_line, **{k: v for k, v in metric_rows}, "last step": summary.get("last_step")}
                ),
            ),
            ("Overrides", [" ".join(info.get("overrides") or []) or "(none: all defaults)"]),
            ("Git", kv_lines(info.get("git") or {})),
            ("Environment", kv_lines(info.get("environment") or {})),
            ("Backends", kv_lines(backends)),
        ]
        if info.get("traceback"):
            sections.append(("Traceback", info["traceback"].splitlines()))
        sections.append(("Config (resolved)", (info.get("config") or "(no config.yaml)").splitlines()))
        pages = text_pages(title, sections[:6])
        pages.insert(1, curves)
        pages += text_pages(title, sections[6:]) if len(sections) > 6 else []
        written.append(write_pdf(out_dir / f"{stem}.pdf", pages, title))
    return written


# --- sweep report ----------------------------------------------------------------------------------------
def sweep_report(
    sweep: Any,
    histories: dict[str, dict[str, list[tuple[int, float]]]],
    first_job_info: dict[str, Any] | None,
    out_dir: Path,
    metric: str | None = None,
    html_out: bool = True,
    pdf_out: bool = True,
) -> list[Path]:
    """Write report-sweep-<id>.html / .pdf: jobs, the metric against each swept hyperparameter (mean ± std
    across seeds), learning curves of every job, and the shared config, git and environment."""
    jobs = sweep.jobs
    metric = metric or next((j.monitor for j in jobs if j.monitor), None)
    if not metric:
        raise UserError(f"sweep {sweep.id} has no monitored metric recorded; pass --metric NAME")
    params = sweep.swept_params()
    groups = sweep_groups(jobs, params, metric)
    title = f"Sweep {sweep.id}: {sweep.name}"
    non_seed = [p for p in params if p != SEED_KEY]
    seeds = SEED_KEY in params
    vs_fig = sweep_figure(jobs, params, metric, f"{metric} against the swept hyperparameters")
    curves = curves_figure(
        {f"{j.id} {_params_label(j, params)}": histories.get(j.id, {}) for j in jobs},
        [metric]
        if any(metric in h for h in histories.values())
        else default_curve_metrics(histories.values())[:4],
        f"Learning curves: {metric}",
    )
    header = {
        "sweep id": sweep.id,
        "name": sweep.name,
        "directory": str(sweep.path),
        "jobs": len(jobs),
        "status": ", ".join(f"{n} {s}" for s, n in sorted(sweep.status_counts().items())),
        "swept": ", ".join(params) or "(nothing differs)",
        "metric": metric,
        "seeds per point": "yes" if seeds else "no (one run per point)",
    }
    best = sweep.best_job()
    if best:
        header["best run"] = (
            f"{best.id}: {best.monitor}={fmt(best.monitor_value)} ({_params_label(best, params)})"
        )
    agg_columns = [*non_seed, "n", f"{metric} mean", "± std", "runs"]
    agg_rows = [
        [*(g.values.get(p) for p in non_seed), g.n, g.mean, g.std, " ".join(g.run_ids)] for g in groups
    ]
    job_columns = ["id", "status", *params, metric, "duration (s)"]
    job_rows = [
        [
            j.id,
            j.status,
            *(j.key_params.get(p) for p in params),
            job_score(j, metric),
            None if j.duration is None else round(j.duration, 1),
        ]
        for j in jobs
    ]
    info = first_job_info or {}
    written: list[Path] = []
    out_dir = Path(out_dir)
    stem = f"report-sweep-{sweep.id}"
    if html_out:
        body = [
            f"<h1>{html.escape(title)}</h1>",
            html_kv(header),
            f"<h2>{esc(metric)}: mean ± std across seeds</h2>",
            html_table(agg_columns, agg_rows, numeric=range(len(non_seed), len(non_seed) + 3)),
            html_img(png_base64(vs_fig), f"{metric} against swept hyperparameters"),
            "<h2>Jobs</h2>",
            html_table(job_columns, job_rows, numeric=[len(job_columns) - 2, len(job_columns) - 1]),
            "<h2>Learning curves</h2>",
            html_img(png_base64(curves), "learning curves"),
        ]
        if sweep.meta:
            body += ["<h2>sweep.json</h2>", html_kv(flatten_raw(sweep.meta))]
        body += [
            "<h2>Git (first job)</h2>",
            html_kv(info.get("git") or {}),
            "<h2>Environment (first job)</h2>",
            html_kv(info.get("environment") or {}),
            "<h2>Config of the first job (resolved)</h2>",
            html_pre(info.get("config") or "(no config.yaml)"),
        ]
        written.append(write_text(out_dir / f"{stem}.html", html_document(title, body)))
    if pdf_out:
        agg_lines = table_lines(agg_columns, agg_rows)
        job_lines = table_lines(job_columns, job_rows)
        pages = text_pages(
            title,
            [
                ("Sweep", kv_lines(header)),
                (f"{metric}: mean ± std across seeds", agg_lines),
                ("Jobs", job_lines),
            ],
        )
        pages += [vs_fig, curves]
        pages += text_pages(
            title,
            [
                ("Git (first job)", kv_lines(info.get("git") or {})),
                ("Environment (first job)", kv_lines(info.get("environment") or {})),
                (
                    "Config of the first job (resolved)",
                    (info.get("config") or "(no config.yaml)").splitlines(),
                ),
            ],
        )
        written.append(write_pdf(out_dir / f"{stem}.pdf", pages, title))
    return written


def _params_label(job: Any, params: Sequence[str]) -> str:
    return " ".join(f"{p}={fmt(job.key_params.get(p))}" for p in params)


def _fmt_time(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
