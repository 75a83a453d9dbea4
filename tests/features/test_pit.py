"""The point-in-time rule, clause by clause: a golden table, then hypothesis against a
brute-force reading of the rule."""

import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import mltrail

T0 = pd.Timestamp("2026-03-01 12:00")  # naive: UTC


def at(minutes):
    return T0 + pd.Timedelta(minutes=minutes)


# driver_id, event_ts, created_ts, conv_rate, trips
VIEW_ROWS = [
    (1, at(0), at(1), 0.10, 1),
    (1, at(60), at(60), 0.20, 2),     # exact-time match for T = at(60), known at once
    (1, at(60), at(90), 0.25, 3),     # tie on event time: created later, wins; known only from at(90)
    (2, at(-120), at(-119), 0.50, 5),  # the ttl edge: T - 2h exactly for T = at(0)
    (2, at(-121), at(-120), 0.40, 4),
    (3, at(500), at(501), 0.90, 9),    # only in the future of every entity row
    (4, at(10), at(50), 0.70, 7),      # backfilled: known 40 minutes after its event time
]


@pytest.fixture
def fs(store, tmp_path):
    frame = pd.DataFrame(VIEW_ROWS, columns=["driver_id", "event_ts", "created_ts", "conv_rate", "trips"])
    frame.to_parquet(tmp_path / "driver_stats.parquet")
    features = store.features
    features.apply_entity("driver", join_keys=["driver_id"])
    features.apply_view("driver_stats", entity="driver", source=tmp_path / "driver_stats.parquet",
                        timestamp_field="event_ts", created_timestamp_field="created_ts", ttl="2h",
                        features={"conv_rate": "float", "trips": "int"})
    features.apply_view("driver_forever", entity="driver", source=tmp_path / "driver_stats.parquet",
                        timestamp_field="event_ts", created_timestamp_field="created_ts",
                        features={"conv_rate": "float"})  # no ttl: no lower bound
    return features


# entity rows: driver_id, event_timestamp, note; expected conv_rate (default rule), expected with as_known_then
GOLDEN = [
    (1, at(60), "exact time, tie on event time: the later-created row", 0.25, 0.20),
    (1, at(59), "just before: the row of at(0)", 0.10, 0.10),
    (1, at(95), "after the tie is known", 0.25, 0.25),
    (1, at(181), "ttl: at(60) is 2h01m old", None, None),
    (1, at(180), "ttl edge: exactly 2h old is kept", 0.25, 0.25),
    (2, at(0), "ttl edge on the newest candidate", 0.50, 0.50),
    (2, at(1), "the newest candidate is 2h01m old", None, None),
    (3, at(100), "every row is in the future", None, None),
    (99, at(100), "unknown key", None, None),
    (1, at(60), "a duplicate entity row", 0.25, 0.20),
    (4, at(20), "backfilled later: known then? no", 0.70, None),
    (4, at(100), "backfilled row known by now", 0.70, 0.70),
]


def entity_frame():
    frame = pd.DataFrame([(d, t, note) for d, t, note, *_ in GOLDEN],
                         columns=["driver_id", "event_timestamp", "note"])
    frame.index = [f"row{i}" for i in range(len(frame))][::-1]  # a non-default index survives
    return frame


def expected(column):
    return [row[column] for row in GOLDEN]


def test_golden_table(fs):
    entity = entity_frame()
    result = fs.get_historical_features(entity, ["driver_stats:conv_rate", "driver_stats:trips"])
    pd.testing.assert_frame_equal(result[entity.columns], entity)  # input unchanged, order kept
    assert list(result.index) == list(entity.index)
    got = [None if pd.isna(v) else v for v in result["conv_rate"]]
    assert got == expected(3), list(zip(entity["note"], got, expected(3)))
    assert str(result["trips"].dtype) == "Int64"
    assert result["trips"].iloc[0] == 3 and pd.isna(result["trips"].iloc[3])


def test_golden_table_as_known_then(fs):
    result = fs.get_historical_features(entity_frame(), ["driver_stats:conv_rate"], as_known_then=True)
    got = [None if pd.isna(v) else v for v in result["conv_rate"]]
    assert got == expected(4), list(zip(entity_frame()["note"], got, expected(4)))


def test_without_ttl_there_is_no_lower_bound_and_full_names(fs):
    entity = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [at(10_000), at(10_000)]})
    result = fs.get_historical_features(entity, ["driver_forever:conv_rate", "driver_stats:conv_rate"],
                                        full_feature_names=True)
    assert list(result["driver_forever__conv_rate"]) == [0.25, 0.50]
    assert result["driver_stats__conv_rate"].isna().all()


def test_timezones_are_compared_as_instants(fs):
    berlin = pd.Timestamp(at(60)).tz_localize("UTC").tz_convert("Europe/Berlin")  # 13:00 in Berlin
    entity = pd.DataFrame({"driver_id": [1], "event_timestamp": [berlin]})
    assert fs.get_historical_features(entity, ["driver_stats:conv_rate"])["conv_rate"].iloc[0] == 0.25


def test_two_join_keys(store, tmp_path):
    rows = pd.DataFrame({"store_id": [1, 1, 2], "item": ["a", "b", "a"],
                         "ts": [at(0), at(0), at(0)], "price": [1.0, 2.0, 3.0]})
    rows.to_csv(tmp_path / "prices.csv", index=False)  # a CSV source
    fs = store.features
    fs.apply_entity("shelf", join_keys=["store_id", "item"])
    fs.apply_view("prices", entity="shelf", source=tmp_path / "prices.csv", timestamp_field="ts",
                  features={"price": "float"})
    entity = pd.DataFrame({"store_id": [2, 1, 1, 2], "item": ["a", "b", "a", "b"],
                           "event_timestamp": [at(5)] * 4})
    assert list(fs.get_historical_features(entity, ["prices:price"])["price"].fillna(-1)) == [3.0, 2.0, 1.0, -1]


def test_a_key_that_is_no_key_of_the_view_is_refused_not_truncated(fs):
    entity = pd.DataFrame({"driver_id": [1001.9], "event_timestamp": [at(5)]})  # driver 1001 is not 1001.9
    with pytest.raises(mltrail.InvalidInputError, match="holds 1001.9, which is no int64 key"):
        fs.get_historical_features(entity, ["driver_stats:conv_rate"])
    whole = pd.DataFrame({"driver_id": [1.0], "event_timestamp": [at(5)]})  # 1.0 is driver 1: exact
    as_int = whole.astype({"driver_id": "int64"})
    got = fs.get_historical_features(whole, ["driver_stats:conv_rate"])["conv_rate"].iloc[0]
    assert got == fs.get_historical_features(as_int, ["driver_stats:conv_rate"])["conv_rate"].iloc[0]
    assert not pd.isna(got)


@pytest.mark.slow
def test_four_join_keys_of_many_values_join_exactly(store, tmp_path):
    """Four keys of 70,000 values each: their mixed-radix code overflowed int64, and the
    entity (0, 0, 0, 0), which the view does not have, got the value of the view's key
    coded (53780, 41647, 48707, 61616): 53780 * 70000**3 + ... is 0 modulo 2**64."""
    import numpy as np

    n = 70_000
    i = np.arange(n)
    keys = {f"k{j}": (i + j) % n for j in range(4)}  # no row is (0, 0, 0, 0)
    rows = pd.DataFrame({**keys, "value": np.zeros(n)})
    # the key whose codes (first-seen order, the entity's 0 first) are 53780, 41647, 48707, 61616
    codes = {"k0": 53780, "k1": 41647, "k2": 48707, "k3": 61616}
    twin = pd.DataFrame({k: [int(pd.unique(np.concatenate([[0], keys[k]]))[c])] for k, c in codes.items()})
    twin["value"] = 999.0
    rows = pd.concat([rows, twin], ignore_index=True).assign(ts=at(0))
    rows.to_parquet(tmp_path / "wide.parquet")
    fs = store.features
    fs.apply_entity("quad", join_keys=list(keys))
    fs.apply_view("wide", entity="quad", source=tmp_path / "wide.parquet", timestamp_field="ts",
                  features={"value": "float"})
    missing = pd.DataFrame({"k0": [0], "k1": [0], "k2": [0], "k3": [0], "event_timestamp": [at(5)]})
    assert pd.isna(fs.get_historical_features(missing, ["wide:value"])["value"].iloc[0])
    present = twin.drop(columns="value").assign(event_timestamp=at(5))
    assert fs.get_historical_features(present, ["wide:value"])["value"].iloc[0] == 999.0


def brute_force(view, entity, ttl, as_known_then):
    """The rule read literally, one entity row at a time."""
    answers = []
    for key, t in entity:
        candidates = [r for r in view if r[0] == key and r[1] <= t and (ttl is None or r[1] >= t - ttl)
                      and (not as_known_then or r[2] <= t)]
        if not candidates:
            answers.append(None)
            continue
        best = max(range(len(candidates)), key=lambda i: (candidates[i][1], candidates[i][2], i))
        answers.append(candidates[best][3])
    return answers


minutes = st.integers(min_value=0, max_value=40)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(view=st.lists(st.tuples(st.integers(0, 3), minutes, st.integers(0, 10)), min_size=1, max_size=25),
       entity=st.lists(st.tuples(st.integers(0, 4), minutes), min_size=1, max_size=15),
       ttl=st.one_of(st.none(), st.integers(0, 20)), as_known_then=st.booleans())
def test_matches_the_rule_read_literally(tmp_path_factory, view, entity, ttl, as_known_then):
    assume(ttl != 0)  # a zero ttl is refused (a bad-input test covers it)
    folder = tmp_path_factory.mktemp("pit")
    rows = [(k, at(e), at(e + lag), float(i)) for i, (k, e, lag) in enumerate(view)]
    pd.DataFrame(rows, columns=["k", "e", "c", "value"]).to_parquet(folder / "v.parquet")
    fs = mltrail.Store(folder / "store").features
    fs.apply_entity("thing", join_keys=["k"])
    fs.apply_view("v", entity="thing", source=folder / "v.parquet", timestamp_field="e",
                  created_timestamp_field="c", ttl=None if ttl is None else f"{ttl}min",
                  features={"value": "float"})
    frame = pd.DataFrame([(k, at(t)) for k, t in entity], columns=["k", "event_timestamp"])
    got = fs.get_historical_features(frame, ["v:value"], as_known_then=as_known_then)["value"]
    want = brute_force(rows, [(k, at(t)) for k, t in entity],
                       None if ttl is None else pd.Timedelta(minutes=ttl), as_known_then)
    assert [None if pd.isna(v) else v for v in got] == want
