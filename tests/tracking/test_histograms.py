"""Histograms over steps (issue 30): ``run.log_histogram`` writes one dense line a
histogram (schema 4), compaction appends them to the ``histograms`` table, and
``store.histograms`` reads back exactly what NumPy counted; bad input is refused where it
is logged with nothing written, a broken line costs only itself, and on a server a reader
sees only the histograms of runs they may read."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

import mltrail
from mltrail.compaction import compact as compact_module
from mltrail.storage import eventlog
from tests.factories import quiet_run, served_with_users


def lines(run) -> list[dict]:
    return [orjson.loads(line) for line in run.path.read_bytes().splitlines()]


class Tensor:
    """What a PyTorch tensor offers NumPy here: detach, cpu, numpy."""

    def __init__(self, values):
        self.values = np.asarray(values)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.values


def test_a_histogram_reads_back_as_numpy_counted_it(store):
    rng = np.random.default_rng(0)
    weights = [rng.normal(step, 1.0, (32, 16)) for step in range(3)]
    with quiet_run(store, "h") as run:
        for w in weights:
            run.log_histogram("weights/fc1", w, bins=20)  # steps 0, 1, 2
        run.log_histogram("grads", Tensor([0.5, 1.5, np.nan, np.inf, 2.5]), step=10, bins=2)
        counts, edges = np.histogram(rng.normal(size=500), bins=[-3.0, -1.0, 0.0, 1.0, 3.0])
        run.log_histogram("given", (counts, edges), step=4)
    table = store.histograms([run.id])
    assert list(zip(table["key"], table["step"])) == [("given", 4), ("grads", 10), ("weights/fc1", 0),
                                                      ("weights/fc1", 1), ("weights/fc1", 2)]
    for step, w in enumerate(weights):
        row = table[(table["key"] == "weights/fc1") & (table["step"] == step)].iloc[0]
        expected_counts, expected_edges = np.histogram(w, bins=20)
        assert list(row["counts"]) == list(expected_counts)
        assert np.allclose(row["edges"], expected_edges)
    grads = table[table["key"] == "grads"].iloc[0]
    assert list(grads["counts"]) == [1, 2] and grads["dropped"] == 2  # NaN and inf: counted apart
    given = table[table["key"] == "given"].iloc[0]
    assert list(given["counts"]) == list(counts) and list(given["edges"]) == list(edges)
    assert store.histograms([run.id], ["grads"])["key"].tolist() == ["grads"]
    assert store.histograms(["nobody"]).empty


def test_steps_at_int64_s_ends_read_back_and_one_past_them_is_refused(store):
    low, high = -(2**63), 2**63 - 1
    with quiet_run(store, "h") as run:
        run.log_histogram("w", [1.0, 2.0], step=low, bins=2)
        run.log_histogram("w", [3.0], step=high, bins=1)
        with pytest.raises(mltrail.InvalidInputError, match="step"):
            run.log_histogram("w", [4.0], step=high + 1)
    table = store.histograms([run.id])
    assert table["step"].tolist() == [low, high] and table["counts"].map(list).tolist() == [[1, 1], [1]]


def test_a_histogram_line_is_schema_4_and_dense(store):
    with quiet_run(store, "h") as run:
        run.log_histogram("w", np.random.default_rng(1).normal(size=10_000), bins=64)
    [line] = [line for line in lines(run) if line["type"] == "histogram"]
    assert line["v"] == 4 and "edges" not in line and "dropped" not in line  # equal bins: lo and hi say them
    assert sum(line["counts"]) == 10_000
    assert len(orjson.dumps(line)) < 400  # 64 bins


def test_a_constant_gets_one_bin_around_it(store):
    with quiet_run(store, "h") as run:
        run.log_histogram("bias", np.full(7, 3.0), bins=4)
    [row] = store.histograms([run.id]).to_dict("records")
    assert sum(row["counts"]) == 7 and row["edges"][0] < 3.0 < row["edges"][-1]


@pytest.mark.parametrize("values,options,message", [
    ([], {}, "no finite value"),
    ([np.nan, np.inf], {}, "no finite value"),
    ([1.0, 2.0], {"bins": 0}, "bins must be"),
    ([1.0, 2.0], {"bins": 5000}, "bins must be"),
    ((np.array([1, -1]), np.array([0.0, 1.0, 2.0])), {}, "whole numbers"),
    ((np.array([1.5, 1]), np.array([0.0, 1.0, 2.0])), {}, "whole numbers"),
    ((np.array([1, 1]), np.array([0.0, 1.0])), {}, "need 3 edges"),
    ((np.array([1, 1]), np.array([0.0, 2.0, 1.0])), {}, "must increase"),
    ((np.array([1, 1]), np.array([0.0, np.nan, 1.0])), {}, "histogram"),
    ([1.0], {"step": 1.5}, "step"),
    (["a", "b"], {}, "could not convert"),
])
def test_a_wrong_histogram_is_refused_where_it_is_logged_and_nothing_is_written(store, values, options, message):
    with quiet_run(store, "h") as run:
        run.flush()
        before = run.path.read_bytes()
        with pytest.raises((mltrail.InvalidInputError, ValueError), match=message):
            run.log_histogram("w", values, **options)
        run.flush()
        assert run.path.read_bytes() == before
    assert store.histograms([run.id]).empty


def test_a_bad_key_is_refused(store):
    with quiet_run(store, "h") as run, pytest.raises(mltrail.InvalidKeyError):
        run.log_histogram("../w", [1.0])


def test_compaction_appends_histograms_and_a_rebuild_reads_the_same(store, monkeypatch):
    monkeypatch.setattr(compact_module, "MAX_METRIC_PARTS", 3)
    for i in range(5):
        with quiet_run(store, "h", name=f"r{i}") as run:
            run.log_histogram("w", [float(i), i + 1.0])
        assert store.compact().tables_written[-1] == "histograms"
    from mltrail.compaction.manifest import load_manifest

    assert len(load_manifest(store.layout.tables).tables["histograms"]) <= 3  # merged past the limit
    before = store.histograms().drop(columns=["timestamp"])
    assert len(before) == 5
    assert "histograms" not in store.compact().tables_written  # nothing new: nothing written
    store.compact(rebuild=True)
    after = store.histograms().drop(columns=["timestamp"])
    assert before.map(str).equals(after.map(str))


def test_a_broken_histogram_line_costs_only_itself(store):
    with quiet_run(store, "h") as run:
        run.log_histogram("w", [1.0, 2.0], step=0)
        run.log_metric("loss", 0.5)
    good = {"v": 4, "type": "histogram", "ts": 1_790_000_000.0, "run": run.id, "seq": 90, "key": "w", "step": 1,
            "counts": [1, 1], "lo": 0.0, "hi": 1.0}
    broken = {**good, "seq": 91, "step": 2, "lo": 2.0, "hi": 1.0}  # lo above hi: no writer writes it
    with open(run.path, "ab") as handle:
        handle.write(orjson.dumps(good) + b"\n" + orjson.dumps(broken) + b"\n")
    with pytest.warns(mltrail.SkippedLinesWarning):
        assert store.histograms([run.id])["step"].tolist() == [0, 1]
    [bad] = store.compact(rebuild=True).bad_lines
    assert "invalid histogram event" in bad.reason
    assert store.metric_history([run.id])["value"].tolist() == [0.5]


def test_a_reader_of_schema_3_says_a_histogram_is_newer_than_it_knows(store, monkeypatch):
    with quiet_run(store, "h") as run:
        run.log_histogram("w", [1.0, 2.0])
        run.log_metric("loss", 0.5)
    monkeypatch.setattr(compact_module, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(eventlog, "SCHEMA_VERSION", 3)
    [bad] = store.compact(rebuild=True).bad_lines
    assert "newer mltrail (event schema v4" in bad.reason
    assert store.metric_history([run.id])["value"].tolist() == [0.5]


def test_a_resumed_run_goes_on_from_its_last_histogram_step(store):
    with quiet_run(store, "h") as run:
        run.log_histogram("w", [1.0])
        run.log_histogram("w", [2.0])
    resumed = store.start_run(run_id=run.id, log_git=False, log_packages=False, log_system=False)
    resumed.log_histogram("w", [3.0])
    resumed.end()
    assert store.histograms([run.id])["step"].tolist() == [0, 1, 2]


def test_on_a_server_histograms_come_from_the_runs_you_may_read(tmp_path):
    with served_with_users(tmp_path, ("ana", "bo")) as (_, clients):
        ana, bo = clients["ana"], clients["bo"]
        ids = {}
        for experiment in ("private", "shared"):
            with quiet_run(ana, experiment) as run:
                run.log_histogram("w", np.arange(10.0), bins=5)
            ids[experiment] = run.id
        assert ana.upload() == 0
        ana.access.grant("experiment", "shared", to="bo", level="read")
        mine = ana.histograms()
        assert set(mine["run_id"]) == set(ids.values()) and list(mine["counts"].iloc[0]) == [2] * 5
        assert set(bo.histograms()["run_id"]) == {ids["shared"]}
        assert bo.histograms([ids["private"]]).empty
