"""Reproducibility: control (seeds) and capture (git, environment, config hash). No tracking code here."""
