"""The shell script that reruns a run: its commit, its uncommitted diff, its command.

The rerun happens in a new git worktree at the run's commit, so the user's checkout
(its branch, its uncommitted work, the committed store in it) is never touched. The
diff is applied at the worktree's root (``git diff HEAD`` paths are relative to the
repository root, so applying it from a subfolder would silently skip files). The rerun
logs into the store the script was made from: ``MLTRAIL_DIR`` points at it, and when the
store lives inside the repository, the worktree's copy of that folder is replaced by a
link to it (a script that opens ``mltrail.Store("runs")`` finds today's store, not the
one of the run's commit).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError

if TYPE_CHECKING:
    from .tracker import Tracker


def reproduce_script(info: dict[str, Any], diff: bytes | None, store_root: Path,
                     missing_diff: bool = False) -> str:
    """A bash script rerunning the run described by ``info`` (a ``get_run(...)["run"]``
    row), with its uncommitted ``diff``, logging into ``store_root``."""
    lines = ["#!/usr/bin/env bash",
             f"# reproduce run {info['run_name']} ({info['run_id']}) of experiment {info['experiment']}",
             "set -euo pipefail"]
    store = shlex.quote(str(store_root.resolve()))
    if not info.get("git_commit"):
        lines.append("# no git commit was recorded for this run: it reruns in the current folder")
        if info.get("cwd") and str(info["cwd"]).startswith("/"):
            lines.append(f"cd {shlex.quote(info['cwd'])}")
    else:
        commit = shlex.quote(info["git_commit"])
        lines += [
            'repo="$(git rev-parse --show-toplevel)"',
            'work="$(mktemp -d "${TMPDIR:-/tmp}/mltrail-reproduce-XXXXXX")"',
            f'git -C "$repo" worktree add --quiet --detach "$work" {commit}',
            'echo "mltrail: reproducing in $work (remove it with: git worktree remove --force $work)" >&2',
        ]
        if missing_diff:
            lines.append(f"# WARNING: the run's uncommitted diff (blob {info['git_diff_sha256'][:12]}) is not in "
                         "this store: the rerun uses the commit alone")
        if diff:
            if info.get("git_diff_truncated"):
                lines.append("# WARNING: the diff was larger than MLTRAIL_DIFF_MAX_BYTES and was cut")
            patch = diff.decode("utf-8", "replace").rstrip("\n")
            lines += ["git -C \"$work\" apply --whitespace=nowarn <<'MLTRAIL_DIFF'", patch, "MLTRAIL_DIFF"]
        repo_path = info.get("git_repo_path")
        if repo_path:  # the store is in the repository: the rerun writes to today's, not the old copy
            inside = shlex.quote(repo_path)
            lines += [f'rm -rf "$work"/{inside}', f'mkdir -p "$(dirname "$work"/{inside})"',
                      f'ln -s {store} "$work"/{inside}']
        cwd = info.get("cwd")
        if cwd and not str(cwd).startswith("/"):
            lines.append(f'cd "$work"/{shlex.quote(cwd)}')
        else:
            lines.append('cd "$work"')
    lines.append(f"export MLTRAIL_DIR={store}")
    lines.append(info["command"] if info.get("command") else "# no command was recorded for this run")
    return "\n".join(lines) + "\n"


def script_for(tracker: Tracker, run: str) -> str:
    """:func:`reproduce_script` for a run (ID, ID prefix or unique name)."""
    info = tracker.get_run(run)["run"]
    diff, missing = None, False
    if info.get("git_diff_sha256"):
        try:
            diff = tracker.blobs.read(info["git_diff_sha256"])
        except NotFoundError:
            missing = True
    return reproduce_script(info, diff, tracker.root, missing)
