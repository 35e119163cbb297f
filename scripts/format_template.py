"""Format and lint-fix the template's Python files with the generated project's own ruff settings.

Template files hold Jinja, so ruff cannot run on them in place: bake the default project (all backends), run
`ruff format` and `ruff check --fix` there, and copy each .py file back with the package name turned back into
its placeholder. Usage: python scripts/format_template.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
PROJECT = TEMPLATE / "{{cookiecutter.project_slug}}"
PACKAGE = "zz_template_pkg"  # a name that appears nowhere else, so mapping it back is exact
PLACEHOLDER_PATH = "{{cookiecutter.package_name}}"
PLACEHOLDER_TEXT = "{{ cookiecutter.package_name }}"


def main() -> int:
    ruff = Path(sys.executable).with_name("ruff")
    with tempfile.TemporaryDirectory() as tmp:
        baked = Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                output_dir=tmp,
                extra_context={"package_name": PACKAGE, "git_init": "no"},
            )
        )
        subprocess.run([str(ruff), "check", "--fix", "--quiet", "."], cwd=baked, capture_output=True)
        subprocess.run([str(ruff), "format", "--quiet", "."], cwd=baked, check=True)
        changed = 0
        for path in baked.rglob("*.py"):
            rel = path.relative_to(baked).as_posix().replace(PACKAGE, PLACEHOLDER_PATH)
            target = PROJECT / rel
            if not target.exists():
                continue
            text = path.read_text().replace(PACKAGE, PLACEHOLDER_TEXT)
            if text != target.read_text():
                target.write_text(text)
                changed += 1
                print(f"formatted {rel}")
        remaining = subprocess.run([str(ruff), "check", "."], cwd=baked, capture_output=True, text=True)
        print(f"{changed} file(s) reformatted")
        if remaining.returncode:
            print(remaining.stdout)
            return 1
    shutil.rmtree(TEMPLATE / ".ruff_cache", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
