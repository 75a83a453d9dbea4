"""What a run records about where it came from: git state and environment.

Each capture is cheap to repeat: a loop starting many runs shares one git snapshot
(four git processes cost ~30 ms a run) while the repository's HEAD, index, current ref,
packed refs and config are the files they were (a commit, checkout, ``git add`` or a new
remote is seen by the next run at once); only edits to tracked files that are not staged
may show in a run's diff up to a second late (seeing them means running ``git diff``).
The package list is read once per process. Large texts (the diff, the package list) go into content-addressed blobs,
so a thousand runs from one commit store the diff once.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from ..config import current_user

_GIT_TTL_SECONDS = 1.0
# directory -> (when read, the git files' identities then, the snapshot)
_git_cache: dict[str, tuple[float, tuple[object, ...], GitSnapshot | None]] = {}


@dataclass(frozen=True)
class GitSnapshot:
    root: str
    commit: str | None
    branch: str | None
    remote: str | None
    diff: bytes  # uncommitted changes to tracked files, against HEAD


def _git(args: list[str], cwd: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=30, check=False)


def git_snapshot(directory: Path) -> GitSnapshot | None:
    """The git state of the repository holding ``directory``, or None outside git."""
    key = str(directory)
    now = time.monotonic()
    state = _git_files_state(directory)
    cached = _git_cache.get(key)
    if cached is not None and now - cached[0] < _GIT_TTL_SECONDS and cached[1] == state:
        return cached[2]
    snapshot = _read_git(key)
    _git_cache[key] = (now, state, snapshot)
    return snapshot


def _git_files_state(directory: Path) -> tuple[object, ...]:
    """The identity (inode, size, mtime) of the files git rewrites when HEAD, the branch,
    the index or the remote change, for the repository ``directory`` is in; ``()``
    outside one. A few ``stat`` calls: what lets a snapshot be shared without going stale."""
    for folder in (directory, *directory.parents):
        dot_git = folder / ".git"
        try:
            info = os.stat(dot_git)
        except OSError:
            continue
        git_dir = dot_git
        if not dot_git.is_dir():  # a worktree or submodule: "gitdir: <path>"
            text = dot_git.read_text(errors="replace").strip()
            git_dir = folder / text.removeprefix("gitdir:").strip()
        common = git_dir
        if (git_dir / "commondir").is_file():  # a linked worktree keeps refs in the main .git
            common = git_dir / (git_dir / "commondir").read_text(errors="replace").strip()
        try:
            head = (git_dir / "HEAD").read_bytes()
        except OSError:
            head = b""
        ref = head.removeprefix(b"ref:").strip().decode(errors="replace") if head.startswith(b"ref:") else ""
        files = [git_dir / "index", common / "packed-refs", common / "config", *([common / ref] if ref else [])]
        return (str(dot_git), info.st_ino, head, *(_identity(path) for path in files))
    return ()


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _read_git(cwd: str) -> GitSnapshot | None:
    try:
        top = _git(["rev-parse", "--show-toplevel"], cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git installed, or it hung: a run must still start
    if top.returncode != 0:
        return None
    root = top.stdout.decode().strip()
    head = _git(["rev-parse", "HEAD", "--abbrev-ref", "HEAD"], root)
    commit = branch = None
    if head.returncode == 0:
        lines = head.stdout.decode().split()
        commit, branch = lines[0], (lines[1] if len(lines) > 1 and lines[1] != "HEAD" else None)
    remote = _git(["config", "--get", "remote.origin.url"], root).stdout.decode().strip() or None
    diff = _git(["diff", "HEAD", "--no-color", "--no-ext-diff"], root).stdout if commit else b""
    return GitSnapshot(root, commit, branch, remote, diff)


def find_repository() -> GitSnapshot | None:
    """The git state of the working directory's repository, else of the script's.

    The working directory comes first: under pytest, Jupyter or ``python -m`` the
    script is a launcher inside site-packages, not the user's code.
    """
    snapshot = git_snapshot(Path.cwd())
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if snapshot is None and script is not None and script.is_file():
        snapshot = git_snapshot(script.resolve().parent)
    return snapshot


@lru_cache(maxsize=1)
def installed_packages() -> tuple[tuple[str, str], ...]:
    """Installed distributions as sorted (name, version) pairs, read once per process."""
    found = {}
    for dist in metadata.distributions():
        # (typeshed gives PackageMetadata its get() from Python 3.12 on; 3.11's metadata, an
        # email Message, has it too, and unlike ["Name"] it never warns on a missing name)
        name = dist.metadata.get("Name")  # type: ignore[attr-defined]
        if name:
            found[name.lower()] = dist.version
    return tuple(sorted(found.items()))


def system_info() -> dict[str, str | None]:
    """The interpreter, platform and host (read once per process) and who acts now
    (``$MLTRAIL_USER`` may change between runs of one process)."""
    return {**_machine(), "user": current_user()}


@lru_cache(maxsize=1)
def _machine() -> dict[str, str | None]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
    }


def command_line() -> tuple[list[str], str | None, str]:
    """The command that started this process, its script, and the working directory."""
    argv = [sys.executable.rsplit(os.sep, 1)[-1], *sys.argv] if sys.argv and sys.argv[0] else []
    script = sys.argv[0] if sys.argv and sys.argv[0] and Path(sys.argv[0]).is_file() else None
    return argv, script, os.getcwd()
