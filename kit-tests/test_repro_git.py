"""Git capture against real temporary repositories: clean, dirty, detached HEAD, no commits, no repository,
a remote whose URL holds a token; and through real runs: git.json, git.diff, tags, and `git.require_clean`."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from runkit.errors import UserError
from runkit.repro.git import git_state, require_clean, strip_credentials, write_diff

from conftest import ROOT
from repro_helpers import TOKEN, git, make_dirty, make_repo, read_events, record, shared_runs

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command line")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://user:{TOKEN}@github.com/org/repo.git", "https://github.com/org/repo.git"),
        (f"https://{TOKEN}@github.com/org/repo.git", "https://github.com/org/repo.git"),
        (f"http://oauth2:{TOKEN}@gitlab.example.com:8443/g/r.git", "http://gitlab.example.com:8443/g/r.git"),
        (f"ssh://git:{TOKEN}@host.example.com/r.git", "ssh://git@host.example.com/r.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        (f"https://host/r.git?private_token={TOKEN}&ref=x", "https://host/r.git?private_token=***&ref=x"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
    ],
)
def test_credentials_are_stripped_from_remote_urls(url, expected):
    assert strip_credentials(url) == expected
    assert TOKEN not in strip_credentials(url)


def test_clean_repository(tmp_path):
    repo = make_repo(tmp_path / "repo")
    state = git_state(repo)
    assert state.available and not state.dirty and state.warning is None
    assert state.commit == git(repo, "rev-parse", "HEAD") and len(state.commit) == 40
    assert state.branch == "main" and not state.detached
    assert state.root == str(repo.resolve()) and state.changed == [] and state.untracked == []
    assert state.remote is None
    assert write_diff(repo, state, tmp_path / "git.diff", 1000) == {
        "file": None,
        "bytes": 0,
        "truncated": False,
    }
    assert not (tmp_path / "git.diff").exists()
    assert require_clean(repo).commit == state.commit


def test_dirty_repository_lists_changes_and_diffs_staged_and_unstaged(tmp_path):
    repo = make_repo(tmp_path / "repo")
    make_dirty(repo)
    state = git_state(repo / "data")  # from a subfolder: the whole repository is captured
    assert state.dirty and state.commit == git(repo, "rev-parse", "HEAD")
    assert sorted(state.changed) == ["M README.md", "M model.py"]
    assert sorted(state.untracked) == ["data/", "notes.txt"]  # untracked files do not make the tree dirty
    diff = write_diff(repo, state, tmp_path / "git.diff", 1_000_000)
    text = (tmp_path / "git.diff").read_text()
    assert diff == {"file": "git.diff", "bytes": len(text.encode()), "truncated": False}
    assert "+WIDTH = 128" in text and "+staged line" in text  # unstaged and staged, both against HEAD
    assert "scratch" not in text  # untracked content is not in the diff
    assert git(repo, "apply", "--check", "-R", str(tmp_path / "git.diff")) == ""  # a real, applicable patch


def test_only_untracked_files_is_not_dirty(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "new.py").write_text("x = 1\n")
    state = git_state(repo)
    assert not state.dirty and state.untracked == ["new.py"]
    require_clean(repo)


def test_a_large_diff_is_cut_with_a_clear_note(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "model.py").write_text("".join(f"line {i} " + "x" * 60 + "\n" for i in range(2000)))
    state = git_state(repo)
    diff = write_diff(repo, state, tmp_path / "git.diff", 5000)
    data = (tmp_path / "git.diff").read_bytes()
    assert diff["truncated"] and diff["bytes"] == len(data)
    body, note = data.rsplit(b"\n# [git.diff TRUNCATED", 1)
    assert len(body) <= 5000 and body.endswith(b"\n")  # cut on a line boundary, never past the limit
    assert b"git.diff_max_bytes=5000" in note
    full = write_diff(repo, state, tmp_path / "full.diff", None)
    assert not full["truncated"] and full["bytes"] > 100_000


def test_detached_head(tmp_path):
    repo = make_repo(tmp_path / "repo")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "model.py").write_text("WIDTH = 32\n")
    git(repo, "commit", "-q", "-am", "second")
    git(repo, "checkout", "-q", "--detach", first)
    state = git_state(repo)
    assert state.detached and state.branch is None and state.commit == first and not state.dirty


def test_repository_without_commits(tmp_path):
    repo = make_repo(tmp_path / "repo", commit=False)
    git(repo, "add", "model.py")
    state = git_state(repo)
    assert state.available and state.commit is None and state.branch == "main"
    assert state.dirty and state.changed == ["A model.py"] and state.untracked == ["README.md"]
    assert "no commits yet" in state.warning
    write_diff(repo, state, tmp_path / "git.diff", 10_000)
    assert "+WIDTH = 64" in (tmp_path / "git.diff").read_text()


def test_outside_a_repository_is_a_warning(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    state = git_state(folder)
    assert not state.available and state.commit is None
    assert "is not inside a git repository" in state.warning
    with pytest.raises(UserError, match="git.require_clean=true, but .* not inside a git repository"):
        require_clean(folder)


def test_without_a_git_binary(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    state = git_state(repo)
    assert not state.available and state.warning == "git is not installed: the code version is not recorded"


def test_remote_with_a_token_is_recorded_without_it(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", f"https://ci:{TOKEN}@github.com/org/repo.git")
    git(repo, "remote", "add", "mirror", f"https://{TOKEN}@gitlab.com/org/repo.git")
    state = git_state(repo)
    assert state.remote == "https://github.com/org/repo.git"
    assert state.remotes == {"origin": state.remote, "mirror": "https://gitlab.com/org/repo.git"}
    assert TOKEN not in json.dumps(state.to_dict())


def test_require_clean_names_the_changed_files_in_one_line(tmp_path):
    repo = make_repo(tmp_path / "repo")
    make_dirty(repo)
    with pytest.raises(UserError) as err:
        require_clean(repo)
    message = str(err.value)
    assert "\n" not in message and "README.md" in message and "model.py" in message
    assert "notes.txt" not in message and "git.require_clean=false" in message


# --- through real runs ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dirty_run(tmp_path_factory):
    """A real run whose project root (paths.root) is a dirty repository with a token in its remote URL."""
    runs = shared_runs(tmp_path_factory)
    return runs["repo"], runs["twin"]


@pytest.mark.slow
def test_a_run_records_git_json_diff_and_summary(dirty_run):
    repo, run = dirty_run
    saved = json.loads((run / "git.json").read_text())
    assert saved["commit"] == git(repo, "rev-parse", "HEAD") and saved["branch"] == "main" and saved["dirty"]
    assert saved["remote"] == "https://github.com/org/repo.git"
    assert sorted(saved["untracked"]) == ["data/", "notes.txt"]
    assert saved["diff"] == {
        "file": "git.diff",
        "bytes": (run / "git.diff").stat().st_size,
        "truncated": False,
    }
    assert "+WIDTH = 128" in (run / "git.diff").read_text()
    rec = record(run)
    assert rec["git"]["commit"] == saved["commit"] and rec["git"]["dirty"] is True
    assert rec["git"]["remote"] == saved["remote"] and rec["git"]["diff"] is True
    for name in ("git.json", "run.json", "environment.json", "events.jsonl", "config.yaml", "overrides.yaml"):
        assert TOKEN not in (run / name).read_text(), name


@pytest.mark.slow
def test_backends_get_the_git_summary_as_tags_and_the_diff_as_an_artifact(dirty_run):
    repo, run = dirty_run
    events = read_events(run)
    tags = {}
    for event in events:
        if event["type"] == "tags":
            tags.update(event["data"])
    rec = record(run)
    assert tags["git.commit"] == git(repo, "rev-parse", "HEAD") and tags["git.branch"] == "main"
    assert tags["git.dirty"] == "true" and tags["config_hash"] == rec["config_hash"]
    assert tags["seed"] == str(rec["seed"])
    artifacts = [e["data"] for e in events if e["type"] == "artifact" and e["data"]["kind"] == "git-diff"]
    assert artifacts == [{"path": "git.diff", "kind": "git-diff", "name": "git.diff"}]
    first_metric = next(i for i, e in enumerate(events) if e["type"] == "metrics")
    assert all(e["type"] in ("params", "tags", "artifact", "dataset") for e in events[:first_metric])


@pytest.mark.slow
def test_the_project_run_records_the_project_repository(default_run):
    """The default run (shared with test_train_e2e) captures the generated project's own repository, or,
    where the project was generated without `git init`, records why it could not."""
    saved = json.loads((default_run / "git.json").read_text())
    rec = record(default_run)
    inside = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if shutil.which("git") and inside.returncode == 0:
        assert saved["commit"] == rec["git"]["commit"] == inside.stdout.strip()
        assert not any("git" in w for w in rec["warnings"])
    else:
        assert saved["commit"] is None and rec["git"]["commit"] is None
        assert any("git" in w for w in rec["warnings"])


@pytest.mark.slow
def test_require_clean_refuses_a_dirty_tree_before_anything_is_created(tmp_path_factory):
    runs = shared_runs(tmp_path_factory)
    proc = runs["refused_clean"]  # git.require_clean=true with paths.root = the dirty repository
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "uncommitted changes in" in errors[0]
    assert "model.py" in errors[0] and "README.md" in errors[0]
    assert "Traceback" not in proc.stderr
    clean_runs_dir = runs["clean_runs_dir"]
    assert not clean_runs_dir.exists() or not any(clean_runs_dir.iterdir())
