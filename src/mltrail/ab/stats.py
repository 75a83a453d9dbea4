"""A/B analysis from per-arm sufficient statistics (count, sum, sum of squares).

Formulas and sources are in docs/ab-statistics.md. Every function takes NumPy arrays as
well as numbers, so a simulation can analyse thousands of experiments in one call; the
tests check each against scipy or statsmodels called directly on the same data.

- Continuous KPIs: Welch's t-test (``scipy.stats.ttest_ind_from_stats``).
- Binary KPIs: the two-proportion z-test, pooled for the p-value (as statsmodels'
  ``proportions_ztest``), unpooled for the interval.
- Relative lift: delta-method interval (as GrowthBook's engine).
- Ratio metrics (revenue per session: Σx / Σy over an arm's units): delta-method
  variance of the ratio, a z-interval and test (as GrowthBook's ratio metrics).
- Several treatments: Holm (``statsmodels.stats.multitest.multipletests``).
- Sequential: asymptotic confidence sequences (Waudby-Smith et al. 2021), valid at
  every look, and the always-valid p-value they imply.
- CUPED: regression adjustment on a pre-experiment covariate (Deng et al. 2013).
- Health: sample-ratio mismatch (``scipy.stats.chisquare``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests

from ..errors import InvalidInputError

# A number or an array of them: every function here takes and gives either.
Floats = np.ndarray | float

SRM_ALARM_P = 0.001
SEQUENTIAL_TUNING_N = 5_000  # GrowthBook's default: the sequence is tightest near here


@dataclass(frozen=True)
class Arm:
    """Sufficient statistics of one variant for one metric (arrays allowed)."""

    n: np.ndarray | float
    sum: np.ndarray | float
    sum_sq: np.ndarray | float

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.sum) / np.asarray(self.n)

    @property
    def var(self) -> np.ndarray:
        """Sample variance, (Σy² − n·ȳ²) / (n − 1)."""
        n = np.asarray(self.n, dtype=float)
        return np.maximum(np.asarray(self.sum_sq) - n * self.mean ** 2, 0.0) / (n - 1)

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> Arm:
        data = np.asarray(values, dtype=float)
        return cls(len(data), float(data.sum()), float((data ** 2).sum()))


@dataclass(frozen=True)
class Comparison:
    """Treatment against control for one metric."""

    difference: Floats  # ȳ_T − ȳ_C
    se: Floats
    ci_low: Floats
    ci_high: Floats
    relative: Floats  # (ȳ_T − ȳ_C) / ȳ_C
    relative_ci_low: Floats
    relative_ci_high: Floats
    p_value: Floats
    sequential: bool

    @property
    def significant(self) -> np.ndarray:
        return np.asarray((self.ci_low > 0) | (self.ci_high < 0))


def compare(control: Arm, treatment: Arm, binary: bool, alpha: float = 0.05,
            sequential: bool = False, tuning_n: int = SEQUENTIAL_TUNING_N,
            with_p: bool = True) -> Comparison:
    """Difference, relative lift, their intervals, and the p-value of treatment vs control.

    ``sequential=True`` gives always-valid intervals and p-values: look as often as you
    like without inflating false positives. For a binary KPI the variance is p(1 − p)
    (the Wald interval). ``with_p=False`` skips the p-value (NaN), which for sequential
    tests is a root-find per comparison: simulations that only need the interval skip it.
    """
    n_c, n_t = np.asarray(control.n, float), np.asarray(treatment.n, float)
    m_c, m_t = control.mean, treatment.mean
    if binary:
        v_c, v_t = m_c * (1 - m_c), m_t * (1 - m_t)
    else:
        v_c, v_t = control.var, treatment.var
    diff = m_t - m_c
    se = np.sqrt(v_t / n_t + v_c / n_c)
    rel_se = np.sqrt(v_t / (n_t * m_c ** 2) + m_t ** 2 * v_c / (n_c * m_c ** 4))
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = diff / m_c
        if sequential:
            half = sequential_half_width(se, n_c + n_t, alpha, tuning_n)
            rel_half = sequential_half_width(rel_se, n_c + n_t, alpha, tuning_n)
            p = sequential_p_value(diff, se, n_c + n_t, tuning_n) if with_p else np.nan
        else:
            z = stats.norm.ppf(1 - alpha / 2)
            if binary:
                half = z * se
            else:
                dof = welch_dof(v_c, n_c, v_t, n_t)
                half = stats.t.ppf(1 - alpha / 2, dof) * se
            rel_half = z * rel_se
            if not with_p:
                p = np.nan
            else:
                p = two_proportion_p(control, treatment) if binary else welch_p(control, treatment)
    return Comparison(diff, se, diff - half, diff + half, relative, relative - rel_half,
                      relative + rel_half, p, sequential)


@dataclass(frozen=True)
class RatioArm:
    """Sufficient statistics of one variant for a ratio metric: per unit x (numerator)
    and y (denominator), their sums, sums of squares and sum of products."""

    n: float
    sum_x: float
    sum_y: float
    sum_x_sq: float
    sum_y_sq: float
    sum_xy: float

    @property
    def ratio(self) -> float:
        return self.sum_x / self.sum_y

    @property
    def ratio_var(self) -> float:
        """The delta-method variance of Σx / Σy: (s²ₓ − 2R·sₓᵧ + R²·s²ᵧ) / (n·ȳ²)."""
        n = self.n
        mx, my = self.sum_x / n, self.sum_y / n
        vx = (self.sum_x_sq - n * mx * mx) / (n - 1)
        vy = (self.sum_y_sq - n * my * my) / (n - 1)
        cov = (self.sum_xy - n * mx * my) / (n - 1)
        r = mx / my
        return max(vx - 2 * r * cov + r * r * vy, 0.0) / (n * my * my)


def compare_ratio(control: RatioArm, treatment: RatioArm, alpha: float = 0.05,
                  sequential: bool = False, tuning_n: int = SEQUENTIAL_TUNING_N) -> Comparison:
    """Treatment against control for a ratio metric: the difference of the ratios with a
    z-interval and test from their delta-method variances; the relative lift's interval by
    the delta method again. ``sequential`` as in :func:`compare`."""
    r_c, r_t = control.ratio, treatment.ratio
    v_c, v_t = control.ratio_var, treatment.ratio_var
    diff = r_t - r_c
    with np.errstate(divide="ignore", invalid="ignore"):  # (an arm without spread: NaN, never an error)
        se = np.sqrt(np.float64(v_t + v_c))
        rel_se = np.sqrt(np.float64(v_t) / r_c ** 2 + r_t ** 2 * np.float64(v_c) / r_c ** 4)
        relative = diff / r_c
        n_total = control.n + treatment.n
        if sequential:
            half = sequential_half_width(se, n_total, alpha, tuning_n)
            rel_half = sequential_half_width(rel_se, n_total, alpha, tuning_n)
            p = sequential_p_value(diff, se, n_total, tuning_n)
        else:
            z = stats.norm.ppf(1 - alpha / 2)
            half, rel_half = z * se, z * rel_se
            p = 2 * stats.norm.sf(abs(diff) / se)
    return Comparison(diff, se, diff - half, diff + half, relative, relative - rel_half, relative + rel_half,
                      p, sequential)


def welch_dof(v_c: np.ndarray, n_c: np.ndarray, v_t: np.ndarray, n_t: np.ndarray) -> np.ndarray:
    a, b = v_c / n_c, v_t / n_t
    return (a + b) ** 2 / (a ** 2 / (n_c - 1) + b ** 2 / (n_t - 1))


def welch_p(control: Arm, treatment: Arm) -> Floats:
    """Two-sided p-value of Welch's t-test from sufficient statistics (scipy)."""
    return stats.ttest_ind_from_stats(treatment.mean, np.sqrt(treatment.var), np.asarray(treatment.n),
                                      control.mean, np.sqrt(control.var), np.asarray(control.n),
                                      equal_var=False).pvalue


def two_proportion_p(control: Arm, treatment: Arm) -> np.ndarray:
    """Two-sided p-value of the pooled two-proportion z-test (statsmodels' proportions_ztest)."""
    n_c, n_t = np.asarray(control.n, float), np.asarray(treatment.n, float)
    pooled = (np.asarray(control.sum) + np.asarray(treatment.sum)) / (n_c + n_t)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    z = (treatment.mean - control.mean) / se
    return 2 * stats.norm.sf(np.abs(z))


def sequential_half_width(se: Floats, n_total: Floats, alpha: float,
                          tuning_n: int = SEQUENTIAL_TUNING_N) -> Floats:
    """Half-width of the asymptotic confidence sequence (docs/ab-statistics.md), valid at all looks."""
    sigma = se * np.sqrt(n_total)
    rho2 = (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tuning_n
    inner = 2 * (n_total * rho2 + 1) / (n_total ** 2 * rho2) * np.log(np.sqrt(n_total * rho2 + 1) / alpha)
    return sigma * np.sqrt(inner)


def sequential_p_value(diff: Floats, se: Floats, n_total: Floats,
                       tuning_n: int = SEQUENTIAL_TUNING_N) -> Floats:
    """The always-valid p-value: the smallest alpha whose confidence sequence excludes 0."""
    diff, se, n_total = np.broadcast_arrays(np.asarray(diff, float), np.asarray(se, float),
                                            np.asarray(n_total, float))
    out = np.ones(diff.shape)
    for index in np.ndindex(diff.shape):
        d, s, n = float(abs(diff[index])), se[index], n_total[index]
        if not (s > 0 and d > 0):
            continue

        def gap(log_alpha: float) -> float:
            return float(sequential_half_width(s, n, float(np.exp(log_alpha)), tuning_n)) - d

        high = float(np.log(0.999))  # at alpha = 1 the sequence is undefined (rho = 0)
        if gap(high) > 0:  # not even alpha near 1 excludes 0
            continue
        low = -700.0
        out[index] = 0.0 if gap(low) <= 0 else float(np.exp(optimize.brentq(gap, low, high)))
    return out if out.shape else float(out)


def holm(p_values: Sequence[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm-adjusted p-values and rejections over several treatments of one metric."""
    reject, adjusted, _, _ = multipletests(list(p_values), alpha=alpha, method="holm")
    return adjusted, reject


def srm_p_value(observed: Sequence[int], weights: Sequence[float]) -> float:
    """Sample-ratio mismatch: chi-squared p-value of units per variant against the weights.
    Every variant counts, empty ones too; units in a zero-weight variant mean p = 0."""
    counts = np.asarray(observed, dtype=float)
    shares = np.asarray(weights, dtype=float)
    if counts.shape != shares.shape:
        raise InvalidInputError(f"{len(counts)} variant counts for {len(shares)} weights")
    if counts.sum() == 0:
        return 1.0
    live = shares > 0
    if counts[~live].sum() > 0:
        return 0.0
    if live.sum() < 2:
        return 1.0
    expected = shares[live] / shares[live].sum() * counts.sum()
    return float(stats.chisquare(counts[live], expected).pvalue)


@dataclass(frozen=True)
class CovariateArm:
    """An arm's sufficient statistics of the KPI y and a pre-experiment covariate x."""

    y: Arm
    sum_x: float
    sum_x_sq: float
    sum_xy: float


def cuped(arms: Sequence[CovariateArm]) -> list[Arm]:
    """CUPED-adjusted arms: y − θ·(x − x̄) with θ = cov(y, x) / var(x) pooled over all arms.
    The returned Arms carry the adjusted mean and variance; run ``compare`` on them."""
    n = sum(float(a.y.n) for a in arms)
    sx, sy = sum(a.sum_x for a in arms), sum(float(a.y.sum) for a in arms)
    sxx, sxy = sum(a.sum_x_sq for a in arms), sum(a.sum_xy for a in arms)
    var_x = (sxx - sx * sx / n) / (n - 1)
    if var_x <= 0:
        raise InvalidInputError("the covariate does not vary: CUPED needs a varying pre-period value")
    theta = ((sxy - sx * sy / n) / (n - 1)) / var_x
    x_bar = sx / n
    adjusted = []
    for arm in arms:
        k = float(arm.y.n)
        mx = arm.sum_x / k
        vx = (arm.sum_x_sq - k * mx * mx) / (k - 1)
        cxy = (arm.sum_xy - k * mx * float(arm.y.mean)) / (k - 1)
        mean = float(arm.y.mean) - theta * (mx - x_bar)
        var = float(arm.y.var) + theta ** 2 * vx - 2 * theta * cxy
        # an Arm with this mean and variance: sum = k·mean, sum_sq = (k−1)·var + k·mean²
        adjusted.append(Arm(k, k * mean, (k - 1) * var + k * mean * mean))
    return adjusted
