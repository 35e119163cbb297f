"""What a person sees: a progress bar while training and a summary table at the end."""

from __future__ import annotations

import logging
import re
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


class _Quiet(logging.Filter):
    """Drops log records whose message starts with one of `prefixes` (a launcher's raw internals), and
    masks the values of secret `key=value` overrides in the others (Hydra's launchers print the overrides
    of each job)."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(self.prefixes):
            return False
        if "=" in message:
            from runkit.storage.secrets import Secrets

            rule = Secrets()
            masked = _OVERRIDE.sub(lambda m: rule.overrides([m.group(0)])[0], message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


_OVERRIDE = re.compile(r"[\w.+~/-]+=[^\s]+")


def _job_prefix() -> str:
    """`[job N] ` inside a job of a multirun (parallel jobs share the terminal), else nothing."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            return f"[job {HydraConfig.get().job.num}] "
    except Exception:  # outside a Hydra app, or a config without a job: no prefix
        pass
    return ""


def log_handler(job: bool = True) -> logging.Handler:
    """The console log handler (configs/hydra/job_logging/rich.yaml and hydra_logging/runkit.yaml build it).

    In a terminal, a RichHandler on the same console as the progress bar, so log lines print above the live
    bar instead of being glued to it; elsewhere (CI, a pipe, a file) plain timestamped lines with no
    control codes and no wrapping. A job of a sweep prefixes its lines with its number, so that the jobs of
    a parallel launcher can be told apart; the launcher's own `Joblib.Parallel(...)` line is dropped.
    """
    prefix = _job_prefix() if job else ""
    handler: logging.Handler
    if console.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False)
        handler.setFormatter(logging.Formatter(prefix.replace("[", r"\[") + "%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {prefix}%(message)s", "%H:%M:%S"))
    handler.addFilter(_Quiet(("Joblib.Parallel(",)))
    return handler
