"""The shell script that reruns a run: its commit, its uncommitted diff, its command."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store


def reproduce_script(store: Store, run: str) -> str:
    """A script that checks out the run's commit, applies its diff and reruns its command."""
    info = store.get_run(run)["run"]
    lines = [f"# reproduce run {info['run_name']} ({info['run_id']}) of experiment "
             f"{info['experiment']}"]
    if not info.get("git_commit"):
        lines.append("# no git commit was recorded for this run")
    else:
        lines.append(f"git checkout {info['git_commit']}")
        if info.get("git_diff_sha256"):
            if info.get("git_diff_truncated"):
                lines.append("# WARNING: the diff was larger than MLTRAIL_DIFF_MAX_BYTES and was cut")
            patch = store.blob(info["git_diff_sha256"]).decode("utf-8", "replace")
            lines += ["git apply <<'MLTRAIL_DIFF'", patch.rstrip("\n"), "MLTRAIL_DIFF"]
    if info.get("cwd") and info.get("git_commit") and not info["cwd"].startswith("/"):
        lines.append(f'cd "$(git rev-parse --show-toplevel)"/{shlex.quote(info["cwd"])}')
    elif info.get("cwd"):
        lines.append(f"cd {shlex.quote(info['cwd'])}")
    lines.append(info["command"] if info.get("command") else "# no command was recorded for this run")
    return "\n".join(lines)
