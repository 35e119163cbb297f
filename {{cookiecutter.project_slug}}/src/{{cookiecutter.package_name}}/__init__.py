"""Research Project: A Hydra research project where every run is tracked, reproducible and comparable."""

__version__ = "0.1.0"
