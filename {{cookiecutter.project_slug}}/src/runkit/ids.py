"""Run and sweep ids: short, random, and never mistaken for a number.

Ids are typed on the command line (`resume=<id>`, `sweep.resume=<id>`, `++rerun_of=<id>`), where Hydra's
override parser turns `7034e280` into a float and `12345678` into an int. Starting every id with a letter
keeps it a string there, and in YAML, whatever the rest of it is.
"""

from __future__ import annotations

import secrets

_FIRST = "abcdef"


def new_id(length: int = 8) -> str:
    """`length` lower-case hex characters, the first one a letter (6 x 16^(length-1) possible ids)."""
    return secrets.choice(_FIRST) + secrets.token_hex(length)[: length - 1]
