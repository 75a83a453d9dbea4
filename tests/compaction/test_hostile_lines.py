"""One bad line costs that line, reported with its file and line number, never the store
(issue 13, item 1); hashes in event files never name a path outside the store (item 10)."""

import orjson
import pytest

import mltrail
from tests.factories import quiet_run

SHA = "a" * 64
HOSTILE = {
    "step past int64": {"v": 1, "type": "metric", "ts": 1.0, "run": "R", "seq": 9, "key": "f1", "value": 1.0,
                        "step": 2**63},
    "ts 1e20": {"v": 1, "type": "metric", "ts": 1e20, "run": "R", "seq": 9, "key": "f1", "value": 1.0, "step": 1},
    "unknown nonfinite": {"v": 1, "type": "metric", "ts": 1.0, "run": "R", "seq": 9, "key": "f1", "value": None,
                          "step": 1, "nonfinite": "huge"},
    "artifact size 2^63": {"v": 1, "type": "artifact", "ts": 1.0, "run": "R", "seq": 9, "path": "x.bin",
                           "sha256": SHA, "size": 2**63, "in_git": True},
    "dataset rows 2^63": {"v": 1, "type": "dataset", "ts": 1.0, "run": "R", "seq": 9, "name": "d", "path": "d.csv",
                          "sha256": SHA, "size": 1, "rows": 2**63},
    "sha256 that is a path": {"v": 1, "type": "git", "ts": 1.0, "run": "R", "seq": 9, "commit": "c",
                              "diff_sha256": "xx/../../../../etc/passwd"},
    "artifact sha256 that is a path": {"v": 1, "type": "artifact", "ts": 1.0, "run": "R", "seq": 9,
                                       "path": "p.txt", "sha256": "../../../../etc/passwd", "size": 1,
                                       "in_git": True},
}


def hostile_line(name, run_id):
    return orjson.dumps(dict(HOSTILE[name], run=run_id))  # 2**63 fits orjson's unsigned 64 bits


@pytest.fixture
def store(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    with quiet_run(store, "e", name="good") as run:
        run.log_metric("f1", 0.5, step=1)
    return store


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_line_costs_only_itself(store, name):
    run = store.search_runs().iloc[0]
    path = store.layout.run_file("e", run["run_id"])
    with open(path, "ab") as handle:
        handle.write(hostile_line(name, run["run_id"]) + b"\n")
    lines = path.read_bytes().count(b"\n")
    with pytest.warns(mltrail.SkippedLinesWarning):
        runs = store.search_runs()
    assert list(runs["run_name"]) == ["good"] and runs.iloc[0]["metrics.f1"] == 0.5
    rebuilt = store.compact(rebuild=True)
    assert [(b.file.rsplit("/", 1)[-1], b.line) for b in rebuilt.bad_lines] == [(path.name, lines)]
    assert store.metric_history()["step"].tolist() == [1]
    assert store.get_run("good")["artifacts"].empty


def test_a_line_nested_2000_deep_is_one_bad_line(store):
    run = store.search_runs().iloc[0]
    path = store.layout.run_file("e", run["run_id"])
    deep = b'{"v":1,"type":"tags","ts":1.0,"run":"' + run["run_id"].encode() + b'","seq":9,"tags":{"k":' \
        + b"[" * 2000 + b"]" * 2000 + b"}}\n"
    with open(path, "ab") as handle:
        handle.write(deep)
    with pytest.warns(mltrail.SkippedLinesWarning):
        assert list(store.search_runs()["run_name"]) == ["good"]


def test_a_blob_path_outside_the_store_is_refused(store):
    with pytest.raises(mltrail.StoreCorruptError, match="not a sha256"):
        store.layout.blob_path("xx/../../../../etc/passwd")
    with pytest.raises(mltrail.StoreCorruptError):
        store.blob("../" * 8 + "etc/passwd")
