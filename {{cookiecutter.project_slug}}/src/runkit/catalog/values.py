"""Override values as the command line wrote them: `lr=1e-3` -> {"lr": 0.001}.

Which keys an override sets is `runkit.overrides`' business, which keys are plumbing (where and how a run ran,
left out of the params the CLI shows) is `runkit.repro.config_keys.is_plumbing`'s; this module only reads
the values as numbers, booleans or text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runkit.overrides import override_params


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


def overrides_dict(overrides: Iterable[str] | None) -> dict[str, Any]:
    """key -> value of the `key=value` overrides (deletions `~key` and bare words left out)."""
    items = [str(o) for o in overrides or () if "=" in str(o)]
    return {key: parse_value(value) for key, value in override_params(items).items()}
