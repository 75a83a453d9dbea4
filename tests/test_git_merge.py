"""Two clones log runs on two branches, commit, and merge: no conflict, the union."""

from pathlib import Path

import pytest

import mltrail
from tests.factories import git, quiet_run


def log_runs(repo: Path, tag: str, count: int) -> list[str]:
    store = mltrail.Store(repo / "runs")
    ids = []
    for i in range(count):
        with quiet_run(store, "shared", experiment_description=f"from {tag}") as run:
            run.log_params({"who": tag, "i": i}, group="meta")
            run.log_metric("score", float(i))
        ids.append(run.id)
    with quiet_run(store, f"only-{tag}") as run:
        run.log_metric("x", 1.0)
    ids.append(run.id)
    store.compact()  # derived tables exist on both sides but are never committed
    return ids


@pytest.mark.slow
def test_two_clones_merge_without_conflict_and_show_the_union(tmp_path):
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    base_ids = log_runs(origin, "base", 1)
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "base runs")
    a, b = tmp_path / "a", tmp_path / "b"
    git(tmp_path, "clone", "-q", str(origin), str(a))
    git(tmp_path, "clone", "-q", str(origin), str(b))
    ids_a = log_runs(a, "alice", 3)
    ids_b = log_runs(b, "bob", 3)
    for clone, who in ((a, "alice"), (b, "bob")):
        git(clone, "add", "-A")
        git(clone, "commit", "-q", "-m", f"runs by {who}")
        assert ".cache" not in git(clone, "show", "--stat", "HEAD")
    git(b, "push", "-q", "origin", "main:bob")
    git(a, "fetch", "-q", "origin")
    git(a, "merge", "--no-edit", "-q", "origin/bob")  # fails the test on any conflict
    assert git(a, "status", "--porcelain") == ""
    store = mltrail.Store(a / "runs")
    runs = store.search_runs()
    assert set(runs["run_id"]) == set(base_ids + ids_a + ids_b)
    shared = store.search_runs(experiment="shared", order_by=["attributes.run_seq"])
    assert len(shared) == 7
    assert len(set(shared["run_name"])) == 7  # numbers decided at read time, all distinct
    # the same numbering on the other side of the merge: deterministic
    git(b, "pull", "-q", "--no-rebase", "origin", "main")
    git(b, "fetch", "-q", str(a), "main")
    git(b, "merge", "--no-edit", "-q", "FETCH_HEAD")
    other = mltrail.Store(b / "runs").search_runs(experiment="shared")
    mine = dict(zip(shared["run_id"], shared["run_name"]))
    assert dict(zip(other["run_id"], other["run_name"])) == mine
    assert sorted(store.experiments()["experiment"]) == ["only-alice", "only-base", "only-bob", "shared"]
