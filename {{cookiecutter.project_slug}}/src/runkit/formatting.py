"""How values are written for people: one formatter for numbers and values, plus times, durations, sizes.

The runs CLI, the reports, the training console and the sweep summaries all format through here, so a
number reads the same everywhere (4 significant digits unless asked otherwise).
"""

from __future__ import annotations

import math
import time
from typing import Any


def fmt_value(value: Any, digits: int = 4) -> str:
    """A value as text: floats to `digits` significant digits, None as "", booleans as true/false,
    sequences as [a, b]."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt_value(v, digits) for v in value) + "]"
    return str(value)


def fmt_time(ts: Any) -> str:
    """A Unix timestamp as local `YYYY-mm-dd HH:MM:SS`; "" when there is none."""
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))


def fmt_duration(seconds: float | None) -> str:
    """12.3s, 4m05s, 3h07m, 2d05h."""
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


def fmt_size(size: int | None) -> str:
    """A byte count as 512 B, 1.5 KB ... GB; `missing` for no file."""
    if size is None:
        return "missing"
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
