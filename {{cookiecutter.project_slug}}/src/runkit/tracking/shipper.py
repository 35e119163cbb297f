"""The shipper: a helper process that feeds the chosen backends from the run's events.jsonl.

This module is its entry point, `python -m runkit.tracking.shipper <run dir>` (a module name fixed by the
kit, whatever the project's package is called), and the trainer's import of `Shipper`. The work itself lives
in tracking/delivery, one job per module (see its package docstring): the trainer only appends to
events.jsonl; the shipper tails it and forwards batches to TensorBoard, MLflow and W&B, so the training
thread never waits on a backend, and a SIGKILL of the trainer loses nothing (the shipper drains the log,
records the run as `crashed` and closes every backend's run as such).
"""

from __future__ import annotations

import sys

from runkit.tracking.delivery.channel import Channel, Cursor
from runkit.tracking.delivery.child import child_main
from runkit.tracking.delivery.ending import final_status_after, mark_crashed, settle_record
from runkit.tracking.delivery.launch import Shipper
from runkit.tracking.delivery.opening import build_backend, run_info
from runkit.tracking.delivery.options import (
    DEFAULT_OPTIONS,
    LOG_FILE,
    SHIPPER_DIR,
    one_line,
    options_with_defaults,
)
from runkit.tracking.delivery.pump import Pump

__all__ = [
    "DEFAULT_OPTIONS",
    "LOG_FILE",
    "SHIPPER_DIR",
    "Channel",
    "Cursor",
    "Pump",
    "Shipper",
    "build_backend",
    "child_main",
    "final_status_after",
    "mark_crashed",
    "one_line",
    "options_with_defaults",
    "run_info",
    "settle_record",
]

if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
