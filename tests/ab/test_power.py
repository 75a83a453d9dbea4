"""Planning figures against statsmodels called directly, and the issue's golden values."""

import math

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from mltrail import InvalidInputError
from mltrail.ab import power


def test_t_test_sample_size_golden():
    size = power.sample_size(0.05)
    assert size.exact_control == pytest.approx(6280.05, abs=0.01)
    assert (size.control, size.treatment, size.total) == (6281, 6281, 12562)


def test_conversion_sample_size_golden_and_unequal_split():
    even = power.sample_size_conversion(0.10, 0.01)
    assert even.exact_control == pytest.approx(14744.1, abs=0.05) and even.control == 14745
    assert power.sample_size_conversion(0.10, 0.10, relative=True).control == even.control
    split = power.sample_size_conversion(0.10, 0.01, ratio=1 / 9)  # 90% control, 10% treatment
    assert split.exact_control == pytest.approx(73720.5, abs=0.1)
    assert (split.control, split.treatment) == (73721, 8192)
    assert split.total > even.total  # an uneven split costs more users


def test_continuous_matches_statsmodels():
    size = power.sample_size_continuous(std=20.0, mde=1.0, alpha=0.01, power=0.9, ratio=2.0)
    expected = TTestIndPower().solve_power(effect_size=1 / 20, alpha=0.01, power=0.9, ratio=2.0)
    assert size.exact_control == pytest.approx(expected)
    assert size.treatment == math.ceil(expected * 2)
    relative = power.sample_size_continuous(std=20.0, mde=0.02, mean=50.0, relative=True)
    assert relative.control == power.sample_size(1 / 20).control


def test_duration_and_achieved_power():
    size = power.sample_size_conversion(0.10, 0.01)
    assert size.duration_days(daily_units=5000, coverage=0.5) == math.ceil(29490 / 2500)
    h = proportion_effectsize(0.11, 0.10)
    assert power.achieved_power(h, 14745, binary=True) == pytest.approx(
        NormalIndPower().power(h, nobs1=14745, alpha=0.05), abs=1e-12)
    assert power.achieved_power(h, 14745, binary=True) >= 0.8


def test_power_curve_rises_with_units():
    curve = power.power_curve([0.05, 0.1], max_units=10_000, points=20)
    for _, group in curve.groupby("effect_size"):
        assert group["power"].is_monotonic_increasing
    assert set(curve.columns) == {"effect_size", "units", "power"}


@pytest.mark.parametrize("call", [
    lambda: power.sample_size(0.0), lambda: power.sample_size(0.1, alpha=1.5),
    lambda: power.sample_size(0.1, ratio=0), lambda: power.sample_size_conversion(0.0, 0.01),
    lambda: power.sample_size_conversion(0.995, 0.01), lambda: power.sample_size_continuous(0.0, 1.0),
    lambda: power.sample_size_continuous(1.0, 0.1, relative=True), lambda: power.duration_days(10, 0),
])
def test_bad_planning_input_is_a_clear_error(call):
    with pytest.raises(InvalidInputError):
        call()
