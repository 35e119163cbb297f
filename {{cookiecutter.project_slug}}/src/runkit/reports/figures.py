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
from runkit.reports.aggregate import job_score, value_order
from runkit.sweeps.grouping import SEED_KEY


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


MAX_LEGEND = 16


def _figure_legend(fig: Any, axes: Any, count: int) -> None:
    """One legend for every panel, below them (outside the axes: it never covers a curve); up to MAX_LEGEND
    entries, the rest counted."""
    handles: dict[str, Any] = {}
    for ax in (a for row in axes for a in row):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if not handles:
        return
    shown = list(handles.items())[:MAX_LEGEND]
    labels = [label for label, _ in shown]
    if len(handles) > MAX_LEGEND:
        labels[-1] = f"{labels[-1]}  (+{len(handles) - MAX_LEGEND} more, not in the legend)"
    fig.legend(
        [h for _, h in shown],
        labels,
        loc="outside lower center",
        ncols=min(3, len(shown)),
        fontsize=7,
        frameon=False,
    )


def curves_figure(histories: dict[str, History], metrics: Sequence[str], title: str) -> Any:
    """One panel per metric, one line per run (label -> metric -> points)."""
    matplotlib_module()
    from matplotlib.ticker import MaxNLocator

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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
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
    if many:
        _figure_legend(fig, axes, len(histories))
    for index in range(len(metrics), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    return fig


# More lines than this in one panel (or lines of one point each) and they become one cloud of points without a
# legend (an Optuna study's trials each have their own values of the other parameters).
MAX_SERIES = 6


def sweep_figure(
    jobs: Sequence[RunEntry], params: Sequence[str], metric: str, title: str, over_seeds: bool
) -> Any | None:
    """The metric against each swept hyperparameter but the seed (never against the seed: it is not a
    hyperparameter), one line per combination of the other swept values; with `over_seeds` (some combination
    ran several seeds) each point is the mean ± std over its seeds. None when only the seed varies."""
    swept = [p for p in params if p != SEED_KEY]
    if not swept:
        return None
    cols = 1 if len(swept) == 1 else 2
    rows = math.ceil(len(swept) / cols)
    fig = new_figure((11, max(3.5, 3.6 * rows)))
    fig.suptitle(title)
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, param in enumerate(swept):
        _sweep_panel(axes[index // cols][index % cols], jobs, swept, param, metric, over_seeds)
    for index in range(len(swept), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    return fig


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sweep_panel(
    ax: Any, jobs: Sequence[RunEntry], swept: list[str], param: str, metric: str, over_seeds: bool
) -> None:
    from matplotlib.ticker import MaxNLocator

    others = [p for p in swept if p != param]
    series: dict[tuple[str, ...], dict[Any, list[float]]] = {}
    labels: dict[tuple[str, ...], str] = {}
    for job in jobs:
        score = job_score(job, metric)
        if score is None:
            continue
        key = tuple(repr(job.key_params.get(o)) for o in others)
        labels[key] = ", ".join(f"{o}={fmt_value(job.key_params.get(o))}" for o in others)
        series.setdefault(key, {}).setdefault(job.key_params.get(param), []).append(score)
    xs_all = [x for points in series.values() for x in points]
    numeric = bool(xs_all) and all(_is_number(x) for x in xs_all)
    categories = sorted({fmt_value(x) for x in xs_all}) if not numeric else []
    single = len(series) > 1 and all(len(points) == 1 for points in series.values())
    if len(series) > MAX_SERIES or single:  # one cloud of points, no legend
        merged: dict[Any, list[float]] = {}
        for points in series.values():
            for x, scores in points.items():
                merged.setdefault(x, []).extend(scores)
        series, labels = {(): merged}, {(): ""}
    cloud = not over_seeds and list(series) == [()] and bool(others)
    for key, points in sorted(series.items()):
        xs = sorted(points, key=value_order)
        positions = xs if numeric else [categories.index(fmt_value(x)) for x in xs]
        if cloud:
            flat = [(pos, score) for pos, x in zip(positions, xs, strict=True) for score in points[x]]
            ax.scatter([p for p, _ in flat], [v for _, v in flat], s=18)
            continue
        means = [statistics.fmean(points[x]) for x in xs]
        if over_seeds:
            stds = [statistics.stdev(points[x]) if len(points[x]) > 1 else 0.0 for x in xs]
            ax.errorbar(positions, means, yerr=stds, marker="o", capsize=4, label=labels[key] or None)
        else:
            ax.plot(positions, means, marker="o", label=labels[key] or None)
    if numeric and xs_all and min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 10:
        ax.set_xscale("log")
    elif numeric and all(isinstance(x, int) for x in xs_all):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not numeric:
        ax.set_xticks(range(len(categories)), categories)
    ax.set_xlabel(param)
    ax.set_ylabel(f"{metric} (mean ± std over seeds)" if over_seeds else metric)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        # Outside the axes, on the right: the points stay visible.
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    if cloud:
        ax.text(
            0.99,
            0.02,
            f"each point a job ({', '.join(others)} vary too)",
            ha="right",
            va="bottom",
            transform=ax.transAxes,
            color="gray",
            fontsize=7,
        )
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
