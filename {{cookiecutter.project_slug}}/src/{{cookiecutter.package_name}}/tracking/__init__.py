"""Experiment tracking: one ExperimentTracker in front of the run directory and every chosen backend."""

from .start import start_run
from .status import Status
from .tracker import ExperimentTracker

__all__ = ["ExperimentTracker", "Status", "start_run"]
