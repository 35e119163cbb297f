"""Ids survive the command line: Hydra's override parser reads every id back as the same string."""

from __future__ import annotations

import re

from hydra.core.override_parser.overrides_parser import OverridesParser

from runkit.ids import new_id
from runkit.storage.run_dir import new_run_id

PARSER = OverridesParser.create()


def parsed(value: str) -> object:
    return PARSER.parse_overrides([f"resume={value}"])[0].value()


def test_number_like_hex_is_what_goes_wrong_without_the_letter_rule():
    # The failure this guards against: these are valid hex, and Hydra reads them as numbers.
    assert parsed("7034e280") == 7034e280 and parsed("12345678") == 12345678


def test_run_and_sweep_ids_always_parse_back_as_themselves():
    for _ in range(2000):
        for rid in (new_run_id(), new_id(6)):
            assert re.fullmatch(r"[a-f][0-9a-f]+", rid), rid
            assert parsed(rid) == rid
    assert len(new_run_id()) == 8 and len(new_id(6)) == 6
