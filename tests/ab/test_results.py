"""exp.results() on simulated users with known true conversion rates."""

import shutil

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportions_ztest

import mltrail
from tests.factories import AB_SPEC, ab_spec, simulate


def primary(result):
    return result.table[result.table["metric"] == "conversion"].set_index("variant")


@pytest.mark.slow
def test_a_real_lift_is_found_and_shipped(store):
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    converted = simulate(exp, {"control": 0.10, "treatment": 0.13}, 9_000)
    result = exp.results()
    table = primary(result)
    n_c, n_t = table.loc["control", "units"], table.loc["treatment", "units"]
    assert n_c + n_t == 9_000 and not result.srm_alarm and result.crossover_units == 0
    expected_p = proportions_ztest([converted["treatment"], converted["control"]], [n_t, n_c])[1]
    row = table.loc["treatment"]
    assert row["p_value"] == pytest.approx(expected_p, rel=1e-9)  # golden: statsmodels directly
    assert row["significant"] and row["relative"] > 0
    assert result.recommendation.startswith("Ship treatment")
    assert 0 < table.loc["control", "progress"] and row["power_at_mde"] > 0.8


@pytest.mark.slow
def test_no_difference_is_said_plainly(store):
    exp = store.ab.create(ab_spec(mde=0.05)).start()
    simulate(exp, {"control": 0.10, "treatment": 0.10}, 3_000, seed=3)
    result = exp.results()
    assert result.recommendation.startswith(("No difference", "Keep running"))
    assert not primary(result).loc["treatment", "significant"]


@pytest.mark.slow
def test_early_looks_say_keep_running(store):
    exp = store.ab.create(AB_SPEC).start()  # needs 14,745 per arm
    simulate(exp, {"control": 0.10, "treatment": 0.11}, 2_000)
    result = exp.results()
    assert result.recommendation.startswith("Keep running: 7% of the planned sample size")


@pytest.mark.slow
def test_sequential_short_of_its_size_without_a_result_keeps_running(store):
    exp = store.ab.create(ab_spec(sequential=True)).start()  # needs 14,745 per arm
    simulate(exp, {"control": 0.10, "treatment": 0.10}, 2_000, seed=3)
    result = exp.results()
    assert not primary(result).loc["treatment", "significant"]
    assert result.recommendation.startswith("Keep running: 7% of the planned sample size")


@pytest.mark.slow
def test_sample_ratio_mismatch_comes_first(store):
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    for i in range(3_000):
        exp.log_exposure(f"c{i}", "control")
    for i in range(2_000):
        exp.log_exposure(f"t{i}", "treatment")
    result = exp.results()
    assert result.srm_alarm and result.recommendation.startswith("Investigate")


@pytest.mark.slow
def test_crossover_units_are_counted_and_left_out(store):
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    simulate(exp, {"control": 0.1, "treatment": 0.1}, 1_000)
    exp.log_exposure("user-1", "control")
    exp.log_exposure("user-1", "treatment")
    result = exp.results()
    assert result.crossover_units == 1 and sum(result.units.values()) == 999


@pytest.mark.slow
def test_new_phase_is_analysed_alone(store):
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    simulate(exp, {"control": 0.1, "treatment": 0.1}, 1_000)
    exp = exp.set_weights({"control": 0.5, "treatment": 0.5})
    simulate(exp, {"control": 0.1, "treatment": 0.1}, 500, seed=9)
    assert sum(exp.results().units.values()) == 500
    assert sum(exp.results(phase=1).units.values()) == 1_000


@pytest.mark.slow
def test_compaction_is_incremental(store, monkeypatch):
    from mltrail.compaction import ablog

    monkeypatch.setattr(ablog, "MERGE_AT_SHARE", 10.0)  # small files stay small (Parquet's overhead varies by version)
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    simulate(exp, {"control": 0.1, "treatment": 0.1}, 2_000)
    exp.log.flush()
    first = store.ab.log_tables(exp)
    assert first.lines_read > 2_000
    assert first.lines_read_one_by_one == 0  # clean exposures and feedback: the columnar path
    again = store.ab.log_tables(exp)
    assert again.lines_read == 0 and again.unit_files == first.unit_files  # nothing new: nothing written
    more = [f"user-{i}" for i in range(1_950, 2_050)]  # 50 seen before, 50 new
    for unit, variant in zip(more, exp.assign_batch(more)):
        exp.log_exposure(unit, variant)
    exp.log.flush()
    third = store.ab.log_tables(exp)
    assert third.lines_read == 100  # only the new lines were read
    assert len(third.unit_files) == 2  # folded into a small file of their own; the big one kept
    assert third.unit_files[0] == first.unit_files[0]
    assert sum(exp.results().units.values()) == 2_050  # the repeats are no new units


@pytest.mark.slow
def test_a_merge_of_unit_files_changes_no_result(store, monkeypatch):
    from mltrail.compaction import ablog

    exp = store.ab.create(ab_spec(mde=0.02)).start()
    for seed, users in ((1, 1_000), (2, 1_200), (3, 1_300)):
        simulate(exp, {"control": 0.1, "treatment": 0.12}, users, seed=seed)
        exp.log.flush()
        store.ab.log_tables(exp)
    before = exp.results()
    monkeypatch.setattr(ablog, "MAX_UNIT_FILES", 0)  # the next compaction merges every file
    exp.log_exposure("user-late", exp.assign("user-late"))
    exp.log.flush()
    merged = store.ab.log_tables(exp)
    assert len(merged.unit_files) == 1
    after = exp.results()
    assert sum(after.units.values()) == sum(before.units.values()) + 1
    assert after.crossover_units == before.crossover_units
    totals = [r.daily[r.daily["metric"] == "conversion"][["n", "sum", "sum_sq"]].sum() for r in (before, after)]
    pd.testing.assert_series_equal(totals[1], totals[0] + pd.Series({"n": 1, "sum": 0.0, "sum_sq": 0.0}),
                                   check_dtype=False)


@pytest.mark.slow
def test_cuped_narrows_the_interval_of_a_continuous_kpi(store):
    import pandas as pd

    exp = store.ab.create(ab_spec(key="spend", primary={"name": "spend", "kind": "continuous"},
                               guardrails=[], baseline=None, std=10.0, mde=1.0)).start()
    rng = np.random.default_rng(4)
    ids = [f"u{i}" for i in range(3_000)]
    before = pd.Series(rng.normal(50, 10, len(ids)), index=ids)  # last month's spend
    for unit, variant in zip(ids, exp.assign_batch(ids)):
        exp.log_exposure(unit, variant)
        lift = 1.0 if variant == "treatment" else 0.0
        exp.log_feedback(unit, "spend", float(0.9 * before[unit] + 5 + lift + rng.normal(0, 4)))
    plain = primary_metric(exp.results(), "spend")
    adjusted = primary_metric(exp.results(covariate=before), "spend")
    width = lambda row: row["ci_high"] - row["ci_low"]
    assert width(adjusted) < 0.5 * width(plain)
    assert adjusted["ci_low"] < 1.0 < adjusted["ci_high"]  # still covers the true lift


def primary_metric(result, name):
    return result.table[result.table["metric"] == name].set_index("variant").loc["treatment"]


@pytest.mark.slow
def test_compacted_log_tables_are_plain_parquet(store):
    """Any engine can read them: units per variant and converted units from the Parquet
    files alone give the results' means."""
    import pyarrow.parquet as pq

    exp = store.ab.create(ab_spec(mde=0.02)).start()
    simulate(exp, {"control": 0.1, "treatment": 0.2}, 800)
    table = primary(exp.results())
    folder = store.root / ".cache" / "ab" / exp.key
    (units_file,) = folder.glob("units-*.parquet")
    (feedback_file,) = folder.glob("feedback-*.parquet")
    exposures = pq.read_table(units_file).to_pandas()
    feedback = pq.read_table(feedback_file).to_pandas()
    assert len(exposures) == 800 and list(exposures.columns) == ["phase", "unit", "variant", "first_ts", "crossover"]
    assert list(feedback.columns) == ["unit", "metric", "value", "ts"]  # as logged, a row a line
    converted = feedback[(feedback["metric"] == "conversion") & (feedback["value"] > 0)].drop_duplicates("unit")
    joined = exposures.merge(converted[["unit"]], on="unit", how="left", indicator=True)
    rates = joined.assign(hit=joined["_merge"] == "both").groupby("variant")["hit"].mean()
    assert rates["treatment"] == pytest.approx(table.loc["treatment", "mean"])


@pytest.mark.slow
def test_significant_only_when_the_test_and_both_intervals_agree(store):
    """A README walkthrough run found p = 0.0496 beside a lift interval of -3.5% to +58.5%:
    such a borderline result must not be called significant, nor shipped."""
    from mltrail.ab import Arm, compare

    control, treatment = Arm(n=1005, sum=103, sum_sq=103), Arm(n=995, sum=130, sum_sq=130)
    c = compare(control, treatment, binary=True)
    assert c.p_value < 0.05 and c.ci_low > 0 and c.relative_ci_low < 0  # the disagreement itself
    exp = store.ab.create(ab_spec(mde=0.05)).start()
    units = [f"user-{i}" for i in range(4_000)]
    counts = {"control": [0, 0], "treatment": [0, 0]}
    for unit, variant in zip(units, exp.assign_batch(units)):
        wanted = {"control": (1005, 103), "treatment": (995, 130)}[variant]
        if counts[variant][0] == wanted[0]:
            continue
        counts[variant][0] += 1
        exp.log_exposure(unit, variant)
        if counts[variant][1] < wanted[1]:
            counts[variant][1] += 1
            exp.log_feedback(unit, "conversion", 1.0)
    result = exp.results()
    row = primary(result).loc["treatment"]
    assert row["units"] == 995 and row["p_value"] == pytest.approx(c.p_value)
    assert not row["significant"] and not result.recommendation.startswith("Ship")


@pytest.mark.slow
def test_a_log_compacted_again_from_scratch_gives_its_own_results(tmp_path):
    """Results are cached by what they were computed from: the same experiment, its
    derived folder deleted and compacted again (generation 1 again) over other traffic
    (another branch checked out), is analysed afresh, not answered from the first."""
    root, other = tmp_path / "store", tmp_path / "other"
    mltrail.Store(root).ab.create(ab_spec(mde=0.05)).start()
    shutil.copytree(root, other)  # the same experiment, started at the same moment
    for folder, users, seed in ((root, 200, 1), (other, 300, 2)):
        exp = mltrail.Store(folder).ab.get(AB_SPEC["key"])
        simulate(exp, {"control": 0.1, "treatment": 0.1}, users, seed=seed)
        exp.log.close()
    assert primary(mltrail.Store(root).ab.get(AB_SPEC["key"]).results())["units"].sum() == 200
    shutil.rmtree(root)
    shutil.copytree(other, root)
    assert primary(mltrail.Store(root).ab.get(AB_SPEC["key"]).results())["units"].sum() == 300
