"""Curating runs: rename, notes, tags, delete, restore and gc, as edit files that git
merges and compaction folds the same way whatever order it reads them in."""

import shutil
import time

import orjson
import pytest

import mltrail
from mltrail.errors import InvalidInputError, NotFoundError, WrongStateError
from mltrail.storage.run_edits import NAME_TAG
from tests.factories import git, quiet_run


def ended_run(store, experiment="exp", **kwargs):
    with quiet_run(store, experiment, **kwargs) as run:
        run.log_metric("score", 0.5)
    return run


def edit_files(store):
    return sorted(store.root.glob("experiments/*/edits/*.jsonl"))


def tables(store):
    """Every derived table's rows, for comparing an incremental compaction to a rebuild."""
    from mltrail.compaction.manifest import load_manifest
    from mltrail.query.tables import read_table
    store.compact()
    manifest = load_manifest(store.layout.tables)
    return {name: read_table(store.layout.tables, name, manifest).to_pylist()
            for name in manifest.tables if name not in ("metrics", "metric_buckets")}  # (rows follow the parts)


@pytest.mark.slow
def test_rename_notes_and_tags_after_the_run_show_everywhere_with_who_did_it(store):
    run = ended_run(store, name="first", tags={"stage": "dev"})
    assert store.set_run_name(run.id[:8], "baseline", by="ana") == run.id
    store.set_run_notes("baseline", "## Why\nthe **first** try", by="ana")
    store.set_tag(run.id, "stage", "review", by="bo")
    store.set_tag(run.id, "reviewed", True, by="bo")
    row = store.search_runs().iloc[0]
    assert (row["run_name"], row["tags.stage"], row["tags.reviewed"]) == ("baseline", "review", "True")
    info = store.get_run("baseline")
    assert info["run"]["description"] == "## Why\nthe **first** try"
    assert info["tags"] == {"stage": "review", "reviewed": "True"}  # name and notes are not shown as tags
    edits = info["edits"]
    assert edits["by"].tolist() == ["ana", "ana", "bo", "bo"]
    assert edits["key"].tolist() == [NAME_TAG, "mltrail.notes", "stage", "reviewed"]
    store.delete_tag(run.id, "stage", by="bo")
    assert "tags.stage" not in store.search_runs().columns or store.search_runs()["tags.stage"].isna().all()
    assert len(edit_files(store)) == 5
    # nothing was rewritten: the run's own file is as it ended
    assert [line for line in run.path.read_bytes().splitlines() if b"baseline" in line] == []


def test_a_run_renames_itself_and_sets_notes_while_it_runs(store):
    with quiet_run(store, "exp", name="draft") as run:
        run.set_name("final")
        run.set_notes("went well")
        run.log_metric("score", 1.0)
        with pytest.raises(InvalidInputError, match="run name"):
            run.set_name("")
    info = store.get_run("final")["run"]
    assert info["run_id"] == run.id and info["description"] == "went well"


@pytest.mark.slow
def test_an_edit_wins_over_what_the_run_logs_later_and_a_rebuild_agrees(store):
    run = ended_run(store, tags={"k": "own"})
    store.set_tag(run.id, "k", "edited")
    store.set_run_name(run.id, "chosen")
    resumed = store.start_run(run_id=run.id)
    resumed.set_tag("k", "own again")
    resumed.set_name("own name")
    resumed.end()
    incremental = tables(store)
    assert store.search_runs().iloc[0][["run_name", "tags.k"]].tolist() == ["chosen", "edited"]
    store.compact(rebuild=True)
    assert tables(store) == incremental


def test_edits_merged_in_late_fold_by_time_not_by_when_they_were_read(store):
    """Branch B renamed the run before branch A did; A's rename is read first, B's
    arrives with a merge: A's (the later) still wins, as a rebuild says."""
    run = ended_run(store)
    store.set_run_name(run.id, "older")
    older = edit_files(store)[0]
    parked = store.root / "parked.jsonl"
    shutil.move(older, parked)
    time.sleep(0.01)
    store.set_run_name(run.id, "newer")
    assert store.search_runs().iloc[0]["run_name"] == "newer"
    shutil.move(parked, older)  # the merge brings the older edit
    assert store.search_runs().iloc[0]["run_name"] == "newer"
    store.compact(rebuild=True)
    assert store.search_runs().iloc[0]["run_name"] == "newer"


def test_an_edit_whose_run_is_not_there_yet_makes_no_phantom_run(store):
    run = ended_run(store)
    store.set_run_name(run.id, "later")
    parked = store.root / "parked.jsonl"
    shutil.move(run.path, parked)
    store.compact(rebuild=True)
    assert store.search_runs(view="all").empty
    shutil.move(parked, run.path)
    assert store.search_runs().iloc[0]["run_name"] == "later"


@pytest.mark.slow
def test_delete_hides_a_run_everywhere_and_restore_brings_it_back(store):
    kept, gone = ended_run(store), ended_run(store)
    other = ended_run(store, "alone")
    store.delete_run(gone.id, by="ana")
    store.delete_run(other.id)
    assert store.search_runs()["run_id"].tolist() == [kept.id]
    deleted = store.search_runs(view="deleted")
    assert sorted(deleted["run_id"]) == sorted([gone.id, other.id]) and deleted["deleted"].all()
    assert len(store.search_runs(view="all")) == 3
    experiments = store.experiments()
    assert experiments["experiment"].tolist() == ["exp"] and experiments["runs"].tolist() == [1]
    assert store.get_run(gone.id)["run"]["deleted"]  # still readable by its ID
    with pytest.raises(WrongStateError, match="deleted already"):
        store.delete_run(gone.id)
    store.restore_run(gone.id)
    assert sorted(store.search_runs()["run_id"]) == sorted([kept.id, gone.id])
    with pytest.raises(WrongStateError, match="not deleted"):
        store.restore_run(gone.id)
    names = dict(zip(store.search_runs()["run_id"], store.search_runs()["run_name"]))
    assert names == {kept.id: "exp_1", gone.id: "exp_2"}  # deleting renumbers nothing
    with pytest.raises(InvalidInputError, match="view must be one of"):
        store.search_runs(view="trash")


def test_a_running_run_cannot_be_deleted(store):
    run = quiet_run(store, "exp")
    try:
        with pytest.raises(WrongStateError, match="RUNNING"):
            store.delete_run(run.id)
    finally:
        run.end()


@pytest.mark.parametrize("call, args, message", [
    ("set_run_name", ("",), "non-empty"),
    ("set_run_name", ("a\nb",), "control characters"),
    ("set_run_name", (3,), "non-empty text"),
    ("set_run_notes", (None,), "notes are text"),
    ("set_tag", (NAME_TAG, "x"), "set_run_name"),
    ("set_tag", ("../up", "x"), "resolve to another name"),
    ("delete_tag", ("absent",), "has no tag 'absent'"),
])
def test_bad_edits_are_refused_and_write_nothing(store, call, args, message):
    run = ended_run(store)
    with pytest.raises(InvalidInputError, match=message):
        getattr(store, call)(run.id, *args)
    assert edit_files(store) == []


def test_edits_of_an_unknown_run_name_it(store):
    ended_run(store)
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        store.set_run_name("nope", "x")


def test_a_corrupt_edit_file_is_skipped_and_named_and_a_torn_one_waits(store):
    run = ended_run(store)
    store.set_tag(run.id, "good", "yes")
    folder = edit_files(store)[0].parent
    (folder / "01ZZZZZZZZZZZZZZZZZZZZZZZZ.jsonl").write_bytes(b'{"type": "run_tags", oops\n')
    with pytest.warns(mltrail.SkippedLinesWarning, match="01ZZZZZZZZZZZZZZZZZZZZZZZZ.jsonl"):
        assert store.search_runs().iloc[0]["tags.good"] == "yes"
    line = {"v": 1, "type": "run_tags", "ts": time.time(), "id": "01ZZZZZZZZZZZZZZZZZZZZZZZY", "run": run.id,
            "tags": {"late": "1"}}
    torn = folder / "01ZZZZZZZZZZZZZZZZZZZZZZZY.jsonl"
    torn.write_bytes(orjson.dumps(line)[:20])  # caught half-written (git writing in place)
    assert "tags.late" not in store.search_runs().columns
    torn.write_bytes(orjson.dumps(line) + b"\n")
    assert store.search_runs().iloc[0]["tags.late"] == "1"


@pytest.mark.slow
def test_gc_purges_deleted_runs_and_only_the_blobs_nothing_else_names(store, tmp_path):
    shared_file = tmp_path / "shared.txt"
    shared_file.write_text("used by two runs")
    with quiet_run(store, "exp") as keep:
        keep.log_artifact(shared_file)
    with quiet_run(store, "exp") as doomed:
        doomed.log_artifact(shared_file)
        doomed.log_text("only mine", "own.txt")
        doomed.log_metric("score", 1.0)
    store.delete_run(doomed.id)
    store.set_tag(doomed.id, "why", "bad seed")
    own_blob = store.artifact_path(doomed.id, "own.txt")
    shared_blob = store.artifact_path(doomed.id, "shared.txt")
    with pytest.raises(WrongStateError, match="not deleted"):
        store.gc([keep.id])
    preview = store.gc(dry_run=True)
    assert preview.runs == [doomed.id] and own_blob in preview.blobs and shared_blob not in preview.blobs
    assert doomed.path.exists() and own_blob.exists()  # a dry run changes nothing
    done = store.gc()
    assert done.runs == [doomed.id] and done.bytes_freed > 0
    assert not doomed.path.exists() and not own_blob.exists() and shared_blob.exists()
    assert edit_files(store) == []  # its edits went with it
    assert store.search_runs(view="all")["run_id"].tolist() == [keep.id]
    assert store.metric_history()["run_id"].unique().tolist() == []
    assert store.gc().runs == []


@pytest.mark.slow
def test_two_branches_curating_one_run_merge_without_conflict(tmp_path):
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    run = ended_run(mltrail.Store(origin / "runs"), "shared")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "a run")
    a, b = tmp_path / "a", tmp_path / "b"
    git(tmp_path, "clone", "-q", str(origin), str(a))
    git(tmp_path, "clone", "-q", str(origin), str(b))
    mltrail.Store(a / "runs").set_tag(run.id, "reviewer", "alice")
    mltrail.Store(a / "runs").set_run_notes(run.id, "alice's notes")
    time.sleep(0.01)
    mltrail.Store(b / "runs").set_run_name(run.id, "bob's name")
    mltrail.Store(b / "runs").set_run_notes(run.id, "bob's notes")
    for clone in (a, b):
        git(clone, "add", "-A")
        git(clone, "commit", "-q", "-m", "curated")
    git(b, "push", "-q", "origin", "main:bob")
    git(a, "fetch", "-q", "origin")
    git(a, "merge", "--no-edit", "-q", "origin/bob")  # fails the test on any conflict
    info = mltrail.Store(a / "runs").get_run(run.id)
    assert info["run"]["run_name"] == "bob's name"
    assert info["run"]["description"] == "bob's notes"  # the later of the two
    assert info["tags"] == {"reviewer": "alice"}


def test_a_running_run_s_name_and_notes_tags_are_set_only_by_their_own_calls(store):
    import pytest

    from mltrail.errors import InvalidInputError

    with store.start_run("e", name="first", log_git=False, log_packages=False) as run:
        with pytest.raises(InvalidInputError, match="holds the run's name: use run.set_name"):
            run.set_tag("mltrail.name", "")
        with pytest.raises(InvalidInputError, match="holds the run's notes: use run.set_notes"):
            run.delete_tag("mltrail.notes")
        run.set_name("second")
    assert store.get_run(run.id)["run"]["run_name"] == "second"
