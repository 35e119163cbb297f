"""Bad answers are refused as they are given (local_extensions.py): one clear line, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEMPLATE, bake


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "1project"}, "is not a Python identifier"),
        ({"package_name": "my-project"}, "is not a Python identifier"),
        ({"package_name": "class"}, "is a Python keyword"),
        ({"package_name": "json"}, "shadows the standard library"),
        ({"package_name": "torch"}, "shadows a dependency"),
        ({"package_name": "hydra"}, "shadows a dependency"),
        ({"package_name": "test"}, "shadows"),
        ({"package_name": "MyProject"}, "must be lower case"),
        ({"project_slug": "bad slug!"}, "is not a valid folder/distribution name"),
        ({"use_mlflow": "no", "default_tracker": "mlflow"}, "'mlflow' is not an included backend"),
        ({"package_name": "runkit"}, "shadows a dependency"),
        ({"use_wandb": "maybe"}, "use_wandb must be 'yes' or 'no'"),
        ({"author_email": "nobody"}, "is not an e-mail address"),
    ],
)
def test_bad_answer_is_refused_and_nothing_is_written(tmp_path, capfd, answers, message):
    with pytest.raises(SystemExit):
        bake(tmp_path, **answers)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(lines) == 1 and message in lines[0], err
    assert list(tmp_path.iterdir()) == []


def test_slug_and_package_name_are_derived_from_the_project_name(tmp_path):
    project = bake(tmp_path, project_name="Deep Nets_Study")
    assert project.name == "deep-nets-study"
    assert (project / "src" / "deep_nets_study" / "train.py").is_file()


def test_default_answers_bake_without_input(tmp_path):
    project = bake(tmp_path)
    assert (project / "train.py").is_file() and (project / ".git").is_dir()


def test_the_command_line_refusal_is_one_line_without_a_traceback(tmp_path):
    cookiecutter = Path(sys.executable).with_name("cookiecutter")
    cmd = [str(cookiecutter), str(TEMPLATE), "--no-input", "-o", str(tmp_path), "package_name=torch"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == "" and proc.stderr.strip().splitlines() == [
        "ERROR: package_name 'torch' shadows a dependency or a project folder; choose another name"
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_default_tracker_offered_is_always_an_included_backend(tmp_path):
    """Interactively: answer 'no' to TensorBoard and accept every other default; the default tracker offered
    (and taken) is MLflow, and the project bakes."""
    cookiecutter = Path(sys.executable).with_name("cookiecutter")
    answers = ["", "", "", "", "", "", "", "no", "", "", "", "", "", "no"]  # 14 questions; git_init: no
    proc = subprocess.run(
        [str(cookiecutter), str(TEMPLATE), "-o", str(tmp_path)],
        input="\n".join(answers) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(mlflow)" in proc.stdout
    train = (tmp_path / "research-project" / "configs" / "train.yaml").read_text()
    assert "  - tracker: mlflow\n" in train
