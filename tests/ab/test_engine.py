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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_conversion_window_counts_only_feedback_soon_after_the_first_exposure(store, monkeypatch):
    """Feedback before the exposure, inside the window and after it, at known times; the
    means equal a direct computation on the units, and a metric without a window still
    counts all of the phase's feedback."""
    import time as clock

    spec = ab_spec(key="windowed", primary={"name": "conversion", "kind": "binary", "window_seconds": 100.0},
                   guardrails=[{"name": "spend", "kind": "continuous"}], mde=0.02)
    exp = store.ab.create(spec).start()
    now = [clock.time() + 10]
    monkeypatch.setattr("mltrail.ab.logging._time", lambda: now[0])  # the log lines' clock
    rng = np.random.default_rng(5)
    rows = []
    for i in range(2_000):
        unit = f"u{i}"
        offset = float(rng.choice([-50.0, 10.0, 99.0, 150.0, 1_000.0]))  # before, inside, inside, after, after
        now[0] += 1.0
        exposed_at = now[0]
        exp.log_exposure(unit, exp.assign(unit))
        now[0] = exposed_at + offset
        exp.log_feedback(unit, "conversion", 1.0)
        exp.log_feedback(unit, "spend", 2.0)
        now[0] = exposed_at
        rows.append((unit, exp.assign(unit), 0 <= offset < 100.0))
    result = exp.results()
    frame = pd.DataFrame(rows, columns=["unit", "variant", "inside"])
    expected = frame.groupby("variant")["inside"].mean()
    table = result.table.set_index(["metric", "variant"])
    for variant in exp.variants:
        assert table.loc[("conversion", variant), "mean"] == pytest.approx(expected[variant], rel=1e-12)
        assert table.loc[("spend", variant), "mean"] == pytest.approx(2.0)  # no window: all of it


def test_a_window_must_be_positive(store):
    with pytest.raises(mltrail.InvalidInputError, match="window_seconds"):
        store.ab.create(ab_spec(key="bad", primary={"name": "conversion", "kind": "binary", "window_seconds": 0},
                                mde=0.02))


@pytest.mark.slow
def test_a_ratio_metric_is_the_delta_method_on_per_unit_sums(store):
    """Revenue per session: per unit the sums of revenue and of sessions; the result's
    ratios, difference, interval and p-value equal the delta method computed directly
    with numpy on those per-unit sums."""
    from scipy import stats as sps

    spec = ab_spec(key="rps", guardrails=[{"name": "revenue_per_session", "kind": "ratio",
                                           "numerator": "revenue", "denominator": "sessions"}], mde=0.02)
    exp = store.ab.create(spec).start()
    rng = np.random.default_rng(8)
    per_unit = []
    for i in range(6_000):
        unit = f"u{i}"
        variant = exp.assign(unit)
        exp.log_exposure(unit, variant)
        sessions = int(rng.integers(0, 6))
        revenue = 0.0
        for _ in range(sessions):
            exp.log_feedback(unit, "sessions", 1.0)
            if rng.random() < 0.3:
                amount = float(np.round(rng.gamma(2.0, 12.0 if variant == "treatment" else 10.0), 4))
                exp.log_feedback(unit, "revenue", amount)
                revenue += amount
        per_unit.append((variant, revenue, float(sessions)))
    row = exp.results().table.set_index(["metric", "variant"]).loc[("revenue_per_session", "treatment")]

    frame = pd.DataFrame(per_unit, columns=["variant", "x", "y"])

    def ratio_and_var(part):
        x, y, n = part["x"].to_numpy(), part["y"].to_numpy(), len(part)
        r = x.sum() / y.sum()
        cov = np.cov(x, y, ddof=1)
        return r, (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * y.mean() ** 2)

    r_c, v_c = ratio_and_var(frame[frame["variant"] == "control"])
    r_t, v_t = ratio_and_var(frame[frame["variant"] == "treatment"])
    se = np.sqrt(v_c + v_t)
    assert row["mean"] == pytest.approx(r_t, rel=1e-12)
    assert row["difference"] == pytest.approx(r_t - r_c, rel=1e-9)
    assert row["ci_low"] == pytest.approx(r_t - r_c - sps.norm.ppf(0.975) * se, rel=1e-9)
    assert row["p_value"] == pytest.approx(2 * sps.norm.sf(abs(r_t - r_c) / se), rel=1e-6)
    assert row["relative"] == pytest.approx(r_t / r_c - 1, rel=1e-9)
    assert row["significant"]  # a 20% richer treatment, 6,000 units


def test_a_ratio_metric_needs_both_parts_and_cannot_be_the_primary(store):
    with pytest.raises(mltrail.InvalidInputError, match="needs a numerator and a denominator"):
        store.ab.create(ab_spec(key="r1", guardrails=[{"name": "rps", "kind": "ratio", "numerator": "revenue"}],
                                mde=0.02))
    with pytest.raises(mltrail.InvalidInputError, match="a ratio metric can be a guardrail"):
        store.ab.create(ab_spec(key="r2", primary={"name": "rps", "kind": "ratio", "numerator": "a",
                                                   "denominator": "b"}, mde=0.02))
    exp = store.ab.create(ab_spec(key="r3", guardrails=[{"name": "rps", "kind": "ratio", "numerator": "revenue",
                                                         "denominator": "sessions"}], mde=0.02)).start()
    exp.log_feedback("u1", "revenue", 3.0)  # a ratio's parts are what is logged
    with pytest.raises(mltrail.InvalidInputError, match="unknown metric 'rps'"):
        exp.log_feedback("u1", "rps", 3.0)


@pytest.mark.slow
def test_results_by_a_dimension_equal_a_direct_computation_per_segment(store):
    """Country logged with the exposures (a unit counts under its first exposure's value;
    units without one are "(none)"): each segment's units and means equal pandas on the
    per-unit truth."""
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    rng = np.random.default_rng(2)
    truth = []
    for i in range(3_000):
        unit = f"u{i}"
        variant = exp.assign(unit)
        country = str(rng.choice(["FR", "DE", "US"])) if i % 10 else None
        exp.log_exposure(unit, variant, attributes={"country": country, "beta": True} if country else None)
        if country and rng.random() < 0.5:
            exp.log_exposure(unit, variant, attributes={"country": "XX"})  # later: the first value counts
        converted = rng.random() < (0.2 if country == "FR" else 0.1)
        if converted:
            exp.log_feedback(unit, "conversion", 1.0)
        truth.append((country or "(none)", variant, float(converted)))
    by_country = exp.results_by("country")
    frame = pd.DataFrame(truth, columns=["segment", "variant", "y"])
    assert sorted(by_country.segments) == ["(none)", "DE", "FR", "US"]
    table = by_country.table
    conversion = table[table["metric"] == "conversion"].set_index(["segment", "variant"])
    expected = frame.groupby(["segment", "variant"])["y"].agg(["mean", "size"])
    for (segment, variant), row in expected.iterrows():
        assert conversion.loc[(segment, variant), "units"] == row["size"]
        assert conversion.loc[(segment, variant), "mean"] == pytest.approx(row["mean"], rel=1e-12)
    assert sum(r.units["control"] + r.units["treatment"] for r in by_country.segments.values()) == 3_000
    assert exp.results_by("beta").segments.keys() == {"true", "(none)"}  # booleans logged as text
    with pytest.raises(mltrail.InvalidInputError, match="attribute 'country' must be text"):
        exp.log_exposure("u-bad", "control", attributes={"country": ["FR"]})


@pytest.mark.slow
def test_the_command_line_reads_results_by_a_dimension(store):
    import json

    from click.testing import CliRunner

    from mltrail.cli import main

    exp = store.ab.create(ab_spec(mde=0.02)).start()
    for i in range(300):
        exp.log_exposure(f"u{i}", exp.assign(f"u{i}"), attributes={"platform": "ios" if i < 100 else "web"})
    exp.log.flush()
    shown = CliRunner().invoke(main, ["ab", "results", exp.key, "--by", "platform", "--store", str(store.root)])
    assert shown.exit_code == 0 and "platform = ios" in shown.output and "platform = web" in shown.output
    answer = CliRunner().invoke(main, ["ab", "results", exp.key, "--by", "platform", "--json", "--store", str(store.root)])
    rows = json.loads(answer.output)["table"]
    assert {r["segment"] for r in rows} == {"ios", "web"}
    assert sum(r["units"] for r in rows if r["metric"] == "conversion") == 300


@pytest.mark.slow
def test_results_by_on_an_empty_experiment_and_a_quoted_name(store):
    """Nothing logged yet: no segment; a dimension or attribute value with quotes and
    markup is a value like any other (the SQL never splices it unescaped)."""
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    assert exp.results_by("country").segments == {} and exp.dimensions() == []
    odd = "it's <b>\"x\"</b>"
    for i in range(40):
        exp.log_exposure(f"u{i}", exp.assign(f"u{i}"), attributes={odd: odd if i % 2 else "plain"})
    by = exp.results_by(odd)
    assert sorted(by.segments) == sorted([odd, "plain"]) and exp.dimensions() == [odd]
    assert sum(sum(r.units.values()) for r in by.segments.values()) == 40
