"""`python -m <package>.cli runs list ...`: the same command line as the console script."""

from . import app

app()
