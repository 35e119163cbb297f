"""One run directory as the catalog sees it: run.json and summary.json (config.yaml only on demand)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runkit.catalog.values import overrides_dict
from runkit.flatten import flatten
from runkit.formatting import fmt_time
from runkit.repro.config_keys import is_plumbing
from runkit.storage.layout import CONFIG_FILE
from runkit.storage.liveness import effective_status
from runkit.storage.run_dir import id_from_name
from runkit.storage.status import Status

# The status of a run directory that cannot be read (not a run status: nothing recorded it).
CORRUPT = "corrupt"

# How a key says what it means, MLflow-style: `params.lr` (the parameter: override, else the resolved config),
# `metrics.lr` (the metric's last value). The singular forms are accepted too (`runs export` writes
# `param.*` / `metric.*` columns).
PARAM_PREFIXES = ("params.", "param.")
METRIC_PREFIXES = ("metrics.", "metric.")
# Fields of the run record, looked up before anything else under their bare name.
FIELDS = ("id", "name", "status", "sweep", "start", "duration", "host", "seed", "tags", "commit")


def split_key(key: str) -> tuple[str | None, str]:
    """(`param` | `metric` | None, the bare key): `params.lr` -> ("param", "lr"), `val/acc` -> (None, ...)."""
    for prefix in PARAM_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return "param", key[len(prefix) :]
    for prefix in METRIC_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return "metric", key[len(prefix) :]
    return None, key


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


@dataclass
class RunEntry:
    """One run directory: run.json and summary.json, or the reason it cannot be read."""

    path: Path
    record: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # set for a corrupt / half-written run directory
    summary_problem: str | None = None
    sweep_dir: Path | None = None
    _status: str | None = field(default=None, repr=False, compare=False)
    _config: dict[str, Any] | None = field(default=None, repr=False, compare=False)

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
        """The recorded status (a dead `running` run shows as crashed), or `corrupt`."""
        if self.problem is not None:
            return CORRUPT
        if self._status is None:
            self._status = effective_status(self.record)
        return self._status

    @property
    def start_time(self) -> float | None:
        value = _number(self.record.get("start_time"))
        if value is not None:
            return float(value)
        try:
            return self.path.stat().st_mtime if self.problem else None
        except OSError:
            return None

    @property
    def duration(self) -> float | None:
        rec = self.record
        recorded = _number(rec.get("duration_s"))
        if recorded is not None and rec.get("status") != Status.RUNNING.value:
            return float(recorded)
        start = _number(rec.get("start_time"))
        if start is None:
            return None
        if self.status == Status.RUNNING.value:
            return time.time() - start
        end = _number(rec.get("end_time") or rec.get("heartbeat"))
        return float(end) - start if end is not None else None

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
        """The science overrides: what the run computes differently (plumbing such as `paths.*`, `resume`,
        `tracker`, `name` and `tags` left out: `repro.config_keys`)."""
        return {k: v for k, v in self.params.items() if not is_plumbing(k)}

    @property
    def sweep_id(self) -> str | None:
        sweep = self.record.get("sweep")
        if isinstance(sweep, dict) and sweep.get("id"):
            return str(sweep["id"])
        return id_from_name(self.sweep_dir) if self.sweep_dir else None

    @property
    def metrics(self) -> dict[str, Any]:
        last = self.summary.get("last")
        return dict(last) if isinstance(last, dict) else {}

    @property
    def best(self) -> dict[str, Any]:
        best = self.summary.get("best")
        return dict(best) if isinstance(best, dict) else {}

    @property
    def monitor(self) -> str | None:
        metric = self.best.get("metric")
        return str(metric) if metric else None

    @property
    def monitor_value(self) -> float | None:
        """The best value of the monitored metric (the last value when no best was kept)."""
        best = self.best
        if best.get("value") is not None:
            return _number(best["value"])
        if best.get("metric"):
            return _number(self.metrics.get(best["metric"]))
        return None

    @property
    def git(self) -> dict[str, Any]:
        git = self.record.get("git")
        return git if isinstance(git, dict) else {}

    def config(self) -> dict[str, Any]:
        """The resolved config (config.yaml), read on first use; {} when missing or unreadable."""
        if self._config is None:
            self._config = load_config(self.path)
        return self._config

    def flat_config(self) -> dict[str, Any]:
        return flatten(self.config())

    def param(self, key: str) -> tuple[bool, Any]:
        """The parameter `key`: its override, else its resolved config entry (config.yaml read on demand)."""
        params = self.params
        if key in params:
            return True, params[key]
        flat = self.flat_config()
        if key in flat:
            return True, flat[key]
        return False, None

    def has_param(self, key: str) -> bool:
        return self.param(key)[0]

    def lookup(self, key: str) -> tuple[bool, Any]:
        """The value of `key` for this run. `params.K` is the parameter K, `metrics.K` the metric K's
        last value; a bare key is a field, then a metric, then an override, a run.json entry or a config
        entry (the config read only when nothing cheaper has the key). `catalog.query` refuses a bare key
        that is both a metric and a param among the runs considered."""
        kind, bare = split_key(key)
        if kind == "param":
            return self.param(bare)
        if kind == "metric":
            metrics = self.metrics
            return (True, metrics[bare]) if bare in metrics else (False, None)
        if key in FIELDS:
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
            "last_step": self.summary.get("last_step"),
            "path": str(self.path),
            "problem": self.problem or self.summary_problem,
        }


def load_config(path: Path) -> dict[str, Any]:
    """A run directory's config.yaml as a dict; {} when missing or unreadable."""
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
