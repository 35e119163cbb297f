"""Reading run directories for the runs CLI: fast rows for `list`, full details on demand.

Listing reads only run.json and summary.json of each run (no YAML, no events): a thousand runs list in well
under a second. A damaged run directory becomes a `corrupt` row with the reason, never an exception.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runkit.errors import UserError
from runkit.storage.events import EVENTS_FILE
from runkit.storage.jsonio import CorruptRunFileError
from runkit.storage.liveness import effective_status
from runkit.storage.run_dir import CONFIG_FILE, RUN_FILE, SUMMARY_FILE, id_from_name

SWEEPS_DIR = "sweeps"
SWEEP_FILE = "sweep.json"
CORRUPT = "corrupt"
# Override keys that say where or how a run was launched, not what it computes: left out of "key params".
NOISE_PREFIXES = ("paths.", "hydra.", "hydra/", "tracker", "resume", "rerun_of", "sweep.")
# Overrides that only make sense in the original launch (a multirun, a resumed session): not replayed.
NOT_REPLAYED_PREFIXES = ("hydra/launcher", "hydra/sweeper", "hydra.launcher", "hydra.sweeper", "hydra.mode")
NOT_REPLAYED_KEYS = ("resume", "rerun_of", "sweep.resume")

Warn = Callable[[str], None]


# --- values ----------------------------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A command-line value as a number, bool or None where it reads as one; a string otherwise."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none", "~"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def override_key(override: str) -> str:
    """`+a.b=1` -> `a.b`; `~a` -> `a`."""
    return override.split("=", 1)[0].lstrip("+~").strip()


def overrides_dict(overrides: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in overrides or ():
        item = str(item)
        if "=" not in item or item.startswith("~"):
            continue
        key, value = item.split("=", 1)
        out[key.lstrip("+").strip()] = parse_value(value)
    return out


# Shown in their own columns already.
OWN_COLUMNS = ("name", "tags")


def is_noise(key: str) -> bool:
    return key.startswith(NOISE_PREFIXES) or key in OWN_COLUMNS


def fmt_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt_value(v) for v in value) + "]"
    return str(value)


def fmt_time(ts: float | None) -> str:
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def parse_age(text: str) -> float:
    """`30d`, `12h`, `45m`, `90s`, `2w` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not match:
        raise UserError(f"cannot read age {text!r}: use a number with s, m, h, d or w (e.g. 30d)")
    number, unit = float(match.group(1)), match.group(2) or "d"
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[unit]


# --- one run ---------------------------------------------------------------------------------------------
@dataclass
class RunInfo:
    """One run directory as `list` sees it: run.json and summary.json, or the reason it cannot be read."""

    path: Path
    record: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # set for a corrupt / half-written run directory
    summary_problem: str | None = None
    sweep_dir: Path | None = None
    _status: str | None = None
    _config: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return str(self.record.get("id") or id_from_name(self.path))

    @property
    def name(self) -> str:
        if "name" in self.record:
            return str(self.record["name"])
        parts = self.path.name.split("-")
        return "-".join(parts[2:-1]) if len(parts) > 3 else ""

    @property
    def corrupt(self) -> bool:
        return self.problem is not None

    @property
    def status(self) -> str:
        if self.problem is not None:
            return CORRUPT
        if self._status is None:
            self._status = effective_status(self.record)
        return self._status

    @property
    def start_time(self) -> float | None:
        value = self.record.get("start_time")
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return self.path.stat().st_mtime if self.problem else None
        except OSError:
            return None

    @property
    def duration(self) -> float | None:
        rec = self.record
        if isinstance(rec.get("duration_s"), (int, float)) and rec.get("status") != "running":
            return float(rec["duration_s"])
        start = rec.get("start_time")
        if not isinstance(start, (int, float)):
            return None
        if self.status == "running":
            return time.time() - start
        end = rec.get("end_time") or rec.get("heartbeat")
        return float(end) - start if isinstance(end, (int, float)) else None

    @property
    def tags(self) -> list[str]:
        tags = self.record.get("tags") or []
        if isinstance(tags, dict):
            return [str(k) for k in tags]
        return [str(t) for t in tags]

    @property
    def overrides(self) -> list[str]:
        return [str(o) for o in self.record.get("overrides") or []]

    @property
    def params(self) -> dict[str, Any]:
        """The run's command-line overrides as key -> value: what makes it differ from the defaults."""
        return overrides_dict(self.overrides)

    @property
    def key_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if not is_noise(k)}

    @property
    def sweep_id(self) -> str | None:
        sweep = self.record.get("sweep")
        if isinstance(sweep, dict) and sweep.get("id"):
            return str(sweep["id"])
        return id_from_name(self.sweep_dir) if self.sweep_dir else None

    @property
    def metrics(self) -> dict[str, Any]:
        last = self.summary.get("last") if isinstance(self.summary, dict) else None
        return dict(last) if isinstance(last, dict) else {}

    @property
    def best(self) -> dict[str, Any]:
        best = self.summary.get("best") if isinstance(self.summary, dict) else None
        return dict(best) if isinstance(best, dict) else {}

    @property
    def monitor(self) -> str | None:
        return self.best.get("metric")

    @property
    def monitor_value(self) -> float | None:
        """The best value of the monitored metric (the last value when no best was kept)."""
        best = self.best
        if best.get("value") is not None:
            return best["value"]
        if best.get("metric"):
            return self.metrics.get(best["metric"])
        return None

    @property
    def git(self) -> dict[str, Any]:
        git = self.record.get("git")
        if isinstance(git, dict):
            return git
        return {}

    def config(self) -> dict[str, Any]:
        """The resolved config (config.yaml), read on first use; {} when missing or unreadable."""
        if self._config is None:
            self._config = load_config(self.path)
        return self._config

    def flat_config(self) -> dict[str, Any]:
        from runkit.flatten import flatten

        return flatten(self.config())

    def lookup(self, key: str) -> tuple[bool, Any]:
        """The value of `key` for this run: a field, a metric, an override, or a config entry (in that order,
        the config only read when nothing cheaper has the key)."""
        fields = {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "sweep": self.sweep_id,
            "start": self.start_time,
            "duration": self.duration,
            "host": self.record.get("host"),
            "seed": self.record.get("seed"),
            "tags": ",".join(self.tags),
            "commit": self.git.get("commit"),
        }
        if key in fields:
            return True, fields[key]
        metrics = self.metrics
        if key in metrics:
            return True, metrics[key]
        if key in ("best", "monitor") and self.monitor:
            return True, self.monitor_value
        if key.startswith(("best.", "best/")) and self.monitor == key[5:]:  # best.val/acc
            return True, self.monitor_value
        params = self.params
        if key in params:
            return True, params[key]
        if key in self.record and not isinstance(self.record[key], (dict, list)):
            return True, self.record[key]
        flat = self.flat_config()
        if key in flat:
            return True, flat[key]
        return False, None

    def to_row(self) -> dict[str, Any]:
        """Machine-readable row for `list --format json/csv`."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "start_time": self.start_time,
            "start": fmt_time(self.start_time),
            "duration_s": None if self.duration is None else round(self.duration, 3),
            "sweep": self.sweep_id,
            "tags": self.tags,
            "params": self.key_params,
            "monitor": self.monitor,
            "best": self.monitor_value,
            "last_step": self.summary.get("last_step") if isinstance(self.summary, dict) else None,
            "path": str(self.path),
            "problem": self.problem or self.summary_problem,
        }


def _read_json_file(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptRunFileError(f"{path} is corrupt or truncated ({exc.msg} at line {exc.lineno})") from exc


def load_run(path: Path, sweep_dir: Path | None = None, warn: Warn | None = None) -> RunInfo:
    """Read one run directory; never raises for damaged files (the RunInfo says what is wrong)."""
    info = RunInfo(path=path, sweep_dir=sweep_dir)
    run_file = path / RUN_FILE
    try:
        record = _read_json_file(run_file)
        if not isinstance(record, dict) or "id" not in record:
            raise CorruptRunFileError(f"{run_file} is not a run record (no 'id')")
        info.record = record
    except FileNotFoundError:
        info.problem = f"{run_file} is missing (a half-written run directory)"
    except (CorruptRunFileError, OSError, UnicodeDecodeError) as exc:
        info.problem = str(exc) if isinstance(exc, CorruptRunFileError) else f"cannot read {run_file}: {exc}"
    if info.problem and warn:
        warn(info.problem)
    summary_file = path / SUMMARY_FILE
    if info.problem is None:
        try:
            summary = _read_json_file(summary_file)
            if not isinstance(summary, dict):
                raise CorruptRunFileError(f"{summary_file} is not a summary (not a JSON object)")
            info.summary = summary
        except FileNotFoundError:
            pass
        except (CorruptRunFileError, OSError, UnicodeDecodeError) as exc:
            info.summary_problem = str(exc)
            if warn:
                warn(info.summary_problem)
    return info


def looks_like_run_dir(path: Path) -> bool:
    return any((path / name).exists() for name in (RUN_FILE, EVENTS_FILE, CONFIG_FILE))


def _subdirs(path: Path) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith((".", "_")):
            continue
        try:
            if entry.is_dir():
                yield Path(entry.path)
        except OSError:
            continue


def scan_runs(runs_dir: Path, warn: Warn | None = None) -> list[RunInfo]:
    """Every run directory under runs_dir (top-level runs and sweep jobs), damaged ones included."""
    runs_dir = Path(runs_dir)
    runs: list[RunInfo] = []
    for path in _subdirs(runs_dir):
        if path.name == SWEEPS_DIR:
            continue
        if looks_like_run_dir(path):
            runs.append(load_run(path, warn=warn))
    for sweep_dir in _subdirs(runs_dir / SWEEPS_DIR):
        for path in _subdirs(sweep_dir):
            if looks_like_run_dir(path):
                runs.append(load_run(path, sweep_dir=sweep_dir, warn=warn))
    return runs


def load_config(path: Path) -> dict[str, Any]:
    config_file = Path(path) / CONFIG_FILE
    if not config_file.is_file():
        return {}
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(config_file.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_json_or_empty(path: Path) -> dict[str, Any]:
    try:
        data = _read_json_file(path)
    except (FileNotFoundError, CorruptRunFileError, OSError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


# --- finding runs ----------------------------------------------------------------------------------------
def resolve_run(ref: str, runs_dir: Path) -> RunInfo:
    """A run from a path, `last`, an id or a unique id prefix; a clear UserError when unknown, ambiguous or
    damaged (the damage named)."""
    from runkit.storage.lookup import find_run

    path = Path(ref).expanduser()
    if path.is_dir() and not (path / RUN_FILE).is_file() and looks_like_run_dir(path):
        raise UserError(f"{path / RUN_FILE} is missing (a half-written run directory)")
    try:
        run_dir = find_run(ref, runs_dir)
    except UserError:
        # A directory without run.json is invisible to find_run: name its damage rather than say "no run".
        matches = [r for r in scan_runs(runs_dir) if r.id.startswith(ref)]
        if len(matches) == 1 and matches[0].corrupt:
            raise UserError(matches[0].problem) from None
        raise
    sweep_dir = None
    try:
        rel = run_dir.path.resolve().relative_to(Path(runs_dir).resolve())
        if len(rel.parts) == 3 and rel.parts[0] == SWEEPS_DIR:
            sweep_dir = run_dir.path.parent
    except ValueError:
        pass
    info = load_run(run_dir.path, sweep_dir=sweep_dir)
    if info.problem:
        raise UserError(info.problem)
    return info


# --- sweeps ----------------------------------------------------------------------------------------------
@dataclass
class SweepInfo:
    path: Path
    jobs: list[RunInfo]
    meta: dict[str, Any] = field(default_factory=dict)  # sweep.json, when the sweep wrote one

    @property
    def id(self) -> str:
        return str(self.meta.get("id") or id_from_name(self.path))

    @property
    def name(self) -> str:
        if self.meta.get("name"):
            return str(self.meta["name"])
        parts = self.path.name.split("-")
        return "-".join(parts[2:-1]) if len(parts) > 3 else self.path.name

    @property
    def start_time(self) -> float | None:
        times = [j.start_time for j in self.jobs if j.start_time]
        return min(times) if times else None

    def swept_params(self) -> list[str]:
        """The swept keys (seed included): sweep.json `varying` when the sweep recorded it, else the override
        keys whose value differs between the jobs, in first-seen order."""
        varying = self.meta.get("varying")
        if isinstance(varying, list) and varying:
            return [str(k) for k in varying if not is_noise(str(k))]
        keys: list[str] = []
        values: dict[str, set[str]] = {}
        for job in self.jobs:
            for key, value in job.key_params.items():
                if key not in values:
                    keys.append(key)
                    values[key] = set()
                values[key].add(repr(value))
        jobs_with = {k: sum(1 for j in self.jobs if k in j.key_params) for k in keys}
        return [k for k in keys if len(values[k]) > 1 or jobs_with[k] < len(self.jobs)]

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self.jobs:
            counts[job.status] = counts.get(job.status, 0) + 1
        return counts

    def best_job(self) -> RunInfo | None:
        scored = [j for j in self.jobs if isinstance(j.monitor_value, (int, float))]
        scored = [j for j in scored if not math.isnan(j.monitor_value)]
        if not scored:
            return None
        mode = scored[0].best.get("mode", "max")
        return (max if mode == "max" else min)(scored, key=lambda j: j.monitor_value)

    def to_row(self) -> dict[str, Any]:
        best = self.best_job()
        return {
            "id": self.id,
            "name": self.name,
            "jobs": len(self.jobs),
            "status": self.status_counts(),
            "start_time": self.start_time,
            "start": fmt_time(self.start_time),
            "swept": self.swept_params(),
            "monitor": best.monitor if best else None,
            "best": best.monitor_value if best else None,
            "best_run": best.id if best else None,
            "path": str(self.path),
        }


def group_sweeps(runs: list[RunInfo], runs_dir: Path) -> list[SweepInfo]:
    by_dir: dict[Path, list[RunInfo]] = {}
    for sweep_dir in _subdirs(Path(runs_dir) / SWEEPS_DIR):
        by_dir[sweep_dir] = []
    for run in runs:
        if run.sweep_dir is not None:
            by_dir.setdefault(run.sweep_dir, []).append(run)
    sweeps = []
    for path, jobs in by_dir.items():
        jobs.sort(key=lambda j: (_job_num(j), j.path.name))
        sweeps.append(SweepInfo(path=path, jobs=jobs, meta=read_json_or_empty(path / SWEEP_FILE)))
    sweeps.sort(key=lambda s: s.path.name)
    return sweeps


def _job_num(job: RunInfo) -> int:
    sweep = job.record.get("sweep")
    if isinstance(sweep, dict) and isinstance(sweep.get("job_num"), int):
        return sweep["job_num"]
    return 1 << 30


def resolve_sweep(ref: str, runs_dir: Path, runs: list[RunInfo] | None = None) -> SweepInfo:
    """A sweep from its directory, `last`, its id, a unique id prefix, or its directory name."""
    runs = scan_runs(runs_dir) if runs is None else runs
    sweeps = group_sweeps(runs, runs_dir)
    path = Path(ref).expanduser()
    if path.is_dir() and path.parent.name == SWEEPS_DIR:
        path = path.resolve()
        for sweep in sweeps:
            if sweep.path.resolve() == path:
                return sweep
        jobs = [load_run(p, sweep_dir=path) for p in _subdirs(path) if looks_like_run_dir(p)]
        return SweepInfo(path=path, jobs=jobs, meta=read_json_or_empty(path / SWEEP_FILE))
    if not sweeps:
        raise UserError(f"no sweeps found under {Path(runs_dir) / SWEEPS_DIR}")
    if ref == "last":
        return sweeps[-1]
    matches = [s for s in sweeps if s.id.startswith(ref) or s.path.name == ref]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(f"{s.id} ({s.path.name})" for s in sweeps[-10:])
        raise UserError(f"no sweep matches {ref!r} under {runs_dir}; sweeps: {known}")
    listing = ", ".join(f"{s.id} ({s.path.name})" for s in matches[:10])
    raise UserError(f"sweep prefix {ref!r} is ambiguous: {listing}")


# --- --where ---------------------------------------------------------------------------------------------
_WHERE = re.compile(r"^\s*([^<>=!~\s]+)\s*(<=|>=|!=|==|=|<|>|~)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    value: Any
    text: str

    def matches(self, run: RunInfo) -> bool:
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
    return {
        "=": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


# --- metric histories ------------------------------------------------------------------------------------
def metric_history(run_path: Path, names: Iterable[str] | None = None) -> dict[str, list[tuple[int, float]]]:
    """Each metric as (step, value) pairs sorted by step, from events.jsonl.

    The last value logged for a step wins; a `resume` event {"from_step": S} drops the points above S that
    the interrupted session logged (the resumed session logs them again, or they never happened).
    """
    from runkit.storage.events import read_events

    wanted = set(names) if names is not None else None
    series: dict[str, dict[int, float]] = {}
    events_file = Path(run_path) / EVENTS_FILE
    if not events_file.is_file():
        return {}
    last_step = 0
    for _, event in read_events(events_file):
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "resume":
            data = event.get("data") or {}
            from_step = data.get("from_step") if isinstance(data, dict) else None
            if isinstance(from_step, (int, float)):
                for points in series.values():
                    for step in [s for s in points if s > from_step]:
                        del points[step]
                last_step = int(from_step)
            continue
        if kind != "metrics" or not isinstance(event.get("data"), dict):
            continue
        step = event.get("step")
        step = last_step if not isinstance(step, (int, float)) else int(step)
        last_step = step
        for key, value in event["data"].items():
            if wanted is not None and key not in wanted:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                series.setdefault(key, {})[step] = float(value)
    return {k: sorted(v.items()) for k, v in series.items() if v}


def artifacts_of(run_path: Path) -> list[dict[str, Any]]:
    """Logged artifacts (the latest entry per path), then other files in checkpoints/ artifacts/ figures/."""
    from runkit.storage.events import read_events

    run_path = Path(run_path)
    found: dict[str, dict[str, Any]] = {}
    events_file = run_path / EVENTS_FILE
    if events_file.is_file():
        for _, event in read_events(events_file):
            if (
                isinstance(event, dict)
                and event.get("type") == "artifact"
                and isinstance(event.get("data"), dict)
            ):
                data = event["data"]
                if data.get("path"):
                    entry = found.setdefault(str(data["path"]), {"path": str(data["path"])})
                    entry.update({k: v for k, v in data.items() if k in ("kind", "name")})
                    aliases = set(entry.get("aliases", [])) | set(data.get("aliases") or [])
                    if aliases:
                        entry["aliases"] = sorted(aliases)
    for folder in ("checkpoints", "artifacts", "figures"):
        base = run_path / folder
        if not base.is_dir():
            continue
        for file in sorted(base.rglob("*")):
            if file.is_file():
                rel = file.relative_to(run_path).as_posix()
                found.setdefault(rel, {"path": rel, "kind": folder.rstrip("s")})
    for entry in found.values():
        file = run_path / entry["path"]
        entry["exists"] = file.exists()
        entry["size"] = file.stat().st_size if file.is_file() else None
    return list(found.values())
