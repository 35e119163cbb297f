"""What a person sees: a progress bar while training and a summary table at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)


def training_progress() -> Progress:
    """A progress bar over training steps; `transient` so that the log above it stays readable."""
    return Progress(
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_table(
    run_id: str, run_dir: str, status: str, metrics: dict[str, float], extra: dict[str, Any]
) -> Table:
    table = Table(
        title=f"run {run_id}: {status}", title_justify="left", show_header=True, header_style="bold"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        table.add_row(key, fmt(metrics[key]))
    table.add_section()
    for key, value in extra.items():
        table.add_row(key, fmt(value))
    table.add_row("run dir", run_dir)
    return table
