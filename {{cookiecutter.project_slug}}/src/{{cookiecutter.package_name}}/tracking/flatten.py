"""Nested config -> flat `a.b.c` keys, the form every backend's params take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten(data: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name, sep))
        elif isinstance(value, (list, tuple)):
            out[name] = "[" + ", ".join(map(str, value)) + "]"
        else:
            out[name] = value
    return out
