"""How the adapter calls the wandb library: imported without the costs W&B's own use would not have, a run
opened while a killed session's helper still holds it, an API key found without logging in.

W&B checks every non-numeric value it logs (our images, tables) for a pandas DataFrame; when pandas is
installed it imports pandas for that check: about 0.25 s of CPU the first time, in a process (the shipper)
that never holds a DataFrame, and with the run's media at its end that second is spent while the trainer
waits. When pandas is not imported yet no DataFrame exists, and W&B's other check, by type name
(`pandas.core.frame.DataFrame`), recognises any one made later, so this turns the import off.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

log = logging.getLogger(__name__)


def import_wandb() -> Any:
    """`import wandb`, its pandas probe off unless pandas is loaded already (ImportError: not installed).

    It also drops an inherited `WANDB_SERVICE` (one this process did not start: W&B's token names the
    process that started the service). W&B sets it for the children of a process that uses W&B itself (a
    notebook, a test process, `wandb beta core start`), and a shipper attached to that service would leave
    its run's stream there when it is killed: every later session of the run (`runs sync`, a resume) would
    find the run id "in use" until that process ends. The process that delivers a run owns its writer,
    which dies with it."""
    token = os.environ.get("WANDB_SERVICE", "").split("-")
    if len(token) > 1 and token[1] != str(os.getpid()):
        os.environ.pop("WANDB_SERVICE", None)
    import wandb

    util: Any = getattr(wandb, "util", None)
    if "pandas" not in sys.modules and isinstance(getattr(util, "pd_available", None), bool):
        util.pd_available = False
    return wandb


def has_api_key() -> bool:
    """An API key in the environment or in ~/.netrc for the W&B host (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def init_when_free(wandb: Any, **kwargs: Any) -> Any:
    """`wandb.init`, waiting (up to a minute) while W&B says the run id is in use: the helper process
    (wandb-core) of a session that was just killed still holds the run until it notices its parent is gone,
    and a `runs sync` or a resume started right after the kill must not fail on it."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return wandb.init(**kwargs)
        except Exception as exc:
            if "in use" not in str(exc) or time.monotonic() > deadline:
                raise
            log.info("W&B says run %s is in use (a helper of a killed session?); waiting", kwargs.get("id"))
            time.sleep(1)
