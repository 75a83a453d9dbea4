"""One-event-per-file folders (A/B lifecycles, the registry, feature definitions) with a
file that cannot be read: it is skipped with a warning, read again once it changes, and
never hides anything else (issue 13, items 2, 3 and 4)."""

import pickle

import pytest

import mltrail
from mltrail.compaction.reader import load_new_bytes
from mltrail.storage.eventfiles import EventFolder
from mltrail.storage.registry_events import REGISTRY_EVENT_ADAPTER
from tests.factories import ab_spec, quiet_run


@pytest.fixture
def registered(store, tmp_path):
    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"w": 1}))
    with quiet_run(store, "e", name="r") as run:
        run.log_artifact(str(tmp_path / "m.pkl"))
    store.registry.create("churn")
    store.registry.register("churn", "r", "m.pkl")
    store.registry.register("churn", "r", "m.pkl")
    store.registry.set_alias("churn", "production", 2)
    store.registry.create("other")
    return store


def version_file(store, number):
    files = sorted(f for f in (store.root / "registry" / "churn").glob("*.jsonl")
                   if b"version_registered" in f.read_bytes())
    return files[number - 1]


def test_a_half_written_file_is_read_again_once_it_is_whole(registered):
    path = version_file(registered, 2)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # a `git pull` caught writing it in place
    folder = EventFolder(path.parent, REGISTRY_EVENT_ADAPTER, "registry")
    with pytest.warns(mltrail.SkippedLinesWarning, match="unreadable registry event"):
        assert len(folder.events()) == 3  # created, v1 and the alias: v2 is half written
    path.write_bytes(whole)  # the pull finished
    assert len(folder.events()) == 4  # the long-lived reader sees what a fresh one sees


def test_an_unreadable_version_file_leaves_the_model_listed(registered):
    version_file(registered, 2).write_bytes(b'{"v":1,"type":"version_registered"')  # torn
    with pytest.warns(mltrail.SkippedLinesWarning):
        models = mltrail.Store(registered.root).registry.list().set_index("model")
    assert models.loc["churn", "versions"] == 1 and models.loc["churn", "aliases"] == ""  # its alias went too
    assert "other" in models.index


def test_a_model_without_its_creation_is_left_out_not_fatal(registered):
    created = next(f for f in (registered.root / "registry" / "churn").glob("*.jsonl")
                   if b"model_created" in f.read_bytes())
    created.write_bytes(b"garbage\n")
    with pytest.warns(mltrail.SkippedLinesWarning):
        models = mltrail.Store(registered.root).registry.list()
    assert list(models["model"]) == ["other"]


def test_an_unreadable_experiment_never_hides_the_others(store):
    store.ab.create(ab_spec(key="good"))
    bad = store.ab.create(ab_spec(key="bad"))
    (created,) = (store.root / "ab" / bad.key / "lifecycle").glob("*.jsonl")
    created.write_bytes(b"{not json")
    with pytest.warns(mltrail.SkippedLinesWarning):
        assert list(mltrail.Store(store.root).ab.list()["key"]) == ["good"]


def test_a_file_removed_between_listing_and_reading_is_passed_over(store, tmp_path):
    present, gone = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    present.write_bytes(b'{"x": 1}\n')
    files = {}
    loaded = load_new_bytes([(gone, "b.jsonl", None, 20), (present, "a.jsonl", None, 9)], files)
    [span] = loaded.spans
    assert list(files) == ["a.jsonl"] and bytes(loaded.buffer[span.start:span.end]) == b'{"x": 1}\n'
