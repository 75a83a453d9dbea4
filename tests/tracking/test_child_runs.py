"""Child runs (issue 17): a sweep's trials and cross-validation folds hang under a parent,
by ``start_run(parent=...)`` or by starting them inside the parent's ``with`` block; the
link is a ``parent_run_id`` column in search_runs, filterable."""

import threading

import pytest

import mltrail
from tests.factories import quiet_run


def test_runs_started_inside_a_with_block_are_its_children(store):
    with quiet_run(store, "sweep", name="sweep") as parent:
        for fold in range(3):
            with quiet_run(store, "sweep", name=f"fold-{fold}") as child:
                child.log_metric("auc", 0.8 + fold / 100)
                with quiet_run(store, "sweep", name=f"fold-{fold}-inner"):
                    pass
    with quiet_run(store, "sweep", name="after"):
        pass  # outside every block: no parent
    runs = store.search_runs(experiment="sweep").set_index("run_name")
    assert {runs.loc[f"fold-{i}", "parent_run_id"] for i in range(3)} == {parent.id}
    assert runs.loc["fold-1-inner", "parent_run_id"] == runs.loc["fold-1", "run_id"]  # the innermost encloses
    assert runs["parent_run_id"].isna()[["sweep", "after"]].all()
    children = store.search_runs(filter=f"attributes.parent_run_id = '{parent.id}'")
    assert sorted(children["run_name"]) == ["fold-0", "fold-1", "fold-2"]
    assert store.get_run("fold-0")["tags"]["mltrail.parent_run_id"] == parent.id


def test_a_parent_named_explicitly_and_mistakes(store):
    with quiet_run(store, "grid", name="grid-search"):
        pass
    with quiet_run(store, "grid", name="trial", parent="grid-search") as trial:
        pass
    assert store.search_runs(filter="attributes.parent_run_id != ''")["run_name"].tolist() == ["trial"]
    assert store.get_run(trial.id)["run"]["run_id"] == trial.id
    with pytest.raises(mltrail.NotFoundError, match="no run 'nope'"):
        quiet_run(store, "grid", parent="nope")
    other = mltrail.Store(store.root.parent / "other")
    with quiet_run(store, "grid", name="outer"):
        with quiet_run(other, "x", name="elsewhere") as elsewhere:
            pass  # a block of another store's run is not a parent
    assert other.search_runs()["parent_run_id"].isna().all() and elsewhere.status == "FINISHED"


def test_another_threads_block_is_not_a_parent(store):
    names = {}

    def train():
        with quiet_run(store, "threads", name="worker") as run:
            names["worker"] = run.id

    with quiet_run(store, "threads", name="main"):
        thread = threading.Thread(target=train)
        thread.start()
        thread.join()
    runs = store.search_runs(experiment="threads").set_index("run_name")
    assert runs["parent_run_id"].isna().all()
