"""Searching while `git checkout` swaps the store's files back and forth never raises
(compaction used to raise FileNotFoundError when a file went between its stat and its
open: 13 of ~280 searches); each search sees one branch's runs or the other's."""

import threading
import warnings

import pytest

import mltrail
from tests.factories import git, quiet_run

pytestmark = pytest.mark.slow  # real git


def test_searches_during_checkouts_never_raise(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    store = mltrail.Store(repo / "runs")
    for i in range(20):
        with quiet_run(store, "base", name=f"base-{i}") as run:
            run.log_metric("x", float(i))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "other")
    for i in range(20):
        with quiet_run(store, "other", name=f"other-{i}") as run:
            run.log_metric("x", float(i))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "other")

    stop = threading.Event()

    def checkouts():
        while not stop.is_set():
            for branch in ("main", "other"):
                git(repo, "checkout", "-q", branch)

    worker = threading.Thread(target=checkouts)
    worker.start()
    reader = mltrail.Store(repo / "runs")  # one long-lived reader, as the dashboard is
    counts = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mltrail.SkippedLinesWarning)  # a file caught mid-write is torn
            for _ in range(150):
                counts.append(len(reader.search_runs()))  # mid-checkout: any state between, never an error
    finally:
        stop.set()
        worker.join(timeout=60)
    assert len(counts) == 150 and all(20 <= c <= 40 for c in counts)
    git(repo, "checkout", "-q", "main")
    assert sorted(reader.search_runs()["experiment"].unique()) == ["base"]  # settled: exactly the branch
    git(repo, "checkout", "-q", "other")
    assert len(reader.search_runs()) == 40
