"""Errors a user can act on: `train.py` prints their message as one line and exits non-zero."""


class UserError(Exception):
    """A problem with the input (config, command line, files on disk), not a bug. Its message is one line."""
