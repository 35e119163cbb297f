"""docs/layout.md describes what a bake produces: every path its tree names exists in a default bake, and
every top-level entry of the bake (and every layer of the kit) is named in the tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import TEMPLATE, bake

LAYOUT = TEMPLATE / "docs" / "layout.md"
PACKAGE = "research_project"  # the default answers' package name


def layout_tree() -> list[str]:
    """The paths of the tree in docs/layout.md, folders ending in '/', `<package>` filled in."""
    block = LAYOUT.read_text().split("```text\n", 1)[1].split("```", 1)[0]
    paths: list[str] = []
    parents: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = re.match(r"^( *)(\S+)", line)
        if not match or len(match.group(1)) % 2 or not re.match(r"^[\w.<>-]+/?$", match.group(2)):
            continue  # a continuation line of a description
        depth, name = len(match.group(1)) // 2, match.group(2).replace("<package>", PACKAGE)
        parents = [p for p in parents if p[0] < depth]
        prefix = parents[-1][1] if parents else ""
        paths.append(prefix + name)
        if name.endswith("/"):
            parents.append((depth, prefix + name))
    return paths


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp("layout"), git_init="no")


def test_every_path_in_the_layout_exists(project: Path) -> None:
    paths = layout_tree()
    assert len(paths) > 20, paths
    missing = [p for p in paths if not (project / p.rstrip("/")).exists()]
    assert not missing, f"docs/layout.md names paths a bake does not have: {missing}"
    for path in paths:
        assert (project / path.rstrip("/")).is_dir() == path.endswith("/"), path


def test_the_layout_names_every_top_level_entry_and_every_kit_layer(project: Path) -> None:
    named = set(layout_tree())
    optional = {"LICENSE"}  # present or not, by the licence answer
    for entry in project.iterdir():
        if entry.name.startswith(".") or entry.name in optional:
            continue
        assert entry.name + ("/" if entry.is_dir() else "") in named, entry.name
    for layer in (project / "src" / "runkit").iterdir():
        if layer.is_dir() and layer.name != "__pycache__":
            assert f"src/runkit/{layer.name}/" in named, layer.name
