"""`mltrail reproduce` with real git and real processes: the rerun happens in a worktree
at the run's commit with its uncommitted diff, logs into today's store, and leaves the
user's checkout alone (it used to lose the diff when run from a subfolder, and roll the
committed store back with the checkout)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mltrail
from tests.factories import git

pytestmark = pytest.mark.slow  # real git, real processes

TRAIN = """\
import mltrail
store = mltrail.Store("../runs")       # the store committed beside the code
with store.start_run("study", name="{name}") as run:
    run.log_param("lr", {lr})
"""


def run_in(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    venv_bin = str(Path(sys.executable).parent)
    full = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    done = subprocess.run(list(args), cwd=folder, env=full, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done


def test_reproduce_reruns_the_commit_with_its_diff_into_todays_store(tmp_path):
    repo = tmp_path / "repo"
    src = repo / "src"
    src.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (src / "train.py").write_text(TRAIN.format(name="first", lr=0.1))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "train at lr 0.1")
    (src / "train.py").write_text(TRAIN.format(name="first", lr=0.5))  # uncommitted: the run's diff
    run_in(src, "python", "train.py")  # from a subfolder
    git(repo, "checkout", "--", "src/train.py")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the store, with run 'first'")
    (src / "train.py").write_text(TRAIN.format(name="later", lr=0.9))
    git(repo, "commit", "-q", "-am", "moved on")
    (src / "notes.txt").write_text("uncommitted work of today\n")
    head, status = git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain")

    store = mltrail.Store(repo / "runs")
    original = store.get_run("first")
    script = tmp_path / "again.sh"
    script.write_text(run_in(src, "mltrail", "reproduce", "first", "--store", str(store.root)).stdout)
    run_in(src, "bash", str(script))

    runs = mltrail.Store(repo / "runs").search_runs("study")
    assert sorted(runs["run_name"]) == ["first", "first_2"]  # today's store, the original kept
    rerun = runs[runs["run_name"] == "first_2"].iloc[0]
    assert git(repo, "rev-parse", "HEAD") == head  # the checkout is untouched: same commit,
    assert (src / "train.py").read_text() == TRAIN.format(name="later", lr=0.9)  # same files,
    new_files = set(git(repo, "status", "--porcelain").splitlines()) - set(status.splitlines())
    assert new_files == {f"?? runs/experiments/study/runs/{rerun['run_id']}.jsonl"}  # one new run
    assert rerun["params.lr"] == "0.5"  # the diff was applied
    assert rerun["run_id"] != original["run"]["run_id"]


def test_a_missing_diff_blob_is_said_in_the_script(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print(1)\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "x")
    (repo / "train.py").write_text("print(2)\n")
    monkeypatch.chdir(repo)
    store = mltrail.Store(tmp_path / "store")
    with store.start_run("e", name="r", log_packages=False):
        pass
    sha = store.get_run("r")["run"]["git_diff_sha256"]
    store.layout.blob_path(sha).unlink()
    script = store.reproduce_script("r")
    assert "is not in this store: the rerun uses the commit alone" in script and "git -C \"$work\" apply" not in script
