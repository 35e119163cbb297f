"""Config nodes as plain, typed Python data: the one conversion from OmegaConf the kit uses."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


def plain(value: Any) -> Any:
    """A config node (resolved) as plain data; any other value as it is."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def plain_dict(node: DictConfig | dict[str, Any] | None) -> dict[str, Any]:
    """A config node (or a missing one) as a resolved dict with string keys."""
    if node is None:
        return {}
    if isinstance(node, dict):
        return node
    data = OmegaConf.to_container(node, resolve=True)
    if not isinstance(data, dict):
        raise TypeError(f"expected a mapping in the config, got {type(data).__name__}")
    return {str(key): value for key, value in data.items()}
