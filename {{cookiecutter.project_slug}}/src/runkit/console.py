"""What a person sees: a progress bar while training and a summary table at the end."""

from __future__ import annotations

import logging
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from runkit.formatting import fmt_value

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


def summary_table(
    run_id: str, run_dir: str, status: str, metrics: dict[str, float], extra: dict[str, Any]
) -> Table:
    table = Table(
        title=f"run {run_id}: {status}", title_justify="left", show_header=True, header_style="bold"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        table.add_row(key, fmt_value(metrics[key]))
    table.add_section()
    for key, value in extra.items():
        table.add_row(key, fmt_value(value))
    table.add_row("run dir", run_dir)
    return table


def log_handler() -> logging.Handler:
    """The console log handler (configs/hydra/job_logging/rich.yaml builds it).

    In a terminal, a RichHandler on the same console as the progress bar, so log lines print above the live
    bar instead of being glued to it; elsewhere (CI, a pipe, a file) plain timestamped lines with no
    control codes and no wrapping.
    """
    if console.is_terminal:
        from rich.logging import RichHandler

        return RichHandler(console=console, show_path=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    return handler
