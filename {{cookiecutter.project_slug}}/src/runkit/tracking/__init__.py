"""Experiment tracking: one ExperimentTracker in front of the run directory and every chosen backend."""

from runkit.storage.status import Status
from runkit.tracking.start import start_run
from runkit.tracking.tracker import ExperimentTracker

__all__ = ["ExperimentTracker", "Status", "start_run"]
