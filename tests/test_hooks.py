"""Bad answers are refused by the pre-generation hook with one clear line, and nothing is written."""

from __future__ import annotations

import pytest
from cookiecutter.exceptions import FailedHookException

from conftest import bake


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
        ({"use_wandb": "maybe"}, "use_wandb must be 'yes' or 'no'"),
        ({"author_email": "nobody"}, "is not an e-mail address"),
    ],
)
def test_bad_answer_is_refused_and_nothing_is_written(tmp_path, capfd, answers, message):
    with pytest.raises(FailedHookException):
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
