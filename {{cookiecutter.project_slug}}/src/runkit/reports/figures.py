"""The reports' figures, drawn with matplotlib (the `report` extra, imported here only, lazily)."""

from __future__ import annotations

import base64
import io
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runkit.catalog.entry import RunEntry
from runkit.catalog.history import History
from runkit.errors import UserError
from runkit.formatting import fmt_value
from runkit.reports.aggregate import SEED_KEY, job_score, value_order


def matplotlib_module() -> Any:
    """matplotlib on its Agg backend (no display), or a UserError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("reports need matplotlib: pip install -e '.[report]'") from None
    matplotlib.use("Agg", force=False)
    return matplotlib


def new_figure(figsize: tuple[float, float] = (10, 6)) -> Any:
    matplotlib_module()
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def curves_figure(histories: dict[str, History], metrics: Sequence[str], title: str) -> Any:
    """One panel per metric, one line per run (label -> metric -> points)."""
    metrics = list(metrics)[:12] or ["(no metrics)"]
    cols = 1 if len(metrics) == 1 else 2 if len(metrics) <= 4 else 3
    rows = math.ceil(len(metrics) / cols)
    fig = new_figure((11, max(3.2, 3.0 * rows)))
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


def sweep_figure(jobs: Sequence[RunEntry], params: Sequence[str], metric: str, title: str) -> Any:
    """The metric against each swept hyperparameter: mean ± std across seeds, one line per combination of the
    other swept values."""
    swept = [p for p in params if p != SEED_KEY] or list(params)[:1]
    if not swept:
        swept = ["(nothing swept)"]
    cols = 1 if len(swept) == 1 else 2
    rows = math.ceil(len(swept) / cols)
    fig = new_figure((11, max(3.5, 3.6 * rows)))
    fig.suptitle(title)
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, param in enumerate(swept):
        _sweep_panel(axes[index // cols][index % cols], jobs, params, swept, param, metric)
    for index in range(len(swept), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    return fig


def _sweep_panel(
    ax: Any, jobs: Sequence[RunEntry], params: Sequence[str], swept: list[str], param: str, metric: str
) -> None:
    others = [p for p in swept if p != param and p in params]
    series: dict[tuple[str, ...], dict[Any, list[float]]] = {}
    labels: dict[tuple[str, ...], str] = {}
    for job in jobs:
        score = job_score(job, metric)
        if score is None or param not in params:
            continue
        key = tuple(repr(job.key_params.get(o)) for o in others)
        labels[key] = ", ".join(f"{o}={fmt_value(job.key_params.get(o))}" for o in others)
        series.setdefault(key, {}).setdefault(job.key_params.get(param), []).append(score)
    xs_all = [x for points in series.values() for x in points]
    numeric = bool(xs_all) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs_all)
    categories = sorted({fmt_value(x) for x in xs_all}) if not numeric else []
    for key, points in sorted(series.items()):
        xs = sorted(points, key=value_order)
        means = [statistics.fmean(points[x]) for x in xs]
        stds = [statistics.stdev(points[x]) if len(points[x]) > 1 else 0.0 for x in xs]
        positions = xs if numeric else [categories.index(fmt_value(x)) for x in xs]
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


def png_base64(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def save_png(fig: Any, path: Path) -> Path:
    """The figure written to path (PNG, PDF or SVG by its suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
