"""Definitions, bad input, the online store and saved training sets."""

import sqlite3

import pandas as pd
import pytest

import mltrail
from mltrail.errors import InvalidInputError, NotFoundError

NOW = pd.Timestamp.now(tz="UTC").floor("s")


@pytest.fixture
def source(tmp_path):
    rows = pd.DataFrame({
        "driver_id": [1001, 1001, 1002, 1003],
        "event_ts": [NOW - pd.Timedelta("3h"), NOW - pd.Timedelta("30min"), NOW - pd.Timedelta("1h"),
                     NOW - pd.Timedelta("5h")],
        "created_ts": [NOW - pd.Timedelta("3h"), NOW - pd.Timedelta("29min"), NOW - pd.Timedelta("59min"),
                       NOW - pd.Timedelta("5h")],
        "conv_rate": [0.1, 0.2, 0.3, 0.4], "trips": [1, 2, 3, 4], "active": [True, False, True, True],
        "city": ["Oslo", "Oslo", "Lima", "Pune"]})
    path = tmp_path / "data" / "driver_stats.parquet"
    path.parent.mkdir()
    rows.to_parquet(path)
    return path


@pytest.fixture
def fs(store, source):
    features = store.features
    features.apply_entity("driver", join_keys=["driver_id"], description="a driver")
    features.apply_view("driver_stats", entity="driver", source=source, timestamp_field="event_ts",
                        created_timestamp_field="created_ts", ttl="2h",
                        features={"conv_rate": "float", "trips": "int", "active": "bool", "city": "string"})
    return features


def event_files(store):
    return sorted((store.root / "features").glob("*.jsonl")) if (store.root / "features").exists() else []


def test_definitions_are_listed_with_their_schema(fs, store, source):
    views = fs.list().set_index("view")
    assert views.loc["driver_stats", "entity"] == "driver" and views.loc["driver_stats", "ttl"] == "2h"
    assert views.loc["driver_stats", "features"] == "conv_rate:float, trips:int, active:bool, city:string"
    assert views.loc["driver_stats", "source"].endswith("data/driver_stats.parquet")
    assert list(fs.entities()["join_keys"]) == ["driver_id"]
    # a definition applied again replaces the old one; both stay in the event history
    fs.apply_view("driver_stats", entity="driver", source=source, timestamp_field="event_ts",
                  features={"conv_rate": "float"}, ttl="1d")
    assert fs.list().set_index("view").loc["driver_stats", "ttl"] == "1d" and len(event_files(store)) == 3


@pytest.mark.parametrize("change,words", [
    ({"source": "missing.parquet"}, "does not exist"),
    ({"timestamp_field": "when"}, "no timestamp column 'when'"),
    ({"features": {"conv_rate": "float", "speed": "float"}}, "no feature column 'speed'"),
    ({"features": {"city": "float"}}, "column 'city'"),
    ({"features": {"conv_rate": "int"}}, "column 'conv_rate'"),
    ({"features": {"conv_rate": "decimal"}}, "types are"),
    ({"ttl": "two hours"}, "ttl 'two hours' does not parse"),
    ({"ttl": "-1h"}, "must be positive"),
    ({"entity": "rider"}, "no entity 'rider'"),
    ({"name": "driver-stats"}, "feature view name"),
])
def test_bad_views_are_refused_and_nothing_is_written(fs, store, source, change, words):
    arguments = {"name": "v2", "entity": "driver", "source": source, "timestamp_field": "event_ts",
                 "features": {"conv_rate": "float"}, "ttl": "2h", **change}
    before = event_files(store)
    with pytest.raises((InvalidInputError, NotFoundError), match=words):
        fs.apply_view(**arguments)
    assert event_files(store) == before


def test_a_source_without_the_join_key(fs, tmp_path):
    pd.DataFrame({"rider": [1], "event_ts": [NOW], "x": [1.0]}).to_parquet(tmp_path / "r.parquet")
    with pytest.raises(InvalidInputError, match="no join key column 'driver_id'"):
        fs.apply_view("riders", entity="driver", source=tmp_path / "r.parquet", timestamp_field="event_ts",
                      features={"x": "float"})


def test_bad_requests_for_training_sets(fs, source):
    good = pd.DataFrame({"driver_id": [1001], "event_timestamp": [NOW]})
    with pytest.raises(InvalidInputError, match="no 'event_timestamp' column"):
        fs.get_historical_features(good.rename(columns={"event_timestamp": "ts"}), ["driver_stats:trips"])
    with pytest.raises(NotFoundError, match="no feature view 'riders'"):
        fs.get_historical_features(good, ["riders:trips"])
    with pytest.raises(NotFoundError, match="has no feature 'speed'"):
        fs.get_historical_features(good, ["driver_stats:speed"])
    with pytest.raises(InvalidInputError, match="'view:feature'"):
        fs.get_historical_features(good, ["trips"])
    with pytest.raises(InvalidInputError, match="join key"):
        fs.get_historical_features(good.drop(columns="driver_id"), ["driver_stats:trips"])
    with pytest.raises(InvalidInputError, match="clashes"):
        fs.get_historical_features(good.assign(trips=1), ["driver_stats:trips"])
    pd.DataFrame({"driver_id": [1], "event_ts": [NOW], "conv_rate": ["high"], "trips": [1], "active": [True],
                  "city": ["x"], "created_ts": [NOW]}).to_parquet(source)  # the file changed under the view
    with pytest.raises(InvalidInputError, match="'conv_rate'"):
        fs.get_historical_features(good, ["driver_stats:conv_rate"])
    source.unlink()
    with pytest.raises(NotFoundError, match="does not exist"):
        fs.get_historical_features(good, ["driver_stats:trips"])


def test_training_set_columns_are_typed_with_nulls_where_nothing_matched(fs, store, source):
    entity = pd.DataFrame({"driver_id": [1002, 42], "event_timestamp": [NOW, NOW]})  # 42: no such driver
    got = fs.get_historical_features(entity, ["driver_stats:conv_rate", "driver_stats:trips",
                                              "driver_stats:active", "driver_stats:city"])
    assert [str(got[c].dtype) for c in ["conv_rate", "trips", "active", "city"]] == \
        ["float64", "Int64", "boolean", "string"]
    assert got.loc[0, ["conv_rate", "trips", "active", "city"]].tolist() == [0.3, 3, True, "Lima"]
    assert got.loc[1, ["trips", "active", "city"]].isna().all() and pd.isna(got.loc[1, "conv_rate"])
    fs.apply_view("trips_as_float", entity="driver", source=source, timestamp_field="event_ts",
                  features={"trips": "float"})  # an integer column read as a float feature
    assert fs.get_historical_features(entity, ["trips_as_float:trips"])["trips"].tolist()[0] == 3.0


def test_a_parquet_source_without_row_groups_has_no_rows(store, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("driver_id", pa.int64()), ("event_ts", pa.timestamp("ns", tz="UTC")), ("x", pa.float64())])
    pq.ParquetWriter(tmp_path / "none.parquet", schema).close()  # a writer that never wrote a row
    features = store.features
    features.apply_entity("driver", join_keys=["driver_id"])
    features.apply_view("none", entity="driver", source=tmp_path / "none.parquet", timestamp_field="event_ts",
                        features={"x": "float"})
    entity = pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW]})
    assert features.get_historical_features(entity, ["none:x"])["x"].isna().all()
    assert features.materialize().loc[0, "rows"] == 0


def test_online_serving_applies_the_ttl_now(fs):
    report = fs.materialize()
    assert report.loc[0, "rows"] == 4 and report.loc[0, "keys"] == 3
    online = fs.get_online_features(["driver_stats:conv_rate", "driver_stats:active", "driver_stats:city"],
                                    [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 1003},
                                     {"driver_id": 42}])
    assert online["driver_id"] == [1001, 1002, 1003, 42]
    assert online["conv_rate"] == [0.2, 0.3, None, None]  # 1003's value is 5 h old: past the 2 h ttl
    assert online["active"] == [False, True, None, None] and online["city"] == ["Oslo", "Lima", None, None]
    full = fs.get_online_features(["driver_stats:trips"], [{"driver_id": 1001}], full_feature_names=True)
    assert full == {"driver_id": [1001], "driver_stats__trips": [2]}
    views = fs.list().set_index("view")
    assert views.loc["driver_stats", "online_keys"] == 3 and views.loc["driver_stats", "source_rows"] == 4


def test_an_old_window_never_overwrites_a_newer_value(fs, store):
    fs.materialize()
    fs.materialize(start=NOW - pd.Timedelta("10h"), end=NOW - pd.Timedelta("2h"))  # holds 1001's older row
    assert fs.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1001}])["conv_rate"] == [0.2]


def test_materialization_is_incremental(fs, source):
    first = fs.materialize(end=NOW - pd.Timedelta("2h"))
    assert first.loc[0, "rows"] == 2  # 1001's 3 h old row and 1003's
    second = fs.materialize()  # from where the last one ended
    assert second.loc[0, "start"] == pytest.approx((NOW - pd.Timedelta("2h")).timestamp())
    assert second.loc[0, "rows"] == 2
    assert fs.get_online_features(["driver_stats:trips"], [{"driver_id": 1001}])["trips"] == [2]
    events = [e for e in fs._events() if e.type == "materialized"]
    assert len(events) == 2 and events[0].source_sha256 == events[1].source_sha256 != ""


def shuffled_history(rows=3000, keys=50, seed=3):
    """``rows`` snapshots of ``keys`` drivers in random order: a key's newest row may come
    before its older ones, in any batch."""
    import numpy as np

    rng = np.random.default_rng(seed)
    minutes = rng.permutation(rows)  # distinct event times: the newest row per key is unique
    return pd.DataFrame({"driver_id": rng.integers(0, keys, rows),
                         "event_ts": [NOW - pd.Timedelta(minutes=int(m)) for m in minutes],
                         "conv_rate": rng.random(rows).round(6)})


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_materialize_reads_a_source_batch_by_batch_with_the_same_result(store, tmp_path, monkeypatch, kind):
    from mltrail.features import store as feature_store

    history = shuffled_history()
    path = tmp_path / f"history.{kind}"
    if kind == "parquet":
        history.to_parquet(path, row_group_size=500)
    else:
        history.to_csv(path, index=False)  # ~120 KB: several CSV blocks
    features = store.features
    features.apply_entity("driver", join_keys=["driver_id"])
    features.apply_view("history", entity="driver", source=path, timestamp_field="event_ts",
                        features={"conv_rate": "float"})
    batch_sizes = []
    read_batches = feature_store._read_batches
    monkeypatch.setattr(feature_store, "MATERIALIZE_BATCH_ROWS", 400)
    monkeypatch.setattr(feature_store, "_read_batches",
                        lambda *a: (batch_sizes.append(b.num_rows) or b for b in read_batches(*a)))
    since = NOW - pd.Timedelta(minutes=2000)
    report = features.materialize(start=since, end=NOW)
    assert len(batch_sizes) > 1 and sum(batch_sizes) == len(history)  # it did read in batches
    window = history[history["event_ts"] >= since]
    newest = window.sort_values("event_ts").groupby("driver_id").last()
    assert report.loc[0, "rows"] == len(window) and report.loc[0, "keys"] == len(newest)
    online = features.get_online_features(["history:conv_rate"], [{"driver_id": int(k)} for k in newest.index])
    assert online["conv_rate"] == newest["conv_rate"].tolist()
    assert features.list().set_index("view").loc["history", "source_rows"] == len(history)


def test_a_source_that_fails_midway_materializes_nothing(store, tmp_path, monkeypatch):
    from mltrail.features import store as feature_store

    path = tmp_path / "history.csv"
    shuffled_history(seed=1).to_csv(path, index=False)
    features = store.features
    features.apply_entity("driver", join_keys=["driver_id"])
    features.apply_view("history", entity="driver", source=path, timestamp_field="event_ts",
                        features={"conv_rate": "float"})
    features.materialize(start=NOW - pd.Timedelta(days=30))
    drivers = [{"driver_id": k} for k in range(50)]
    before = features.get_online_features(["history:conv_rate"], drivers)
    rewritten = shuffled_history(seed=2).astype({"conv_rate": object})  # the file is replaced...
    rewritten.loc[len(rewritten) - 1, "conv_rate"] = "oops"  # ...with a bad value in its last block
    rewritten.to_csv(path, index=False)
    monkeypatch.setattr(feature_store, "MATERIALIZE_BATCH_ROWS", 400)
    with pytest.raises(InvalidInputError, match="history"):
        features.materialize(start=NOW - pd.Timedelta(days=30))
    assert features.get_online_features(["history:conv_rate"], drivers) == before  # no batch of it landed
    assert len([e for e in features._events() if e.type == "materialized"]) == 1


def test_materialize_refuses_a_backwards_window(fs):
    with pytest.raises(InvalidInputError, match="after end"):
        fs.materialize(start=NOW, end=NOW - pd.Timedelta("1h"))
    with pytest.raises(InvalidInputError, match="not a time"):
        fs.materialize(end="yesterday-ish")


def test_the_online_store_is_derived_and_rebuildable(fs, store):
    fs.materialize()
    path = store.layout.cache / "features" / "online.sqlite"
    assert path.exists() and ".cache" in path.parts
    fs.online.close()
    path.unlink()
    fresh = mltrail.Store(store.root).features
    fresh.materialize(start=NOW - pd.Timedelta(days=100))
    assert fresh.get_online_features(["driver_stats:trips"], [{"driver_id": 1002}])["trips"] == [3]
    with sqlite3.connect(path) as db:
        assert db.execute('SELECT COUNT(*) FROM "driver_stats"').fetchone()[0] == 3


def test_saved_training_sets_are_versioned_and_logged_by_runs(fs, store):
    entity = pd.DataFrame({"driver_id": [1001, 1002], "event_timestamp": [NOW, NOW]})
    train = fs.get_historical_features(entity, ["driver_stats:conv_rate", "driver_stats:trips"])
    saved = fs.save_dataset("drivers_train", train, features=["driver_stats:conv_rate", "driver_stats:trips"])
    assert saved.rows == 2 and saved.path.exists()
    again = fs.save_dataset("drivers_train", train)
    assert again.sha256 == saved.sha256  # same content, same hash, one blob
    pd.testing.assert_frame_equal(fs.load_dataset("drivers_train"), train.reset_index(drop=True),
                                  check_dtype=False)
    with store.start_run("train", log_git=False, log_packages=False) as run:
        run.log_dataset(saved.path, name="drivers_train", context="training")
    recorded = store.get_run(run.id)["datasets"].set_index("name").loc["drivers_train"]
    assert recorded["sha256"] == saved.sha256 and recorded["rows"] == 2
    assert list(fs.datasets()["dataset"]) == ["drivers_train", "drivers_train"]


def test_the_features_commands(fs, store):
    from click.testing import CliRunner

    from mltrail.cli import main

    def run(*args):
        result = CliRunner().invoke(main, [*args, "--store", str(store.root)], catch_exceptions=False)
        return result.exit_code, result.output

    code, out = run("features")
    assert code == 0 and "driver_stats" in out and "driver_id" in out and "2h" in out
    code, out = run("features", "materialize", "--view", "driver_stats")
    assert code == 0 and "4 rows in the window, 3 keys" in out
    code, out = run("features", "list")
    assert "min old" in out  # freshness: the newest value held is 30 minutes old
    code, out = run("features", "materialize", "--view", "nope")
    assert code == 1 and "no feature view 'nope'" in out


def test_names_that_collide_ignoring_case_are_refused_at_apply(fs, store, tmp_path):
    """SQLite ignores case in names: views `stats` and `Stats` shared one online table, and
    features `rate` and `Rate` failed to materialize with the write lock left held."""
    rows = pd.DataFrame({"driver_id": [1], "event_ts": [NOW], "rate": [0.1], "Rate": [0.9], "__event": [1]})
    path = tmp_path / "twins.parquet"
    rows.to_parquet(path)
    before = event_files(store)
    with pytest.raises(InvalidInputError, match="must differ ignoring case: 'rate' and 'Rate'"):
        fs.apply_view("twins", entity="driver", source=path, timestamp_field="event_ts",
                      features={"rate": "float", "Rate": "float"})
    with pytest.raises(InvalidInputError, match="differs from view 'driver_stats' only in case"):
        fs.apply_view("Driver_Stats", entity="driver", source=path, timestamp_field="event_ts",
                      features={"rate": "float"})
    with pytest.raises(InvalidInputError, match="starting with '__'"):
        fs.apply_view("events", entity="driver", source=path, timestamp_field="event_ts",
                      features={"__event": "int"})
    assert event_files(store) == before  # nothing was written
    assert len(fs.materialize()) == 1  # and the online store still takes writes


def test_a_failed_online_table_change_releases_the_write_lock(fs, store):
    fs.materialize()
    view = fs.get("driver_stats")
    broken = view.model_copy(update={"features": {**view.features, "conv_rate": "float", "Conv_Rate": "float"}})
    with pytest.raises(sqlite3.OperationalError):  # duplicate column: the table cannot be made
        fs.online._table(fs.online._db(), broken, ["driver_id"])
    other = sqlite3.connect(fs.online.path, timeout=1, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer gets the lock at once (it waited 32 s and failed)
    other.execute("ROLLBACK")
    other.close()
