"""The documentation site builds with --strict (broken links and missing pages fail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import TEMPLATE


def test_docs_build_strict(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "site" / "run-directory" / "index.html").is_file()
