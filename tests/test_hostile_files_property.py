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


def _line(raw: bytes) -> bytes:
    return raw if raw.endswith(b"\n") else raw + b"\n"


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_junk=GARBAGE, log_junk=GARBAGE, registry_junk=GARBAGE, feature_junk=GARBAGE)
@example(run_junk=b'{"v":0,"type":[]}', log_junk=b"", registry_junk=b"", feature_junk=b"")  # found: a list type
@example(run_junk=b'{"v":1,"type":"metric","ts":1,"run":"R","seq":1,"key":"k","value":1,"step":' + str(2**64).encode()
         + b"}", log_junk=b'{"v":1,"type":"exposure","ts":1e20}', registry_junk=b"[" * 3000, feature_junk=b"\xff")
def test_appended_junk_never_breaks_a_reader_and_good_lines_count(run_junk, log_junk, registry_junk, feature_junk):
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
        with open(segment, "ab") as handle:
            handle.write(_line(log_junk) + orjson.dumps(good_exposure) + b"\n")
        (store.root / "registry" / "m" / "0junk.jsonl").write_bytes(registry_junk)
        (store.root / "features").mkdir(exist_ok=True)
        (store.root / "features" / "0junk.jsonl").write_bytes(feature_junk)

        fresh = mltrail.Store(store.root)
        assert fresh.metric_history()["step"].tolist() == [1, 2]  # the good line after the junk counts
        assert list(fresh.search_runs()["run_name"]) == ["r"]
        assert sum(fresh.ab.get(exp.key).results().units.values()) == 2
        assert list(fresh.ab.list()["key"]) == [exp.key]
        assert list(fresh.registry.list()["model"]) == ["m"]
        fresh.features.apply_entity("driver", ["driver_id"])  # the folder still takes definitions
        assert list(fresh.features.entities()["entity"]) == ["driver"]
        assert fresh.features.list().empty
