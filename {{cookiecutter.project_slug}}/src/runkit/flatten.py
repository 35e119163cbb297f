"""Nested mappings -> flat `a.b.c` keys: for backend params (`flatten`) and for display (`flatten_raw`)."""

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


def flatten_raw(data: Any, prefix: str = "") -> dict[str, Any]:
    """Flat `a.b.c` keys with the leaf values as they are (lists stay lists, empty mappings add nothing):
    what the runs CLI and reports show. A non-mapping gives an empty result."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                out.update(flatten_raw(value, name))
            else:
                out[name] = value
    return out
