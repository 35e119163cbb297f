"""OmegaConf resolvers the configs use. Registered by train.py before Hydra composes the config."""

from __future__ import annotations

from omegaconf import OmegaConf

from runkit.ids import new_id


def register_resolvers() -> None:
    # Cached: Hydra copies the resolver cache from the sweep's master config into every job's config, so all
    # jobs of one sweep, whatever the launcher, resolve the same id (and so the same sweep directory).
    if not OmegaConf.has_resolver("sweep_id"):
        OmegaConf.register_new_resolver("sweep_id", lambda: new_id(6), use_cache=True)
