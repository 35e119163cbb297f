"""Baking helpers shared by the template tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
DEFAULTS: dict[str, Any] = json.loads((TEMPLATE / "cookiecutter.json").read_text())


def bake(output_dir: Path, **answers: str) -> Path:
    """Bake the template with `answers` over the defaults, without prompting; return the project folder."""
    return Path(cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output_dir)))


@pytest.fixture
def baker(tmp_path: Path):
    return lambda **answers: bake(tmp_path, **answers)
