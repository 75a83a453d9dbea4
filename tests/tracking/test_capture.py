"""What a run records of its git state: shared between runs started close together, never
stale past a commit, a checkout or a staged change."""

import subprocess

from mltrail.tracking import capture
from tests.factories import git


def _head(repo):
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()


def test_a_commit_or_checkout_is_seen_by_the_next_snapshot_at_once(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print(1)\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    first = capture.git_snapshot(repo)
    assert first is not None and first.commit == _head(repo) and first.branch == "main"
    # well within the second a snapshot may be shared: a cache keyed by time alone gave `first`
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    assert capture.git_snapshot(repo).commit == _head(repo) != first.commit
    git(repo, "checkout", "-q", "-b", "other")
    assert capture.git_snapshot(repo).branch == "other"
    (repo / "train.py").write_text("print(2)\n")
    git(repo, "add", "train.py")  # staged: the index changed
    assert b"print(2)" in capture.git_snapshot(repo).diff


def test_a_folder_becoming_a_repository_is_seen_at_once(tmp_path):
    assert capture.git_snapshot(tmp_path) is None
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "first")
    assert capture.git_snapshot(tmp_path).commit == _head(tmp_path)


def test_the_user_a_run_records_is_who_acts_now(monkeypatch):
    monkeypatch.setenv("MLTRAIL_USER", "ana")
    assert capture.system_info()["user"] == "ana"
    monkeypatch.setenv("MLTRAIL_USER", "bo")  # the same process: a cache of the whole record kept "ana"
    assert capture.system_info()["user"] == "bo"
