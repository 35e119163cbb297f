"""Hydra callback for multiruns: the sweep record, backend grouping and the end-of-sweep summary."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback


class SweepCallback(Callback):
    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        pass

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        pass
