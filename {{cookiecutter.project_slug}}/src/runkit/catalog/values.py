"""Override values as the command line wrote them: `lr=1e-3` -> {"lr": 0.001}, and which keys are noise."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Override keys that say where or how a run was launched, not what it computes: left out of "key params".
NOISE_PREFIXES = ("paths.", "hydra.", "hydra/", "tracker", "resume", "rerun_of", "sweep.")
# Shown in their own columns already.
OWN_COLUMNS = ("name", "tags")


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


def overrides_dict(overrides: Iterable[str] | None) -> dict[str, Any]:
    """key -> value of the `key=value` overrides (deletions `~key` left out)."""
    out: dict[str, Any] = {}
    for item in overrides or ():
        item = str(item)
        if "=" not in item or item.startswith("~"):
            continue
        key, value = item.split("=", 1)
        out[key.lstrip("+").strip()] = parse_value(value)
    return out


def is_noise(key: str) -> bool:
    return key.startswith(NOISE_PREFIXES) or key in OWN_COLUMNS
