"""A metric point keeps the dataset it was measured on (MLflow 3's ``dataset_name`` and
``dataset_digest``): written as event schema 3 only where a point names one, read the same
by the columnar and the per-line path, and absent (null) everywhere else, old stores too."""

from __future__ import annotations

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mltrail
from mltrail.compaction import compact as compact_module
from mltrail.compaction.manifest import MANIFEST_NAME, load_manifest
from mltrail.storage import eventlog
from tests.factories import quiet_run

LINKED = ["key", "step", "value", "dataset_name", "dataset_digest"]


class MlflowLikeDataset:
    """What ``log_metric`` takes of an MLflow dataset: its name and digest."""

    def __init__(self, name: str, digest: str) -> None:
        self.name, self.digest = name, digest


def lines_of(store: mltrail.Store, run: mltrail.Run) -> list[dict]:
    return [orjson.loads(line) for line in store.layout.run_file(run.experiment, run.id).read_bytes().splitlines()]


def history(store: mltrail.Store) -> list[tuple]:
    frame = store.metric_history()[LINKED].astype(object)
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]


def log_linked_points(store: mltrail.Store) -> mltrail.Run:
    with quiet_run(store, "e") as run:
        for step in range(3):
            run.log_metric("loss", 1 / (step + 1), step=step)
            run.log_metric("acc", step / 10, step=step, dataset=("wine quality", "c48e5fcd"))
            run.log_metrics({"acc": step / 20}, step=step, dataset=MlflowLikeDataset("test", "0a1b2c3d"))
        run.log_metric("odd", float("nan"), dataset=["test", "0a1b2c3d"])
    return run


EXPECTED = sorted([
    *[("loss", s, 1 / (s + 1), None, None) for s in range(3)],
    *[("acc", s, s / 10, "wine quality", "c48e5fcd") for s in range(3)],
    *[("acc", s, s / 20, "test", "0a1b2c3d") for s in range(3)],
    ("odd", 0, None, "test", "0a1b2c3d"),
], key=lambda r: (r[0], r[1], r[3] or ""))


def sorted_history(store: mltrail.Store) -> list[tuple]:
    return sorted(history(store), key=lambda r: (r[0], r[1], r[3] or ""))


def test_every_point_keeps_its_dataset_and_metric_history_shows_it(store):
    log_linked_points(store)
    result = store.compact()
    assert result.lines_read_one_by_one == 0  # the columnar path read them
    assert sorted_history(store) == EXPECTED
    assert list(store.metric_history().columns) == ["run_id", "key", "step", "value", "timestamp", "best",
                                                    "dataset_name", "dataset_digest"]


def test_a_line_naming_a_dataset_is_schema_3_and_a_line_naming_none_is_unchanged(store):
    run = log_linked_points(store)
    dense = [line for line in lines_of(store, run) if line["type"] == "metrics"]
    [line] = dense  # one flush: one line for all the points
    assert line["v"] == 3
    assert line["datasets"] == [["wine quality", "c48e5fcd"], ["test", "0a1b2c3d"]]
    assert line["d"] == [None, 0, 1, None, 0, 1, None, 0, 1, 1]
    with quiet_run(store, "e") as plain:
        for step in range(3):
            plain.log_metric("loss", 1 / (step + 1), step=step)
    [line] = [line for line in lines_of(store, plain) if line["type"] == "metrics"]
    assert line["v"] == 2 and "datasets" not in line and "d" not in line  # dense, as before


@pytest.mark.parametrize(("dataset", "message"), [
    (("train",), "its \\(name, digest\\)"),
    (("train", None), "the dataset digest None must be non-empty text"),
    ("train", "its \\(name, digest\\)"),
    (("", "abc"), "must be non-empty text"),
    (("train\nset", "abc"), "control characters"),
    (("train", "x" * 501), "the limit is 500"),
    (MlflowLikeDataset("train", 7), "the dataset digest 7 must be non-empty text"),
])
def test_a_dataset_no_line_can_hold_is_refused_where_it_is_logged(store, dataset, message):
    with quiet_run(store, "e") as run:
        with pytest.raises(mltrail.InvalidInputError, match=message):
            run.log_metric("acc", 0.5, dataset=dataset)
        with pytest.raises(mltrail.InvalidInputError, match=message):
            run.log_metrics({"acc": 0.5, "f1": 0.4}, dataset=dataset)
        run.log_metric("acc", 0.7)
    assert history(store) == [("acc", 0, 0.7, None, None)]  # the refused calls logged nothing, nor took a step


def test_the_per_line_path_reads_the_same_links_as_the_columnar_path(store):
    run = log_linked_points(store)
    fast = sorted_history(store)
    with open(store.layout.run_file(run.experiment, run.id), "ab") as handle:
        handle.write(b"{not json\n")  # the file now goes line by line
    result = store.compact(rebuild=True)
    assert result.lines_read_one_by_one > 0 and len(result.bad_lines) == 1
    assert sorted_history(store) == fast == EXPECTED


def test_a_one_point_line_may_name_a_dataset_too(store):
    with quiet_run(store, "e") as run:
        run.log_metric("acc", 0.1)
    path = store.layout.run_file(run.experiment, run.id)
    point = {"v": 3, "type": "metric", "ts": 1_790_000_000.0, "run": run.id, "seq": 99, "key": "f1", "value": 0.5,
             "step": 4, "dataset_name": "eval", "dataset_digest": "d1"}
    with open(path, "ab") as handle:
        handle.write(orjson.dumps(point) + b"\n")
    assert store.compact(rebuild=True).lines_read_one_by_one == 0
    assert ("f1", 4, 0.5, "eval", "d1") in history(store)


BAD_LINES = {  # a dense line no writer writes: skipped alone, by either path, and said why
    "d shorter than the points": {"datasets": [["a", "1"]], "d": [0]},
    "d past datasets": {"datasets": [["a", "1"]], "d": [0, 1]},
    "d without datasets": {"d": [None, None]},
    "datasets without d": {"datasets": [["a", "1"]]},
    "a dataset of three": {"datasets": [["a", "1", "x"]], "d": [0, 0]},
    "an empty name": {"datasets": [["", "1"]], "d": [0, 0]},
    "a negative index": {"datasets": [["a", "1"]], "d": [-1, 0]},
}


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_a_dense_line_with_a_broken_dataset_link_costs_only_itself(store, name):
    with quiet_run(store, "e") as run:
        run.log_metric("acc", 0.1)
    path = store.layout.run_file(run.experiment, run.id)
    line = {"v": 3, "type": "metrics", "ts": 1_790_000_000.0, "run": run.id, "seq": 99, "keys": ["f1"],
            "k": [0, 0], "steps": [0, 1], "values": [0.5, 0.6], "dts": [0, 0], **BAD_LINES[name]}
    with open(path, "ab") as handle:
        handle.write(orjson.dumps(line) + b"\n")
    number = path.read_bytes().count(b"\n")
    with pytest.warns(mltrail.SkippedLinesWarning):
        assert history(store) == [("acc", 0, 0.1, None, None)]
    [bad] = store.compact(rebuild=True).bad_lines
    assert bad.line == number and "invalid metrics event" in bad.reason


def test_a_reader_of_schema_2_says_a_line_naming_a_dataset_is_newer_than_it_knows(store, monkeypatch):
    log_linked_points(store)
    with quiet_run(store, "e") as plain:
        plain.log_metric("loss", 0.3)
    monkeypatch.setattr(compact_module, "SCHEMA_VERSION", 2)  # mltrail as it was before schema 3
    monkeypatch.setattr(eventlog, "SCHEMA_VERSION", 2)
    result = store.compact(rebuild=True)
    [bad] = result.bad_lines
    assert "newer mltrail (event schema v3" in bad.reason and "10 metric points lost" in bad.reason
    assert history(store) == [("loss", 0, 0.3, None, None)]  # never read without its datasets


def test_tables_of_format_3_are_rebuilt_once_and_their_points_read_with_no_dataset(store):
    """A store compacted before points kept a dataset: its history has no such columns."""
    with quiet_run(store, "e") as run:
        run.log_metric("loss", 0.5, step=1)
    store.compact()
    tables = store.layout.tables
    manifest = orjson.loads((tables / MANIFEST_NAME).read_bytes())
    for rel in manifest["tables"]["metrics"]:  # the history as format 3 wrote it
        old = pq.read_table(tables / rel).drop_columns(["dataset_name", "dataset_digest"])
        pq.write_table(old, tables / rel)
    (tables / MANIFEST_NAME).write_bytes(orjson.dumps({**manifest, "tables_format": 3}))
    compact_module._states.clear()  # another process: nothing held in memory
    frame = store.tracking.metric_history()  # through the rebuild
    assert frame[["dataset_name", "dataset_digest"]].isna().all().all()
    rebuilt = load_manifest(tables)
    assert rebuilt.tables_format == compact_module.TABLES_FORMAT
    # every part has the columns now: a merge of parts (concatenated as they are) and DuckDB
    # or Spark reading the folder as one dataset need one schema across them
    assert all({"dataset_name", "dataset_digest"} <= set(pq.read_schema(tables / rel).names)
               for rel in rebuilt.tables["metrics"])
    assert store.compact().noop  # once
    with quiet_run(store, "e") as later:  # and the rebuilt store takes new linked points
        later.log_metric("loss", 0.4, dataset=("d", "1"))
    assert ("loss", 0, 0.4, "d", "1") in history(store)


def test_a_history_part_without_the_columns_reads_with_them_null(store):
    """What a reader that does not compact first (the dashboard) finds in an old store."""
    from mltrail.query.tables import read_table

    with quiet_run(store, "e") as run:
        run.log_metric("loss", 0.5, step=1)
    store.compact()
    manifest = load_manifest(store.layout.tables)
    for rel in manifest.tables["metrics"]:
        path = store.layout.tables / rel
        pq.write_table(pq.read_table(path).drop_columns(["dataset_name", "dataset_digest"]), path)
    table = read_table(store.layout.tables, "metrics", manifest)
    assert table.column("dataset_name").null_count == table.num_rows == 1
    assert table.schema.field("dataset_digest").type == pa.string()


def test_a_point_s_dataset_round_trips_through_the_import_s_line_writer(store):
    """``dense_line`` (the importer's writer too) and the compaction agree point for point."""
    from mltrail.storage.events import EVENT_ADAPTER
    from mltrail.tracking.run import dense_line

    points = [("a", 0.5, 0, 1_790_000_000.0, True), ("a", 0.6, 1, 1_790_000_000.5, (True, "s p a c e", "9")),
              ("b", float("inf"), 0, 1_790_000_001.0, (False, "s p a c e", "9")),
              ("b", 0.1, 1, 1_790_000_001.0, (False, "other", "8")), ("b", 0.2, 2, 1_790_000_001.0, False)]
    line = dense_line("R", 1, points)
    model = EVENT_ADAPTER.validate_python(line)
    assert model.datasets == [("s p a c e", "9"), ("other", "8")] and model.d == [None, 0, 0, 1, None]
    assert model.best_at == [0, 1] and model.special_at == [2]
    rows = compact_module._points_of(model)  # the per-line path's rows
    assert [(r["dataset_name"], r["dataset_digest"]) for r in rows] == [
        (None, None), ("s p a c e", "9"), ("s p a c e", "9"), ("other", "8"), (None, None)]


def test_a_point_marked_best_keeps_the_mark_with_or_without_a_dataset(store):
    import numpy as np

    with quiet_run(store, "e") as run:
        run.log_metric("acc", 0.5, step=0, best=np.True_)  # a comparison of numpy numbers marks it
        run.log_metric("acc", 0.7, step=1, best=True, dataset=("test", "0a1b2c3d"))
        run.log_metric("acc", 0.9, step=2, dataset=("test", "0a1b2c3d"))
    marked = store.metric_history()
    assert marked["best"].tolist() == [True, True, False]
    latest = store.get_run(run.id)["metrics"].iloc[0]
    assert (latest["value"], latest["best_value"], latest["best_step"]) == (0.9, 0.7, 1)
