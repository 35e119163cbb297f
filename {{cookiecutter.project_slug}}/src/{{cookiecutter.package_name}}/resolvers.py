"""OmegaConf resolvers the configs use. Registered by train.py before Hydra composes the config."""

from __future__ import annotations

import secrets

from omegaconf import OmegaConf


def register_resolvers() -> None:
    # Cached: Hydra copies the resolver cache from the sweep's master config into every job's config, so all
    # jobs of one sweep, whatever the launcher, resolve the same id (and so the same sweep directory).
    if not OmegaConf.has_resolver("sweep_id"):
        OmegaConf.register_new_resolver("sweep_id", lambda: secrets.token_hex(3), use_cache=True)
