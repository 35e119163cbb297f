"""Choosing runs: `--where KEY OP VALUE` conditions, status and tag filters, sort keys and ages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from runkit.catalog.entry import FIELDS, RunEntry, split_key
from runkit.catalog.values import parse_value
from runkit.errors import UserError
from runkit.formatting import fmt_value

_WHERE = re.compile(r"^\s*([^<>=!~\s]+)\s*(<=|>=|!=|==|=|<|>|~)\s*(.*?)\s*$")
# Sort names that mean a column of the table rather than a param or metric of that name.
SORT_ALIASES = {"start": "start", "time": "start", "duration": "duration", "metric": "best", "best": "best"}


@dataclass(frozen=True)
class Condition:
    """One `--where` condition: key, operator (< <= > >= = != ~), value (a number if it reads as one)."""

    key: str
    op: str
    value: Any
    text: str

    def matches(self, run: RunEntry) -> bool:
        found, actual = run.lookup(self.key)
        if not found:
            return self.op == "!="
        return compare(actual, self.op, self.value)


def parse_where(expr: str) -> Condition:
    """`lr<1e-3`, `status=completed`, `name~base`, `val/acc>=0.9`: key, operator, value. No eval."""
    match = _WHERE.match(expr or "")
    if not match or not match.group(3):
        raise UserError(
            f"cannot read --where {expr!r}: write KEY OP VALUE, OP one of < <= > >= = != ~ (e.g. 'lr<1e-3')"
        )
    key, op, value = match.groups()
    if value[0] in "<>=!~":
        raise UserError(
            f"cannot read --where {expr!r}: {op + value[0]!r} is not an operator (use < <= > >= = != ~)"
        )
    return Condition(key, "=" if op == "==" else op, parse_value(value), expr)


def check_unambiguous(key: str, runs: list[RunEntry], option: str) -> None:
    """Refuse (one line) a bare `key` that is both a metric and a param among `runs`: `lr` may be the learning
    rate parameter or the (decayed) `lr` metric, and the two give different answers. A qualified key
    (`params.lr`, `metrics.lr`), a field or a key that is only one of them passes."""
    kind, bare = split_key(key)
    if kind is not None or key in FIELDS or key in SORT_ALIASES or "/" in key:
        return  # (a key with a slash, `val/acc`, is never a config key)
    live = [r for r in runs if not r.corrupt]
    if not any(key in r.metrics for r in live):
        return
    # Overrides first (no file read); the configs only when no override has the key.
    if any(key in r.params for r in live) or any(r.has_param(key) for r in live):
        raise UserError(
            f"{option} {key!r} is both a param and a metric here: write params.{key} (the parameter) "
            f"or metrics.{key} (the metric's last value)"
        )


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def compare(actual: Any, op: str, expected: Any) -> bool:
    """`actual OP expected`: numbers compared as numbers (also when written as text), the rest as text."""
    if op == "~":
        return str(expected).lower() in fmt_value(actual).lower()
    a, b = _as_number(actual), _as_number(expected)
    if a is None or b is None:
        a_s, b_s = fmt_value(actual) if actual is not None else "null", fmt_value(expected) or "null"
        if op in ("=", "!="):
            return (a_s == b_s) == (op == "=")
        if a is None and b is None:
            return {"<": a_s < b_s, "<=": a_s <= b_s, ">": a_s > b_s, ">=": a_s >= b_s}[op]
        return False
    return {"=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def split_values(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated option values as one list: ["a,b", "c"] -> ["a", "b", "c"]."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def select_runs(
    runs: list[RunEntry],
    status: list[str] | None = None,
    tags: list[str] | None = None,
    where: list[str] | None = None,
) -> list[RunEntry]:
    """The runs with one of these statuses, all these tags, and meeting every --where condition (a bare
    --where key that is both a param and a metric among those runs is refused: `check_unambiguous`)."""
    statuses = {s.lower() for s in split_values(status)}
    wanted_tags = set(split_values(tags))
    conditions = [parse_where(w) for w in where or []]
    chosen = [
        run
        for run in runs
        if (not statuses or run.status in statuses) and (not wanted_tags or wanted_tags <= set(run.tags))
    ]
    for condition in conditions:
        check_unambiguous(condition.key, chosen, "--where")
    return [run for run in chosen if all(c.matches(run) for c in conditions)]


def sort_key(run: RunEntry, column: str) -> tuple[int, int, Any]:
    """Runs without a value last; numbers before text."""
    column = SORT_ALIASES.get(column, column)
    if column == "best":
        value: Any = run.monitor_value
    else:
        found, value = run.lookup(column)
        if not found:
            value = None
    if value is None:
        return (1, 0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, 0, float(value))
    return (0, 1, str(value))


def parse_age(text: str) -> float:
    """`30d`, `12h`, `45m`, `90s`, `2w` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not match:
        raise UserError(f"cannot read age {text!r}: use a number with s, m, h, d or w (e.g. 30d)")
    number, unit = float(match.group(1)), match.group(2) or "d"
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[unit]
