"""`python -m <package>.cli runs list ...`: the same command line as the console script."""

from runkit.cli import app

app()
