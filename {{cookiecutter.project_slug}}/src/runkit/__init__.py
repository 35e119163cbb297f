"""runkit: the tracked-run kit every project baked from cookiecutter-hydra-research depends on.

It owns the plumbing (the run directory, the ExperimentTracker and its backends, reproducibility capture,
sweeps, reports and the `runs` command line) so that the researcher's package holds only their science.
The kit ships inside the project (it is installed with it, offline) and carries its own version: a template
update moves it forward as a whole.
"""

__version__ = "0.2.0"
