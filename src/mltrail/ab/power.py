"""Planning an experiment: how many units, and for how long (statsmodels' power analysis).

Every size is per arm, rounded up (a minimum sample size is never rounded down);
``exact`` keeps statsmodels' unrounded figures. ``ratio`` is treatment units per
control unit, so a 90/10 split is ``ratio=1/9``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ..errors import InvalidInputError


@dataclass(frozen=True)
class SampleSize:
    """The minimum units for a two-arm comparison at the given alpha and power."""

    control: int
    treatment: int
    exact_control: float
    exact_treatment: float
    effect_size: float
    alpha: float
    power: float
    ratio: float

    @property
    def total(self) -> int:
        return self.control + self.treatment

    def duration_days(self, daily_units: float, coverage: float = 1.0) -> int:
        """Days until both arms are full, at ``daily_units`` eligible units a day of
        which ``coverage`` enter the experiment."""
        return duration_days(self.total, daily_units, coverage)


def _check(alpha: float, power: float, ratio: float) -> None:
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be in (0, 1), not {alpha}")
    if not 0 < power < 1:
        raise InvalidInputError(f"power must be in (0, 1), not {power}")
    if not ratio > 0:
        raise InvalidInputError(f"ratio (treatment units per control unit) must be > 0, not {ratio}")


@contextmanager
def _solver_quiet() -> Iterator[None]:
    """statsmodels warns when its root finder fails and returns NaN; the NaN is checked
    in _result and becomes one clear error instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


MAX_UNITS = 1e12  # more units per arm than any experiment sees: the effect is undetectable


def _result(n_control: float, effect: float, alpha: float, power: float, ratio: float) -> SampleSize:
    if not math.isfinite(n_control) or n_control * max(ratio, 1.0) > MAX_UNITS or n_control <= 0:
        # statsmodels' solver gives NaN (or no root) for effects this small or settings this extreme
        raise InvalidInputError(f"statsmodels' power solver found no sample size for an effect size of "
                                f"{effect:.3g} at alpha {alpha} and power {power} (or one over {MAX_UNITS:.0e} "
                                "units per arm): check the MDE against the KPI's baseline or std, and alpha "
                                "and power")
    return SampleSize(math.ceil(n_control), math.ceil(n_control * ratio), n_control,
                      n_control * ratio, effect, alpha, power, ratio)


def sample_size(effect_size: float, alpha: float = 0.05, power: float = 0.8,
                ratio: float = 1.0) -> SampleSize:
    """Units per arm for a two-sample t-test to detect a standardised ``effect_size``
    (Cohen's d). ``sample_size(0.05).control`` is 6,281 (statsmodels: 6,280.05)."""
    _check(alpha, power, ratio)
    if not effect_size or effect_size != effect_size:
        raise InvalidInputError(f"effect_size must be a non-zero number, not {effect_size}")
    with _solver_quiet():
        n = TTestIndPower().solve_power(effect_size=abs(effect_size), alpha=alpha, power=power,
                                        ratio=ratio)
    return _result(float(n), abs(effect_size), alpha, power, ratio)


def sample_size_conversion(baseline: float, mde: float, relative: bool = False, alpha: float = 0.05,
                           power: float = 0.8, ratio: float = 1.0) -> SampleSize:
    """Units per arm to detect a change of a conversion rate from ``baseline`` by ``mde``
    (absolute, or relative with ``relative=True``), via Cohen's h and a z-test.
    10% → 11% needs 14,745 per arm (statsmodels: 14,744.1)."""
    _check(alpha, power, ratio)
    target = baseline * (1 + mde) if relative else baseline + mde
    if not 0 < baseline < 1 or not 0 < target < 1 or target == baseline:
        raise InvalidInputError(
            f"conversion rates must be in (0, 1) and differ: baseline {baseline}, with the MDE {target}")
    h = abs(proportion_effectsize(target, baseline))
    with _solver_quiet():
        n = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio)
    return _result(float(n), float(h), alpha, power, ratio)


def sample_size_continuous(std: float, mde: float, mean: float | None = None, relative: bool = False,
                           alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> SampleSize:
    """Units per arm to detect a change ``mde`` of a continuous KPI with standard
    deviation ``std`` (``relative=True``: ``mde`` is a share of ``mean``)."""
    if not std > 0:
        raise InvalidInputError(f"std must be > 0, not {std}")
    if relative:
        if not mean:
            raise InvalidInputError("a relative MDE needs the baseline mean")
        mde = mde * mean
    return sample_size(mde / std, alpha, power, ratio)


def duration_days(total_units: int, daily_units: float, coverage: float = 1.0) -> int:
    """Whole days to collect ``total_units`` at ``daily_units`` eligible units a day."""
    if not daily_units > 0 or not 0 < coverage <= 1:
        raise InvalidInputError(
            f"daily units must be > 0 and coverage in (0, 1], not {daily_units} and {coverage}")
    return math.ceil(total_units / (daily_units * coverage))


def achieved_power(effect_size: float, n_control: int, ratio: float = 1.0, alpha: float = 0.05,
                   binary: bool = False) -> float:
    """Power to detect ``effect_size`` with the units collected so far."""
    if n_control < 2:
        return 0.0
    engine = NormalIndPower() if binary else TTestIndPower()
    return float(engine.power(effect_size=abs(effect_size), nobs1=n_control, alpha=alpha, ratio=ratio))


def power_curve(effect_sizes: Sequence[float], max_units: int, points: int = 50, alpha: float = 0.05,
                ratio: float = 1.0, binary: bool = False) -> pd.DataFrame:
    """Power against units per control arm for several effect sizes, for a chart:
    columns ``effect_size, units, power``."""
    rows = []
    for effect in effect_sizes:
        for i in range(1, points + 1):
            units = max(2, round(max_units * i / points))
            rows.append({"effect_size": effect, "units": units,
                         "power": achieved_power(effect, units, ratio, alpha, binary)})
    return pd.DataFrame(rows)
