"""Hydra command-line overrides as text: the key an override sets and the value it gives.

`a.b=1` sets `a.b`; `+x=1` and `++x=1` add or force `x`; `~y` (or `~y=1`) deletes `y`; `db@pkg=mysql` sets
the group `db` at package `pkg` (key `db@pkg`). The one place the kit takes an override apart without Hydra's
parser (which needs Hydra imported and a config loader for the full grammar).
"""

from __future__ import annotations

from collections.abc import Iterable

_PREFIXES = "+~"


def override_key(override: str) -> str:
    """The key or group an override sets: `+a.b=1` -> `a.b`, `++x=2` -> `x`, `~y` -> `y`, `model=mlp` ->
    `model`."""
    return str(override).split("=", 1)[0].strip().lstrip(_PREFIXES).strip()


def override_value(override: str) -> str:
    """The value text of an override (`a=1` -> `1`); empty for a deletion without a value (`~y`)."""
    text = str(override)
    return text.split("=", 1)[1].strip() if "=" in text else ""


def is_deletion(override: str) -> bool:
    """`~y` / `~y=1`: the override removes a key."""
    return str(override).strip().startswith("~")


def override_params(overrides: Iterable[str], deletions: bool = False) -> dict[str, str]:
    """Overrides as {key: value text}, in order (a later override of the same key wins). Deletions (`~y`)
    are left out unless `deletions` (then with their value text, usually empty)."""
    return {override_key(o): override_value(o) for o in overrides if deletions or not is_deletion(o)}
