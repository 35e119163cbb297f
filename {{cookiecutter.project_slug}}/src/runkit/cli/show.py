"""`runs show <id>`: everything one run recorded, read back from its run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from runkit.catalog.details import run_details
from runkit.catalog.runs import resolve_run
from runkit.cli.common import (
    DEFAULT_RUNS_DIR,
    RunsDir,
    check_runs_dir,
    emit_json,
    one_line_errors,
    stdout_console,
)
from runkit.flatten import flatten_raw
from runkit.formatting import fmt_duration, fmt_size, fmt_time, fmt_value


def kv_table(title: str, items: dict[str, Any]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=title, title_justify="left", show_header=False, box=None, pad_edge=False, title_style="bold"
    )
    table.add_column("key", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in items.items():
        table.add_row(key, Text(fmt_value(value)))
    return table


def print_details(info: dict[str, Any], show_config: bool) -> None:
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    console = stdout_console()
    console.print(Rule(Text(f"run {info['id']}  {info['name']}  [{info['status']}]"), align="left"))
    sweep = info.get("sweep") or {}
    header = {
        "path": info["path"],
        "status": info["status"]
        + (f" (recorded: {info['recorded_status']})" if info["recorded_status"] != info["status"] else ""),
        "start": fmt_time(info["start_time"]),
        "end": fmt_time(info["end_time"]),
        "duration": fmt_duration(info["duration_s"]),
        "host / pid": f"{info['host']} / {info['pid']}",
        "seed": info["seed"],
        "tags": ", ".join(info["tags"]),
        "sweep": f"{sweep.get('id')} job {sweep.get('job_num')} ({sweep.get('dir')})" if sweep else None,
        "rerun of": info["rerun_of"],
        "init from": info["init_from"],
        "resumed": "yes" if info["resumed"] else None,
        "config hash": info["config_hash"],
        "error": info["error"],
        "event log": ("DAMAGED: " + "; ".join(info["log_damage"])) if info.get("log_damage") else None,
    }
    console.print(kv_table("run", {k: v for k, v in header.items() if v not in (None, "", " / ")}))
    console.print()
    console.print(
        Text("overrides: ", style="bold") + Text(" ".join(info["overrides"]) or "(none: all defaults)")
    )
    git = info["git"]
    if git:
        shown = dict(git)
        if shown.get("commit"):
            shown["commit"] = str(shown["commit"])
        console.print(kv_table("git", shown))
    else:
        console.print(Text("git: not recorded", style="bold"))
    env = info["environment"]
    console.print(kv_table("environment", env) if env else Text("environment: not recorded", style="bold"))
    backends = {
        key: fmt_time(value)
        if key.endswith(("synced", "time")) and isinstance(value, (int, float))
        else value
        for key, value in flatten_raw(info["backends"]).items()
        if value not in (None, "")
    }
    console.print(
        kv_table("backends", backends) if backends else Text("backends: run directory only", style="bold")
    )

    summary = info["summary"] or {}
    last = summary.get("last") or {}
    best = summary.get("best") or {}
    if last or best.get("value") is not None:
        table = Table(title="metrics", title_justify="left", header_style="bold", title_style="bold")
        table.add_column("metric", style="cyan")
        table.add_column("last", justify="right")
        table.add_column("best", justify="right")
        for key in sorted(last):
            mark = ""
            if key == best.get("metric") and best.get("value") is not None:
                mark = f"{fmt_value(best['value'])} ({best.get('mode')}, step {best.get('step')})"
            table.add_row(key, fmt_value(last[key]), mark)
        if best.get("metric") and best["metric"] not in last and best.get("value") is not None:
            table.add_row(best["metric"], "", fmt_value(best["value"]))
        console.print(table)
        console.print(Text(f"last step: {summary.get('last_step')}"))
    else:
        console.print(Text("metrics: none recorded", style="bold"))

    artifacts = info["artifacts"]
    if artifacts:
        table = Table(title="artifacts", title_justify="left", header_style="bold", title_style="bold")
        for column in ("path", "kind", "aliases", "size"):
            table.add_column(column, justify="right" if column == "size" else "left")
        for item in artifacts:
            table.add_row(
                Text(item["path"]),
                item.get("kind", ""),
                ",".join(item.get("aliases", [])),
                fmt_size(item.get("size")),
            )
        console.print(table)
    if info["traceback"]:
        console.print(Rule("traceback", align="left"))
        console.print(Text(info["traceback"].rstrip()))
    if show_config and info["config"]:
        console.print(Rule("config.yaml (resolved)", align="left"))
        console.print(Text(info["config"].rstrip()))


@one_line_errors
def show_run(
    run: Annotated[str, typer.Argument(help="Run id, unique id prefix, run directory or 'last'.")],
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    config: Annotated[bool, typer.Option("--config/--no-config", help="Print the resolved config.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print everything as one JSON object.")] = False,
) -> None:
    """Everything one run recorded: config, overrides, git, environment, seed, status, metrics, artifacts.

    A failed run shows its traceback; backends show their run ids and URLs.
    """
    if not Path(run).exists():
        check_runs_dir(Path(runs_dir))
    info = run_details(resolve_run(run, Path(runs_dir)))
    if json_out:
        emit_json(info)
    else:
        print_details(info, config)
