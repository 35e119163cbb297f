"""Sweeps: the Hydra callback, the job wrapper, the sweep record and the sweep summary."""
