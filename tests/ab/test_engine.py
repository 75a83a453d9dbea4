"""The A/B aggregation on DuckDB: out of core under a small memory limit, the same
statistics as a direct computation on per-unit data, and clear errors."""

import numpy as np
import pandas as pd
import pytest

import mltrail
from tests.factories import ab_spec, simulate


def direct_daily(store, exp):
    """Per variant and day: n, sum, sum of squares of converted-or-not, straight from the
    log lines with pandas (the reference)."""
    import orjson

    lines = [orjson.loads(line) for path in sorted(store.ab.log_folder(exp.key).glob("*.jsonl"))
             for line in path.read_bytes().splitlines() if line.strip()]
    frame = pd.DataFrame(lines)
    exposures = frame[frame["type"] == "exposure"].sort_values(["ts", "variant"])
    units = exposures.groupby("unit").agg(variant=("variant", "first"), first_ts=("ts", "first"),
                                          variants=("variant", "nunique"))
    units = units[units["variants"] == 1]
    feedback = frame[(frame["type"] == "feedback") & (frame["metric"] == "conversion")]
    converted = feedback.groupby("unit")["value"].sum() > 0
    units["y"] = units.index.map(converted).fillna(False).astype(float)
    units["day"] = pd.to_datetime(units["first_ts"], unit="s", utc=True).dt.floor("D")
    return units.groupby(["variant", "day"]).agg(n=("y", "size"), sum=("y", "sum"),
                                                 sum_sq=("y", lambda y: float((y ** 2).sum())))


def test_the_engine_s_statistics_equal_a_direct_computation(store):
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    simulate(exp, {"control": 0.1, "treatment": 0.13}, 4_000)
    for unit in ("user-1", "user-2"):  # two crossovers: served both variants
        exp.log_exposure(unit, "treatment" if exp.assign(unit) == "control" else "control")
    result = exp.results()
    daily = result.daily[result.daily["metric"] == "conversion"].set_index(["variant", "day"])[["n", "sum", "sum_sq"]]
    expected = direct_daily(store, exp)
    pd.testing.assert_frame_equal(daily.sort_index(), expected.sort_index(), check_dtype=False,
                                  check_index_type=False)  # (days in us or ns: pandas 3 against 2)
    assert result.crossover_units == 2


def test_a_tiny_memory_limit_changes_no_statistic(store, monkeypatch):
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    rng = np.random.default_rng(3)
    units = [f"u{i}" for i in range(60_000)]
    for unit, variant in zip(units, exp.assign_batch(units)):
        exp.log_exposure(unit, variant)
        if rng.random() < 0.1:
            exp.log_feedback(unit, "conversion", 1.0)
    roomy = exp.results().daily
    monkeypatch.setenv("MLTRAIL_AB_MEMORY", "20MB")
    store.ab.log_tables(exp, rebuild=True)
    tight = mltrail.Store(store.root).ab.get(exp.key).results().daily
    pd.testing.assert_frame_equal(tight, roomy)


def test_a_memory_limit_that_is_no_size_is_named(store, monkeypatch):
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    simulate(exp, {"control": 0.1, "treatment": 0.1}, 10)
    monkeypatch.setenv("MLTRAIL_AB_MEMORY", "lots")
    with pytest.raises(mltrail.InvalidInputError, match="MLTRAIL_AB_MEMORY='lots' is not a size"):
        exp.results()
