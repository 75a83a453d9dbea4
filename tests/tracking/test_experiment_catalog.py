"""Experiments as MLflow knows them (an ID, tags, a lifecycle), kept as event files beside
the runs: stable IDs across clones, created before a run, merge-safe, unreadable files skipped."""

import shutil
import warnings

import pytest

import mltrail
from mltrail.errors import AlreadyExistsError, NotFoundError, SkippedLinesWarning
from mltrail.tracking.experiments import derived_id
from tests.factories import quiet_run


def test_an_experiment_exists_before_its_first_run_with_its_tags_and_a_stable_id(tmp_path):
    store = mltrail.Store(tmp_path / "a")
    record = store.tracking.catalog.create("churn", tags={"owner": "ana"})
    assert record.experiment_id == derived_id("churn") and record.tags == {"owner": "ana"}
    other = mltrail.Store(tmp_path / "b")  # another machine: the same name has the same ID
    with quiet_run(other, "churn"):
        pass
    assert other.tracking.catalog.by_name("churn").experiment_id == record.experiment_id
    assert derived_id("Default") == "0" and derived_id("churn").isdigit() and len(derived_id("churn")) <= 19
    with quiet_run(store, "churn"):
        pass
    assert list(store.tracking.catalog.records()) == ["churn"]  # one experiment, its run in it


def test_tags_and_lifecycle_replay_in_order_and_a_deleted_name_stays_taken(store):
    catalog = store.tracking.catalog
    catalog.create("churn")
    catalog.set_tag("churn", "stage", "dev")
    catalog.set_tag("churn", "stage", "prod")
    catalog.set_tag("churn", "owner", "ana")
    catalog.delete_tag("churn", "owner")
    catalog.delete("churn")
    assert catalog.by_name("churn").lifecycle_stage == "deleted"
    with pytest.raises(AlreadyExistsError, match="deleted: restore it"):
        catalog.create("churn")
    catalog.restore("churn")
    got = catalog.by_name("churn")
    assert got.lifecycle_stage == "active" and got.tags == {"stage": "prod"}
    with pytest.raises(NotFoundError):
        catalog.delete_tag("churn", "owner")
    with pytest.raises(NotFoundError):
        catalog.by_id("123")


def test_tagging_an_experiment_known_only_by_its_runs_writes_its_creation_first(store):
    with quiet_run(store, "churn"):
        pass
    store.tracking.catalog.set_tag("churn", "k", "v")
    files = sorted((store.layout.experiment_meta("churn")).glob("*.jsonl"))
    assert [f.read_text().count('"experiment_created"') for f in files] == [1, 0]
    assert store.tracking.catalog.by_name("churn").tags == {"k": "v"}


def test_two_clones_that_created_one_experiment_merge_into_one(tmp_path):
    first, second = mltrail.Store(tmp_path / "one"), mltrail.Store(tmp_path / "two")
    first.tracking.catalog.create("churn", tags={"from": "one"})
    second.tracking.catalog.create("churn", tags={"from": "two"})
    second.tracking.catalog.set_tag("churn", "later", "yes")
    for path in second.layout.experiment_meta("churn").glob("*.jsonl"):  # git's union of the files
        shutil.copy(path, first.layout.experiment_meta("churn") / path.name)
    merged = mltrail.Store(tmp_path / "one").tracking.catalog.by_name("churn")
    assert merged.experiment_id == derived_id("churn")
    assert merged.tags == {"from": "one", "later": "yes"}  # the earliest creation, then every later event


def test_an_unreadable_event_file_is_skipped_with_a_warning_naming_it(store):
    store.tracking.catalog.create("churn", tags={"a": "1"})
    bad = store.layout.experiment_meta("churn") / "01ZZZZZZZZZZZZZZZZZZZZZZZZ.jsonl"
    bad.write_text('{"type": "experiment_tag_set", "oops": 1}\n')
    fresh = mltrail.Store(store.root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fresh.tracking.catalog.by_name("churn").tags == {"a": "1"}
    assert any(issubclass(w.category, SkippedLinesWarning) and bad.name in str(w.message) for w in caught)
