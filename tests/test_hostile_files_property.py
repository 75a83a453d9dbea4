"""Whatever is appended to an event file, reading never raises and every well-formed line
still counts (issue 13, "done when"): arbitrary bytes and arbitrary JSON values, appended
to a run's file, an A/B log segment, and as files of their own to the registry and the
feature store's folders, each followed by a well-formed event."""

import json
import tempfile
import warnings
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mltrail
from tests.factories import ab_spec, quiet_run

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
FIELDS = st.dictionaries(st.sampled_from(["v", "type", "ts", "run", "seq", "key", "value", "step", "unit",
                                          "variant", "phase", "metric", "experiment", "sha256", "size"]),
                         JSON, max_size=8)
# the json module writes ints past 64 bits as they are, and inf as `Infinity`: both junk
GARBAGE = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda v: json.dumps(v).encode()),
    FIELDS.map(lambda v: json.dumps(v).encode()),
    FIELDS.map(lambda v: json.dumps({"v": 1, "type": "metric", **v}).encode()),
    FIELDS.map(lambda v: json.dumps({"v": 1, "type": "exposure", **v}).encode()),
)
# numbers at and past every bound: json.dumps writes NaN, Infinity and ints past 64 bits
NUMBER = st.one_of(st.floats(), st.integers(min_value=-(2**70), max_value=2**70),
                   st.sampled_from([1.7e15, 1.7e12, -1.0, 1e300, 2**63, 0]))
# an A/B log line well formed but for one number: (kind, field, value)
LOG_NUMBER = st.tuples(st.sampled_from(["exposure", "feedback"]), st.sampled_from(["v", "ts", "seq", "phase", "value"]),
                       NUMBER)
# a lifecycle event file, junk or well formed with arbitrary times, weights, winners, coverage
LIFECYCLE = st.one_of(GARBAGE, st.builds(
    lambda kind, fields: json.dumps({"v": 1, "type": kind, "ts": 1.0, "experiment": "ranker-v2", **fields}).encode(),
    st.sampled_from(["ab_started", "ab_paused", "ab_stopped", "ab_phase", "ab_coverage"]),
    st.fixed_dictionaries({}, optional={
        "ts": NUMBER, "winner": st.sampled_from(["treatment", "contrl", ""]), "reason": st.text(max_size=5),
        "weights": st.dictionaries(st.sampled_from(["control", "treatment", "contrl"]), NUMBER, max_size=3),
        "coverage": NUMBER, "seed": st.text(max_size=5)})))


def _line(raw: bytes) -> bytes:
    return raw if raw.endswith(b"\n") else raw + b"\n"


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_junk=GARBAGE, log_junk=GARBAGE, registry_junk=GARBAGE, feature_junk=GARBAGE, log_number=LOG_NUMBER,
       lifecycle_junk=LIFECYCLE)
@example(run_junk=b'{"v":0,"type":[]}', log_junk=b"", registry_junk=b"", feature_junk=b"",  # found: a list type
         log_number=("exposure", "phase", 1), lifecycle_junk=b"")
@example(run_junk=b'{"v":1,"type":"metric","ts":1,"run":"R","seq":1,"key":"k","value":1,"step":' + str(2**64).encode()
         + b"}", log_junk=b'{"v":1,"type":"exposure","ts":1e20}', registry_junk=b"[" * 3000, feature_junk=b"\xff",
         log_number=("exposure", "ts", 1.7e15),  # found (issue 26): results() raised OutOfBoundsDatetime
         lifecycle_junk=b'{"v":1,"type":"ab_phase","ts":1.0,"experiment":"ranker-v2","seed":"s",'
                        b'"weights":{"contrl":0.5,"treatment":0.5}}')  # found (issue 26): KeyError 'control'
def test_appended_junk_never_breaks_a_reader_and_good_lines_count(run_junk, log_junk, registry_junk, feature_junk,
                                                                  log_number, lifecycle_junk):
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", mltrail.SkippedLinesWarning)  # the junk is reported; that is fine
        store = mltrail.Store(Path(tmp) / "s")
        with quiet_run(store, "e", name="r") as run:
            run.log_metric("f1", 0.5, step=1)
        exp = store.ab.create(ab_spec()).start()
        exp.log_exposure("u1", exp.assign("u1"))
        exp.log.flush()
        (segment,) = exp.log.segments
        store.registry.create("m")

        good_point = {"v": 1, "type": "metric", "ts": 2.0, "run": run.id, "seq": 999, "key": "f1",
                      "value": 0.9, "step": 2}
        with open(run.path, "ab") as handle:
            handle.write(_line(run_junk) + orjson.dumps(good_point) + b"\n")
        good_exposure = {"v": 1, "type": "exposure", "ts": 2.0, "experiment": exp.key, "seq": 999,
                         "unit": "u2", "variant": "control", "phase": 1}
        kind, name, number = log_number
        numbered = {"v": 1, "type": kind, "ts": 2.0, "experiment": exp.key, "seq": 998, "unit": "u1",
                    **({"variant": exp.assign("u1"), "phase": 1} if kind == "exposure" else
                       {"metric": "conversion", "value": 1.0}), name: number}
        with open(segment, "ab") as handle:
            handle.write(_line(log_junk) + _line(json.dumps(numbered).encode()) + orjson.dumps(good_exposure) + b"\n")
        (store.root / "ab" / exp.key / "lifecycle" / "09junk.jsonl").write_bytes(lifecycle_junk)
        (store.root / "registry" / "m" / "0junk.jsonl").write_bytes(registry_junk)
        (store.root / "features").mkdir(exist_ok=True)
        (store.root / "features" / "0junk.jsonl").write_bytes(feature_junk)

        fresh = mltrail.Store(store.root)
        assert fresh.metric_history()["step"].tolist() == [1, 2]  # the good line after the junk counts
        assert list(fresh.search_runs()["run_name"]) == ["r"]
        assert sum(fresh.ab.get(exp.key).results(phase=1).units.values()) == 2  # (the junk may start phase 2)
        assert list(fresh.ab.list()["key"]) == [exp.key]
        assert list(fresh.registry.list()["model"]) == ["m"]
        fresh.features.apply_entity("driver", ["driver_id"])  # the folder still takes definitions
        assert list(fresh.features.entities()["entity"]) == ["driver"]
        assert fresh.features.list().empty
