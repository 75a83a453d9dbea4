"""Two clones each register a version of one model on their own branch and merge: no
conflict, both versions, numbered the same way in every clone."""

import pickle

import pytest

import mltrail
from tests.factories import git, quiet_run


def log_model(store: mltrail.Store, tag: str, tmp) -> str:
    path = tmp / f"model-{tag}.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3], "by": tag}))
    with quiet_run(store, "training") as run:
        run.log_params({"who": tag})
        run.log_metric("auc", 0.8)
        run.log_artifact(path, name="model.pkl")
    return run.id


@pytest.mark.slow
def test_versions_registered_on_two_branches_merge(tmp_path):
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    store = mltrail.Store(origin / "runs")
    store.registry.create("ranker")
    store.registry.register("ranker", log_model(store, "base", tmp_path))
    store.registry.set_alias("ranker", "production", 1)
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "ranker v1")
    a, b = tmp_path / "a", tmp_path / "b"
    git(tmp_path, "clone", "-q", str(origin), str(a))
    git(tmp_path, "clone", "-q", str(origin), str(b))
    registered = {}
    for clone, who in ((a, "alice"), (b, "bob")):
        clone_store = mltrail.Store(clone / "runs")
        version = clone_store.registry.register("ranker", log_model(clone_store, who, tmp_path))
        assert version.number == 2  # each branch sees its own version 2
        clone_store.registry.set_alias("ranker", f"{who}-pick", 2, reason=f"{who} likes it")
        registered[who] = version.id
        git(clone, "add", "-A")
        git(clone, "commit", "-q", "-m", f"ranker version by {who}")
    git(b, "push", "-q", "origin", "main:bob")
    git(a, "fetch", "-q", "origin")
    git(a, "merge", "--no-edit", "-q", "origin/bob")  # fails the test on any conflict
    assert git(a, "status", "--porcelain") == ""
    merged = mltrail.Store(a / "runs").registry
    table = merged.versions("ranker")
    assert list(table["version"]) == [1, 2, 3] and set(registered.values()) <= set(table["id"])
    numbers = dict(zip(table["id"], table["version"]))
    # aliases name versions by ID: each still points at the version its branch chose
    assert merged.get("ranker", alias="alice-pick").id == registered["alice"]
    assert merged.get("ranker", alias="bob-pick").id == registered["bob"]
    assert merged.get("ranker", alias="production").number == 1
    git(b, "pull", "-q", "--no-rebase", str(a), "main")
    other = mltrail.Store(b / "runs").registry.versions("ranker")
    assert dict(zip(other["id"], other["version"])) == numbers  # the same numbers everywhere
