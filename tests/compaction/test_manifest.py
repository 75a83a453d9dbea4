"""The manifest's progress records: ended runs' files sealed once into small immutable
files, so a commit with one live run among many ended ones rewrites only the live part."""

import os

import orjson
import pytest

import mltrail
from mltrail.compaction import manifest as manifest_module
from mltrail.compaction.manifest import MANIFEST_NAME, TABLES_FORMAT, load_manifest, read_manifest
from tests.compaction.test_compact import assert_same_tables, snapshot
from tests.factories import quiet_run


def _fresh_load(store):
    """The manifest as another process reads it: nothing cached."""
    return read_manifest(store.layout.tables)


def _committed(store):
    return orjson.loads((store.layout.tables / MANIFEST_NAME).read_bytes())


def test_the_manifest_holds_only_live_files_and_seals_ended_ones(store):
    ended = []
    for i in range(3):
        with quiet_run(store, "e") as run:
            run.log_metric("loss", float(i))
        ended.append(run)
    live = quiet_run(store, "e")
    live.log_metric("loss", 1.0)
    live.flush()
    store.compact()
    committed = _committed(store)
    assert list(committed["files"]) == [store.layout.relative(live.path)]
    assert len(committed["sealed"]) == 1
    in_memory = load_manifest(store.layout.tables).files
    assert _fresh_load(store).files == in_memory and len(in_memory) == 4
    live.end()
    store.compact()
    assert _committed(store)["files"] == {} and len(_committed(store)["sealed"]) == 2
    assert _fresh_load(store).files == load_manifest(store.layout.tables).files


@pytest.mark.slow
def test_sealed_files_are_merged_past_the_limit_and_the_old_ones_removed(store, monkeypatch):
    monkeypatch.setattr(manifest_module, "MAX_SEALED", 3)
    for i in range(8):
        with quiet_run(store, "e") as run:
            run.log_metric("loss", float(i))
        store.compact()
    sealed = _committed(store)["sealed"]
    assert 1 <= len(sealed) <= 3
    on_disk = sorted(f"_files/{p.name}" for p in (store.layout.tables / "_files").iterdir())
    assert on_disk == sorted(sealed)
    files = _fresh_load(store).files
    assert len(files) == 8 and all(p.done for p in files.values())
    before = snapshot(store)
    assert store.compact().noop  # the sealed progress is right: nothing is read again
    store.compact(rebuild=True)
    assert_same_tables(before, snapshot(store))


def test_a_resumed_run_overrides_its_sealed_progress_in_a_new_process(store):
    with quiet_run(store, "e") as run:
        run.log_metric("loss", 1.0)
    store.compact()
    resumed = store.start_run(run_id=run.id)
    resumed.log_metric("loss", 0.5)
    resumed.flush()
    store.compact()
    rel = store.layout.relative(run.path)
    assert rel in _committed(store)["files"]  # open again: its live progress is inline
    assert _fresh_load(store).files[rel] == load_manifest(store.layout.tables).files[rel]
    resumed.end()
    assert store.metric_history()["value"].tolist() == [1.0, 0.5]


def test_a_manifest_of_the_first_format_still_reads(store):
    """Stores compacted before sealing (format 1: every file's progress inline)."""
    with quiet_run(store, "e") as run:
        run.log_metric("loss", 1.0)
    store.compact()
    manifest = _fresh_load(store)
    old = {"format": 1, "generation": manifest.generation, "tables": manifest.tables,
           "bad_lines": [], "folders": manifest.folders, "tables_format": TABLES_FORMAT,
           "files": {k: [p.offset, p.size, p.line, p.done] for k, p in manifest.files.items()}}
    (store.layout.tables / MANIFEST_NAME).write_bytes(orjson.dumps(old))
    assert _fresh_load(store).files == manifest.files
    assert store.compact().noop
    assert store.search_runs()["metrics.loss"].tolist() == [1.0]


def test_tables_of_an_older_shape_are_rebuilt_once_from_the_events(store):
    """A store compacted by a version before runs could be deleted: its manifest names no
    tables format, its runs table has no `deleted` column; the next compaction rebuilds."""
    with quiet_run(store, "e") as run:
        run.log_metric("loss", 1.0)
    store.compact()
    path = store.layout.tables / MANIFEST_NAME
    old = orjson.loads(path.read_bytes())
    del old["tables_format"]
    path.write_bytes(orjson.dumps(old))
    assert store.compact().rebuilt
    assert store.compact().noop
    assert store.search_runs()["metrics.loss"].tolist() == [1.0]


def test_an_unreadable_manifest_is_named_and_a_rebuild_repairs_it(store):
    with quiet_run(store, "e") as run:
        run.log_metric("loss", 1.0)
    old_generation = store.compact().generation
    before = snapshot(store)
    (store.layout.tables / MANIFEST_NAME).write_bytes(b'{"format": 99}')
    with pytest.raises(mltrail.StoreCorruptError, match="rebuild"):
        store.search_runs()
    assert store.compact(rebuild=True).generation > old_generation  # named after the files there
    assert_same_tables(before, snapshot(store))


def test_a_missing_sealed_file_is_named_not_retried_forever(store):
    with quiet_run(store, "e") as run:
        run.log_metric("loss", 1.0)
    store.compact()
    (sealed,) = _committed(store)["sealed"]
    (store.layout.tables / sealed).unlink()
    with pytest.raises(mltrail.StoreCorruptError, match="missing; run `mltrail compact --rebuild`"):
        _fresh_load(store)
    store.compact(rebuild=True)
    assert store.search_runs()["metrics.loss"].tolist() == [1.0]


def test_a_manifest_rewritten_in_place_within_a_timestamp_tick_is_parsed_again(store):
    """Parsed manifests are shared per committed version, and a version is the bytes: a
    manifest rewritten in place with the same size and mtime (a write within the file
    system's timestamp tick, here set back by utime) is not answered from the old parse."""
    with quiet_run(store, "e") as run:
        run.log_metric("loss", 1.0)
    assert store.compact().generation == 1
    path = store.layout.tables / MANIFEST_NAME
    assert load_manifest(store.layout.tables).generation == 1
    before = os.stat(path)
    raw = path.read_bytes()
    changed = raw.replace(b'"generation":1,', b'"generation":7,')
    assert changed != raw and len(changed) == len(raw)
    path.write_bytes(changed)  # in place: the same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    now = os.stat(path)
    assert (now.st_ino, now.st_size, now.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    assert load_manifest(store.layout.tables).generation == 7
