"""Git capture: which code ran. Uses the `git` command line (no Python git library), a few calls in total.

`git_state(root)` never raises for an ordinary situation (no git binary, not a repository, no commits yet,
detached HEAD): it returns a GitState whose `warning` says what could not be recorded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from runkit.errors import UserError
from runkit.storage.layout import GIT_DIFF_FILE

MAX_LISTED = 1000  # longer lists of changed/untracked files are cut (the count is kept)
_SECRET_PARAM = re.compile(r"(key|token|secret|password|passwd|pwd|auth|credential|signature|sig)", re.I)
_GIT_ENV = {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}


@dataclass
class GitState:
    """What git says about the working tree at the start of a run."""

    available: bool = False  # a git repository with git installed
    root: str | None = None  # the repository's top-level folder
    commit: str | None = None  # None before the first commit
    branch: str | None = None  # None on a detached HEAD
    detached: bool = False
    remote: str | None = None  # `origin` (or the first remote), credentials stripped
    remotes: dict[str, str] = field(default_factory=dict)
    dirty: bool = False  # tracked files changed (staged or not); untracked files do not count
    changed: list[str] = field(default_factory=list)  # "M path", "A path", "D path", "R new <- old" ...
    untracked: list[str] = field(default_factory=list)
    n_changed: int = 0
    n_untracked: int = 0
    warning: str | None = None

    def summary(self) -> dict[str, Any]:
        """The few fields that go into run.json and, as tags, into every backend."""
        return {"commit": self.commit, "branch": self.branch, "dirty": self.dirty, "remote": self.remote}

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def strip_credentials(url: str) -> str:
    """A remote URL without credentials.

    `https://user:token@host/x.git` and `https://token@host/x.git` become `https://host/x.git` (for
    http(s) a lone user name is often a token, so it goes too); `ssh://git:pw@host/x` keeps the user name and
    loses the password; scp-like `git@host:org/x.git` has no credentials and is kept; secret-looking query
    parameters (`?private_token=...`) are masked.
    """
    url = url.strip()
    if "://" not in url:
        return url  # scp-like syntax or a local path: no place for a password
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 literal needs its brackets back
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
        user = parts.username if parts.scheme not in ("http", "https", "ftp", "ftps") else None
        netloc = f"{user}@{host}" if user else host
        query = parts.query
        if query:
            query = urlencode(
                [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in parse_qsl(query, True)], safe="*"
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # unparsable: drop anything between // and @ to be safe
        return re.sub(r"//[^/@]*@", "//", url)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        env={**os.environ, **_GIT_ENV},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _parse_status(out: bytes, state: GitState) -> None:
    """Parse `git status --porcelain=v2 --branch -z` into commit, branch, changed and untracked files."""
    records = out.split(b"\0")
    i = 0
    changed: list[str] = []
    untracked: list[str] = []
    while i < len(records):
        rec = records[i].decode("utf-8", "surrogateescape")
        i += 1
        if not rec:
            continue
        if rec.startswith("# branch.oid "):
            oid = rec.split(" ", 2)[2]
            state.commit = None if oid == "(initial)" else oid
        elif rec.startswith("# branch.head "):
            head = rec.split(" ", 2)[2]
            state.detached = head == "(detached)"
            state.branch = None if state.detached else head
        elif rec.startswith("1 "):  # ordinary change: 1 XY sub mH mI mW hH hI path
            fields = rec.split(" ", 8)
            changed.append(f"{_code(fields[1])} {fields[8]}")
        elif rec.startswith("2 "):  # rename/copy: 2 XY sub mH mI mW hH hI Xscore path, then the old path
            fields = rec.split(" ", 9)
            old = records[i].decode("utf-8", "surrogateescape") if i < len(records) else "?"
            i += 1
            changed.append(f"{_code(fields[1])} {fields[9]} <- {old}")
        elif rec.startswith("u "):  # unmerged: u XY sub m1 m2 m3 mW h1 h2 h3 path
            changed.append(f"U {rec.split(' ', 10)[10]}")
        elif rec.startswith("? "):
            untracked.append(rec[2:])
    state.n_changed, state.n_untracked = len(changed), len(untracked)
    state.changed, state.untracked = changed[:MAX_LISTED], untracked[:MAX_LISTED]
    state.dirty = bool(changed)


def _code(xy: str) -> str:
    """One letter for a porcelain XY pair (index, worktree): the worktree's change wins, else the index's."""
    return xy[1] if xy[1] != "." else xy[0]


def git_state(root: str | Path) -> GitState:
    """Commit, branch, remote, dirty flag, changed and untracked files of the repository holding `root`."""
    root = Path(root)
    state = GitState()
    if shutil.which("git") is None:
        state.warning = "git is not installed: the code version is not recorded"
        return state
    if not root.is_dir():
        state.warning = f"{root} does not exist: the code version is not recorded"
        return state
    status = _git(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal")
    if status.returncode != 0:
        message = status.stderr.decode(errors="replace").strip().splitlines()
        reason = message[-1] if message else f"git status failed ({status.returncode})"
        if "not a git repository" in reason.lower():
            state.warning = f"{root} is not inside a git repository: the code version is not recorded"
        else:
            state.warning = f"git could not read {root}: {reason}"
        return state
    state.available = True
    _parse_status(status.stdout, state)
    # One more call for the top-level folder and every remote URL.
    info = _git(root, "rev-parse", "--show-toplevel")
    if info.returncode == 0:
        state.root = info.stdout.decode(errors="replace").strip()
    remotes = _git(root, "config", "--get-regexp", r"^remote\..*\.url$")
    for line in remotes.stdout.decode(errors="replace").splitlines():
        key, _, url = line.partition(" ")
        state.remotes[key[len("remote.") : -len(".url")]] = strip_credentials(url)
    if state.remotes:
        state.remote = state.remotes.get("origin", next(iter(state.remotes.values())))
    if state.commit is None:
        state.warning = "the git repository has no commits yet: the code version is only the diff"
    return state


def write_diff(root: str | Path, state: GitState, dest: Path, max_bytes: int | None) -> dict[str, Any]:
    """Write the diff of tracked changes (staged and unstaged, against HEAD) to `dest`, cut at max_bytes.

    Returns {"file", "bytes", "truncated"}; no file is written for a clean tree. Untracked files are not in
    the diff (they are listed in git.json).
    """
    if not (state.available and state.dirty):
        return {"file": None, "bytes": 0, "truncated": False}
    args = ["diff", "--no-color", "--no-ext-diff", "--no-textconv"]
    # Before the first commit there is no HEAD: staged changes against the empty tree, then unstaged ones.
    calls = [[*args, "HEAD"]] if state.commit else [[*args, "--cached"], args]
    limit = None if max_bytes is None or max_bytes < 0 else int(max_bytes)
    chunks: list[bytes] = []
    total, truncated = 0, False
    for call in calls:
        proc = subprocess.Popen(
            ["git", "-C", str(root), *call],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **_GIT_ENV},
        )
        assert proc.stdout is not None
        while True:
            block = proc.stdout.read(1 << 16)
            if not block:
                break
            if limit is not None and total + len(block) > limit:
                chunks.append(block[: limit - total])
                total, truncated = limit, True
                break
            chunks.append(block)
            total += len(block)
        if truncated:
            proc.kill()
        proc.stdout.close()
        proc.wait()
        if truncated:
            break
    data = b"".join(chunks)
    if truncated:
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut >= 0 else b""
        data += (
            f"\n# [{GIT_DIFF_FILE} TRUNCATED: cut at git.diff_max_bytes={limit} bytes; "
            "the full diff is larger. "
            f"Raise git.diff_max_bytes to keep more.]\n"
        ).encode()
    dest.write_bytes(data)
    return {"file": dest.name, "bytes": len(data), "truncated": truncated}


def git_head(root: str | Path) -> tuple[str | None, bool]:
    """(HEAD commit, dirty) of the work tree holding `root`: two quick git calls, untracked files ignored.
    (None, False) where there is no commit to name (no git, not a repository, no commits yet)."""
    root = Path(root)
    if shutil.which("git") is None or not root.is_dir():
        return None, False
    try:
        head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
        if head.returncode != 0:
            return None, False
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
    except OSError:
        return None, False
    commit = head.stdout.decode(errors="replace").strip() or None
    return commit, bool(status.stdout.strip())


def require_clean(root: str | Path) -> GitState:
    """Raise UserError (one line, naming the changed files) unless `root` is in a clean git work tree."""
    state = git_state(root)
    if not state.available:
        raise UserError(f"git.require_clean=true, but {state.warning}; set git.require_clean=false to run")
    if state.dirty:
        shown = [c.split(" ", 1)[1] for c in state.changed[:5]]
        more = f" (+{state.n_changed - len(shown)} more)" if state.n_changed > len(shown) else ""
        raise UserError(
            f"git.require_clean=true and the working tree {state.root or root} has uncommitted changes in "
            f"{', '.join(shown)}{more}: commit or stash them, or set git.require_clean=false"
        )
    return state
