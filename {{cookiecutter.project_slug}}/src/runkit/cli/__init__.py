"""The project's command line: `<project> runs list | show | compare | report | rerun | sync | export | ...`.

Everything works offline over the run directories (runs/ by default, `--runs-dir` or $RUNS_DIR), whatever
tracking backend the runs used. The CLI never imports torch; matplotlib only for `report` and
`compare --plot`.
"""

from __future__ import annotations

import typer

from runkit.cli.compare import compare_runs
from runkit.cli.listing import list_runs
from runkit.cli.registry import archive, export, gc
from runkit.cli.reporting import report
from runkit.cli.rerun import rerun
from runkit.cli.show import show_run
from runkit.cli.sync import sync

app = typer.Typer(
    help="Find, compare, report and reproduce runs, offline, over the run directories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(
    help="Runs: list, show, compare, report, rerun, sync, export, archive, gc.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(runs_app, name="runs")

runs_app.command("list")(list_runs)
runs_app.command("show")(show_run)
runs_app.command("compare")(compare_runs)
runs_app.command("report")(report)
runs_app.command("rerun", context_settings={"allow_interspersed_args": True})(rerun)
runs_app.command("sync")(sync)
runs_app.command("export")(export)
runs_app.command("archive")(archive)
runs_app.command("gc")(gc)


@app.callback()
def main() -> None:
    """Find, compare, report and reproduce runs, offline, over the run directories."""


__all__ = ["app"]

if __name__ == "__main__":
    app()
