"""Format and lint-fix the template's Python files with the generated project's own ruff settings.

Template files hold Jinja, so ruff cannot run on them in place: bake the default project (all backends), run
`ruff check --fix` and `ruff format` there, and copy each .py file back with the package name turned back
into its placeholder. A template file edited while this runs is left alone (never overwritten).

Usage: python scripts/format_template.py [substring ...]   (only files whose path contains a substring)
"""

from __future__ import annotations

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


def unrender(text: str) -> str:
    return text.replace(PACKAGE, PLACEHOLDER_TEXT)


def main(filters: list[str]) -> int:
    ruff = Path(sys.executable).with_name("ruff")
    with tempfile.TemporaryDirectory() as tmp:
        answers = {"package_name": PACKAGE, "git_init": "no"}
        baked = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=tmp, extra_context=answers))
        files = {}
        for path in sorted(baked.rglob("*.py")):
            rel = path.relative_to(baked).as_posix().replace(PACKAGE, PLACEHOLDER_PATH)
            kit = rel.startswith(("src/runkit/", "src/hydra_plugins/"))  # plain Python: `make format`
            if not kit and (PROJECT / rel).exists() and (not filters or any(f in rel for f in filters)):
                files[rel] = (path, unrender(path.read_text()))
        targets = [str(p) for p, _ in files.values()]
        if not targets:
            print("no matching files")
            return 0
        subprocess.run([str(ruff), "check", "--fix", "--quiet", *targets], cwd=baked, capture_output=True)
        subprocess.run([str(ruff), "format", "--quiet", *targets], cwd=baked, check=True)
        changed = 0
        for rel, (path, before) in files.items():
            target = PROJECT / rel
            after = unrender(path.read_text())
            if after == before:
                continue
            if target.read_text() != before:
                print(f"skipped {rel}: edited while formatting; run again")
                continue
            target.write_text(after)
            changed += 1
            print(f"formatted {rel}")
        remaining = subprocess.run([str(ruff), "check", *targets], cwd=baked, capture_output=True, text=True)
        print(f"{changed} file(s) reformatted")
        if remaining.returncode:
            print(remaining.stdout.replace(PACKAGE, PLACEHOLDER_PATH))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
