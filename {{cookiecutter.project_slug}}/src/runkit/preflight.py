"""Checks that refuse bad input before anything starts: one line, no traceback, no run directory.

Two kinds: the config group options named on the command line (Hydra lists the valid ones for
`tracker=nosuch` but not inside a list such as `tracker=[mlflow,nosuch]`), and the science knobs, declared by
the researcher as a dataclass whose fields say each knob's type and whose `__post_init__` says its range.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from runkit.errors import UserError

T = TypeVar("T")


def _option_names(value: Any) -> list[str]:
    """The option names in an override's value: `a`, `[a,b]`, a sweep `a,b` or `choice(a,b)`."""
    from hydra.core.override_parser.types import ChoiceSweep, Glob

    if isinstance(value, ChoiceSweep):
        return [name for item in value.list for name in _option_names(item)]
    if isinstance(value, Glob):
        return []  # a glob selects among what exists
    if isinstance(value, list):
        return [name for item in value for name in _option_names(item)]
    return [str(value)] if value is not None else []


def check_group_options(overrides: Sequence[str], config_dir: Path) -> None:
    """Refuse an override that picks a config group option which does not exist, naming the valid ones.

    Only plain group selections are checked (`group=option`, lists and sweeps of options); anything Hydra's
    parser cannot read is left to Hydra, which reports it itself.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return
    for override in parsed:
        group = override.key_or_group
        folder = config_dir / group
        if override.package is not None or not folder.is_dir() or override.is_delete():
            continue
        valid = sorted(p.stem for p in folder.glob("*.yaml"))
        unknown = [name for name in _option_names(override.value()) if name not in valid]
        if unknown:
            raise UserError(
                f"{group}: no option {', '.join(map(repr, unknown))}; choose from {', '.join(valid)}"
            )


def _convert(key: str, value: Any, kind: Any) -> Any:
    """`value` as the field's type (int, float, bool, str, or Optional of one), or a one-line UserError."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (kind,) = [a for a in args if a is not type(None)]
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is bool and isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    if kind is Any:
        return value
    expected = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}.get(kind, kind)
    raise UserError(f"{key}={value!r} is not {expected}")


def check_knobs(cfg: DictConfig | Mapping[str, Any], schema: type[T]) -> T:
    """The science knobs of `cfg` as an instance of the dataclass `schema`, checked.

    Each field is read from the config key of the same name, or from `field(metadata={"key": "a.b"})`;
    its type is checked (no silent conversion of `lr=abc`), then the dataclass's own `__post_init__` checks
    ranges: a ValueError it raises becomes a one-line UserError.
    """
    hints = typing.get_type_hints(schema)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(schema):  # type: ignore[arg-type]
        key = str(field.metadata.get("key", field.name))
        value = OmegaConf.select(cfg, key) if isinstance(cfg, DictConfig) else _lookup(cfg, key)
        values[field.name] = _convert(key, value, hints[field.name])
    try:
        return schema(**values)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _lookup(mapping: Mapping[str, Any], key: str) -> Any:
    node: Any = mapping
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def require(condition: bool, message: str) -> None:
    """For a schema's `__post_init__`: a ValueError with `message` unless `condition` holds."""
    if not condition:
        raise ValueError(message)


def one_of(key: str, value: str, choices: Iterable[str]) -> None:
    """For a schema's `__post_init__`: `value` must be one of `choices`."""
    options = list(choices)
    require(value in options, f"{key}={value!r} is not one of {', '.join(options)}")


def refuse_unknown_group_options(config_dir: Path, argv: Sequence[str] | None = None) -> None:
    """For `train.py`: exit with one line (status 2, nothing written) when the command line picks a config
    group option that does not exist. Hydra's own groups (`hydra/...`, filled by plugins too) are left to
    Hydra."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    overrides = [a for a in args if not a.startswith("-") and not a.startswith("hydra/")]
    try:
        check_group_options(overrides, config_dir)
    except UserError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
