"""Importing wandb for the adapter without the costs W&B's own use would not have.

W&B checks every non-numeric value it logs (our images, tables) for a pandas DataFrame; when pandas is
installed it imports pandas for that check: about 0.25 s of CPU the first time, in a process (the shipper)
that never holds a DataFrame, and with the run's media at its end that second is spent while the trainer
waits. When pandas is not imported yet no DataFrame exists, and W&B's other check, by type name
(`pandas.core.frame.DataFrame`), recognises any one made later, so this turns the import off.
"""

from __future__ import annotations

import sys
from typing import Any


def import_wandb() -> Any:
    """`import wandb`, its pandas probe off unless pandas is loaded already (ImportError: not installed)."""
    import wandb

    util: Any = getattr(wandb, "util", None)
    if "pandas" not in sys.modules and isinstance(getattr(util, "pd_available", None), bool):
        util.pd_available = False
    return wandb
