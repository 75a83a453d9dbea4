"""The statistics against scipy/statsmodels called directly, and by simulation."""

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from mltrail.ab import power
from mltrail.ab.stats import Arm, CovariateArm, compare, cuped, holm, srm_p_value


@pytest.fixture
def rng():
    """One generator per test, seeded: a test's draws do not depend on which ran before."""
    return np.random.default_rng(20261126)


def test_welch_matches_statsmodels_on_raw_data(rng):
    control = rng.normal(10.0, 3.0, 800)
    treatment = rng.normal(10.4, 4.0, 650)
    result = compare(Arm.of(control), Arm.of(treatment), binary=False)
    assert result.p_value == pytest.approx(ttest_ind(treatment, control, usevar="unequal")[1], rel=1e-9)
    low, high = CompareMeans(DescrStatsW(treatment), DescrStatsW(control)).tconfint_diff(
        alpha=0.05, usevar="unequal")
    assert (result.ci_low, result.ci_high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))


def test_two_proportions_match_statsmodels():
    n_c, c_c, n_t, c_t = 14_745, 1_500, 14_700, 1_640
    control = Arm(n_c, c_c, c_c)  # binary: y² = y
    treatment = Arm(n_t, c_t, c_t)
    result = compare(control, treatment, binary=True)
    assert result.p_value == pytest.approx(proportions_ztest([c_t, c_c], [n_t, n_c])[1], rel=1e-9)
    low, high = confint_proportions_2indep(c_t, n_t, c_c, n_c, method="wald", compare="diff")
    assert (result.ci_low, result.ci_high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))


def test_relative_interval_is_the_delta_method_and_covers_the_truth(rng):
    control, treatment = rng.normal(50, 10, 3000), rng.normal(52, 12, 2500)
    result = compare(Arm.of(control), Arm.of(treatment), binary=False)
    m_c, m_t = control.mean(), treatment.mean()
    var = treatment.var(ddof=1) / (2500 * m_c ** 2) + m_t ** 2 * control.var(ddof=1) / (3000 * m_c ** 4)
    z = sps.norm.ppf(0.975)
    assert result.relative == pytest.approx(m_t / m_c - 1)
    assert result.relative_ci_high - result.relative_ci_low == pytest.approx(2 * z * np.sqrt(var))
    # coverage by simulation: the true lift 4% is inside about 95% of the intervals
    sims = 2000
    c = Arm(np.full(sims, 3000.0), *_normal_sums(rng, 50, 10, 3000, sims))
    t = Arm(np.full(sims, 2500.0), *_normal_sums(rng, 52, 12, 2500, sims))
    r = compare(c, t, binary=False, with_p=False)
    covered = ((r.relative_ci_low <= 0.04) & (0.04 <= r.relative_ci_high)).mean()
    assert 0.93 <= covered <= 0.97


def _normal_sums(rng, mean, sd, n, sims):
    """Σy and Σy² of `sims` samples of n normal values, drawn exactly as raw data would give."""
    data = rng.normal(mean, sd, (sims, n))
    return data.sum(axis=1), (data ** 2).sum(axis=1)


@pytest.mark.slow
def test_holm_is_statsmodels():
    adjusted, reject = holm([0.01, 0.04, 0.03])
    expected = multipletests([0.01, 0.04, 0.03], method="holm")
    assert list(adjusted) == pytest.approx(list(expected[1])) and list(reject) == list(expected[0])
    assert list(adjusted) == pytest.approx([0.03, 0.06, 0.06])


def test_sample_ratio_mismatch():
    assert srm_p_value([5_000, 5_100], [0.5, 0.5]) == pytest.approx(
        sps.chisquare([5_000, 5_100], [5_050, 5_050]).pvalue)
    assert srm_p_value([5_000, 5_100], [0.5, 0.5]) > 0.001
    assert srm_p_value([5_000, 5_400], [0.5, 0.5]) < 0.001  # the alarm
    assert srm_p_value([1_000, 0], [0.5, 0.5]) < 1e-100  # an empty variant counts
    assert srm_p_value([900, 100, 3], [0.9, 0.1, 0.0]) == 0.0  # units where none should be
    assert srm_p_value([0, 0], [0.5, 0.5]) == 1.0


def test_cuped_equals_adjusting_the_raw_data_and_shrinks_variance(rng):
    x_c, x_t = rng.normal(20, 5, 2000), rng.normal(20, 5, 2000)
    y_c = 0.8 * x_c + rng.normal(0, 3, 2000)
    y_t = 0.8 * x_t + 0.5 + rng.normal(0, 3, 2000)
    arms = [CovariateArm(Arm.of(y), x.sum(), (x ** 2).sum(), (x * y).sum())
            for y, x in ((y_c, x_c), (y_t, x_t))]
    adj_c, adj_t = cuped(arms)
    x, y = np.concatenate([x_c, x_t]), np.concatenate([y_c, y_t])
    theta = np.cov(y, x)[0, 1] / np.var(x, ddof=1)
    raw_c, raw_t = y_c - theta * (x_c - x.mean()), y_t - theta * (x_t - x.mean())
    assert float(adj_c.mean) == pytest.approx(raw_c.mean()) and float(adj_t.var) == pytest.approx(raw_t.var(ddof=1))
    plain = compare(Arm.of(y_c), Arm.of(y_t), binary=False)
    reduced = compare(adj_c, adj_t, binary=False)
    shrink = (reduced.se / plain.se) ** 2
    assert shrink == pytest.approx(1 - np.corrcoef(y, x)[0, 1] ** 2, abs=0.03)


# -- simulations: the error rates are what they claim --------------------------------------


def _binomial_arms(rng, rate_c, rate_t, n, sims):
    c = rng.binomial(n, rate_c, sims).astype(float)
    t = rng.binomial(n, rate_t, sims).astype(float)
    return Arm(np.full(sims, float(n)), c, c), Arm(np.full(sims, float(n)), t, t)


def test_aa_false_positive_rate_is_alpha(rng):
    control, treatment = _binomial_arms(rng, 0.10, 0.10, 5_000, 1_000)
    rate = (compare(control, treatment, binary=True).p_value < 0.05).mean()
    assert 0.03 <= rate <= 0.07
    c = Arm(np.full(1000, 400.0), *_normal_sums(rng, 5, 2, 400, 1000))
    t = Arm(np.full(1000, 400.0), *_normal_sums(rng, 5, 2, 400, 1000))
    assert 0.03 <= (compare(c, t, binary=False).p_value < 0.05).mean() <= 0.07


def test_power_at_the_planned_sample_size_is_about_eighty_percent(rng):
    n = power.sample_size_conversion(0.10, 0.01).control
    control, treatment = _binomial_arms(rng, 0.10, 0.11, n, 1_000)
    detected = (compare(control, treatment, binary=True).p_value < 0.05).mean()
    assert 0.75 <= detected <= 0.85


def test_sequential_tests_survive_daily_peeking_and_fixed_horizon_tests_do_not(rng):
    sims, looks, daily = 1_000, 30, 500
    c = rng.binomial(daily, 0.10, (sims, looks)).cumsum(axis=1).astype(float)
    t = rng.binomial(daily, 0.10, (sims, looks)).cumsum(axis=1).astype(float)
    n = np.broadcast_to(np.arange(1, looks + 1) * float(daily), (sims, looks))
    control, treatment = Arm(n, c, c), Arm(n, t, t)
    fixed = compare(control, treatment, binary=True)
    peeking_fixed = (fixed.p_value < 0.05).any(axis=1).mean()
    seq = compare(control, treatment, binary=True, sequential=True, with_p=False)
    peeking_sequential = seq.significant.any(axis=1).mean()
    assert peeking_fixed > 0.10  # stopping at the first p < 0.05 inflates false positives
    assert peeking_sequential <= 0.05


def test_sequential_p_value_agrees_with_its_interval():
    control, treatment = Arm(4000, 400, 400), Arm(4000, 470, 470)
    seq = compare(control, treatment, binary=True, sequential=True)
    assert (seq.p_value < 0.05) == bool(seq.significant)
    at_p = compare(control, treatment, binary=True, sequential=True, alpha=float(seq.p_value) * 1.0001)
    assert abs(at_p.ci_low) < 1e-4 or abs(at_p.ci_high) < 1e-4  # the boundary touches 0
