"""The promises compaction makes: incremental, deterministic, idempotent, tolerant."""

import math
import shutil
import threading

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest

import mltrail
from mltrail.compaction.manifest import load_manifest
from mltrail.query.tables import read_table
from tests.factories import quiet_run

TABLES = ["runs", "experiments", "params", "tags", "latest_metrics", "artifacts", "datasets"]


def snapshot(store: mltrail.Store) -> dict[str, pd.DataFrame]:
    manifest = load_manifest(store.layout.tables)
    tables = {name: read_table(store.layout.tables, name, manifest).to_pandas() for name in TABLES}
    tables["metrics"] = store.metric_history()
    return tables


def assert_same_tables(a, b):
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_like=False, obj=name)


def fill(store, runs=3, points=50):
    ids = []
    for r in range(runs):
        with quiet_run(store, f"exp{r % 2}", tags={"r": str(r)}) as run:
            run.log_params({"r": r, "lr": 10 ** -r}, group="g")
            for i in range(points):
                run.log_metrics({"loss": 1 / (i + 1), "acc": i / points}, step=i)
            run.log_metric("acc", math.nan, step=points)
        ids.append(run.id)
    return ids


def test_no_op_compaction_reads_and_writes_nothing(store):
    fill(store)
    first = store.compact()
    assert first.events_read > 0 and not first.noop
    files_before = sorted(p.name for p in store.layout.tables.rglob("*.parquet"))
    second = store.compact()
    assert second.noop and second.bytes_read == 0 and second.generation == first.generation
    assert sorted(p.name for p in store.layout.tables.rglob("*.parquet")) == files_before


def test_incremental_reads_only_new_bytes(store):
    fill(store)
    store.compact()
    run = quiet_run(store, "exp0")
    run.flush()
    store.compact()
    size = run.path.stat().st_size
    for i in range(100):
        run.log_metric("m", float(i))
    run.flush()
    result = store.compact()
    assert result.files_read == 1
    assert result.bytes_read == run.path.stat().st_size - size
    assert result.metric_points == 100
    run.end()


@pytest.mark.slow
def test_many_small_compactions_equal_one_rebuild(store, monkeypatch):
    monkeypatch.setattr("mltrail.compaction.compact.MAX_METRIC_PARTS", 4)  # exercise part merging
    run = quiet_run(store, "steps")
    run.log_params({"a": 1})
    for chunk in range(12):
        for i in range(20):
            run.log_metric("loss", float(chunk * 20 + i), step=chunk * 20 + i, best=(i == 3))
        run.set_tag("chunk", chunk)
        run.flush()
        store.compact()
    run.end()
    fill(store)
    store.compact()
    incremental = snapshot(store)
    parts = load_manifest(store.layout.tables).tables["metrics"]
    per_partition = {}
    for rel in parts:
        per_partition.setdefault(rel.rsplit("/", 1)[0], []).append(rel)
    assert set(per_partition) == {"metrics/experiment=steps", "metrics/experiment=exp0", "metrics/experiment=exp1"}
    assert all(len(files) <= 5 for files in per_partition.values())  # merged past MAX_METRIC_PARTS
    store.compact(rebuild=True)
    assert_same_tables(incremental, snapshot(store))
    store.compact()
    assert_same_tables(incremental, snapshot(store))  # idempotent


@pytest.mark.slow
def test_merging_small_parts_leaves_a_big_part_alone(store, monkeypatch):
    """The Live page refreshes compact a few points at a time: merging those parts must
    not rewrite the partition's big part from the first compaction each time."""
    monkeypatch.setattr("mltrail.compaction.compact.MAX_METRIC_PARTS", 4)
    with quiet_run(store, "e") as big:
        for i in range(5000):
            big.log_metrics({"loss": 1 / (i + 1), "acc": i / 5000}, step=i)
    store.compact()
    [big_part] = load_manifest(store.layout.tables).tables["metrics"]
    live = quiet_run(store, "e")
    for i in range(12):
        live.log_metric("loss", float(i), step=i)
        live.flush()
        store.compact()
        parts = load_manifest(store.layout.tables).tables["metrics"]
        assert big_part in parts and len(parts) <= 5
    live.end()
    store.compact()
    incremental = snapshot(store)
    store.compact(rebuild=True)
    assert_same_tables(incremental, snapshot(store))


def test_a_line_longer_than_a_json_block_is_still_read(store, monkeypatch):
    """pyarrow's JSON reader cannot parse a line that straddles its blocks: such a span
    is read line by line instead, with the same result."""
    fill(store)
    store.compact()
    whole = snapshot(store)
    monkeypatch.setattr("mltrail.compaction.reader.BLOCK_BYTES", 256)  # shorter than a dense line
    result = store.compact(rebuild=True)
    assert result.lines_read_one_by_one and not result.bad_lines
    assert_same_tables(whole, snapshot(store))


def test_reading_in_small_batches_gives_the_same_tables(store, monkeypatch):
    """A big first compaction reads the event files a batch at a time (bounded memory):
    batches of one file each must give what one batch gives, with one history file per
    experiment, and report progress over all files."""
    fill(store, runs=5)
    store.compact()
    whole = snapshot(store)
    monkeypatch.setattr("mltrail.compaction.compact.BATCH_BYTES", 1)
    seen = []
    result = store.compact(rebuild=True, progress=lambda done, total: seen.append((done, total)))
    assert result.files_read == 5 and result.metric_points == 5 * 101
    assert seen == [(i, 5) for i in range(1, 6)]
    assert_same_tables(whole, snapshot(store))
    parts = load_manifest(store.layout.tables).tables["metrics"]
    assert parts == [f"metrics/experiment=exp{i}/part-{result.generation:08d}.parquet" for i in (0, 1)]


def test_corrupt_line_in_the_middle_is_skipped_and_reported(store):
    with quiet_run(store, "exp0") as run:  # a flush a step: a dense line of 2 points a step
        for i in range(10):
            run.log_metrics({"loss": 1 / (i + 1), "acc": i / 10}, step=i)
            run.flush()
        run.log_metric("acc", math.nan, step=10)
    path = run.path
    lines = path.read_bytes().split(b"\n")
    assert [orjson.loads(lines[i])["type"] for i in (5, 7)] == ["metrics", "metrics"]
    lines[5] = lines[5][:60]  # cut mid-line, as a crash or a bad merge leaves it
    lines[7] = b'{"v":1,"type":"metric","ts":1.0,"run":"x","seq":7,"key":"loss","value":"high","step":1}'
    path.write_bytes(b"\n".join(lines))
    result = store.compact(rebuild=True)
    reported = {(b.file, b.line) for b in result.bad_lines}
    rel = store.layout.relative(path)
    assert reported == {(rel, 6), (rel, 8)}
    assert "not valid JSON" in result.bad_lines[0].reason and "metric points" in result.bad_lines[0].reason
    assert "value" in result.bad_lines[1].reason
    points = store.metric_history(run_ids=[run.id])
    assert len(points) == 21 - 4  # two lines of two points each lost; everything else read
    assert store.search_runs().iloc[0]["status"] == "FINISHED"


def test_queries_warn_when_they_skip_lines(store):
    with quiet_run(store) as run:
        run.log_metric("m", 1.0)
    with open(run.path, "ab") as f:
        f.write(b"garbage\n")
    with pytest.warns(mltrail.SkippedLinesWarning, match=r"1 event line.*:\d+: not valid JSON"):
        df = store.search_runs()
    assert len(df) == 1


def test_unfinished_line_is_read_once_it_is_complete(store):
    run = quiet_run(store)
    run.log_metric("m", 1.0)
    run.flush()
    line = b'{"v":1,"type":"metric","ts":1.0,"run":"%s","seq":999,"key":"m","value":2.0,"step":5}\n' % run.id.encode()
    with open(run.path, "ab") as f:
        f.write(line[:30])
    assert store.compact().metric_points == 1
    with open(run.path, "ab") as f:
        f.write(line[30:])
    assert store.compact().metric_points == 1
    assert list(store.metric_history()["value"]) == [1.0, 2.0]
    run.end()


def test_removed_or_shrunk_file_triggers_a_rebuild(store):
    ids = fill(store)
    store.compact()
    next(p for p in store.layout.experiments.glob("*/runs/*.jsonl") if ids[0] in p.name).unlink()
    result = store.compact()
    assert result.rebuilt
    assert set(store.search_runs()["run_id"]) == set(ids[1:])


def test_newer_schema_version_is_reported_not_crashed_on(store):
    run = quiet_run(store)
    run.flush()
    with open(run.path, "ab") as f:
        f.write(b'{"v":7,"type":"metric","ts":1.0,"run":"%s","seq":99,"key":"m","value":2.0,"step":5}\n' % run.id.encode())
    result = store.compact()
    assert result.lines_skipped == 1 and "newer mltrail" in result.bad_lines[0].reason
    run.end()


def test_concurrent_compactions_in_threads_agree(store):
    fill(store, runs=4, points=500)
    errors = []

    def work():
        try:
            for _ in range(5):
                store.compact()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.metric_history()) == 4 * (2 * 500 + 1)


def test_tables_are_plain_parquet_that_other_engines_read(store):
    fill(store)
    store.compact()
    manifest = load_manifest(store.layout.tables)
    # a plain reader given only the folder of each table sees what mltrail's reader sees
    for name in ("runs", "params", "metrics"):
        folder = pq.read_table(store.layout.tables / name).to_pandas()
        assert len(folder) == len(read_table(store.layout.tables, name, manifest)) > 0
    assert (store.root / ".gitignore").read_text().count("/.cache/") == 1


def test_compaction_of_a_missing_store_says_so(tmp_path):
    with pytest.raises(mltrail.NotFoundError, match="no mltrail store"):
        mltrail.Store(tmp_path / "nowhere").compact()


def test_a_store_copied_over_the_path_is_read_from_its_own_files(tmp_path):
    """The small tables this process keeps between compactions belong to the manifest they
    were committed with, not to a path and a generation: another store put at the same path
    (a backup restored, a folder synced) at the same generation is read from its files."""
    first = mltrail.Store(tmp_path / "a")
    with quiet_run(first, "e", name="old") as run:
        run.log_metric("loss", 1.0)
    other = mltrail.Store(tmp_path / "b")
    with quiet_run(other, "e", name="new") as run:
        run.log_metric("loss", 2.0)
    assert first.compact().generation == other.compact().generation == 1
    shutil.rmtree(tmp_path / "a")
    shutil.copytree(tmp_path / "b", tmp_path / "a")
    store = mltrail.Store(tmp_path / "a")
    with quiet_run(store, "e", name="later") as run:
        run.log_metric("loss", 3.0)
    assert store.compact().generation == 2
    assert sorted(store.search_runs()["run_name"]) == ["later", "new"]
