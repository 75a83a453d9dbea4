"""Power calculator: how many units, and how long, to detect an effect."""

import streamlit as st

from mltrail import ab
from mltrail.dashboard import charts
from mltrail.errors import InvalidInputError

st.title("Power calculator")
kind = st.radio("KPI", ["conversion rate", "continuous"], horizontal=True, key="pc_kind")
a, b, c = st.columns(3)
if kind == "conversion rate":
    baseline = a.number_input("Baseline rate", 0.0001, 0.9999, 0.10, 0.01, format="%.4f", key="pc_baseline")
    std = None
else:
    baseline = a.number_input("Baseline mean", value=50.0, key="pc_mean")
    std = a.number_input("Standard deviation", 0.0001, value=10.0, key="pc_std")
mde = b.number_input("Minimum detectable effect", 0.0001, value=0.01, step=0.005, format="%.4f", key="pc_mde")
relative = b.toggle("MDE relative to the baseline", key="pc_relative")
alpha = c.number_input("alpha", 0.001, 0.5, 0.05, 0.01, key="pc_alpha")
power = c.number_input("power", 0.5, 0.99, 0.8, 0.05, key="pc_power")
d, e = st.columns(2)
split = d.slider("Share of units in the treatment", 0.05, 0.95, 0.5, 0.05, key="pc_split")
daily = e.number_input("Eligible units a day", 1, value=5000, step=500, key="pc_daily")
coverage = e.slider("Coverage", 0.05, 1.0, 1.0, 0.05, key="pc_coverage")
ratio = split / (1 - split)
try:
    if kind == "conversion rate":
        size = ab.sample_size_conversion(baseline, mde, relative, alpha, power, ratio)
    else:
        size = ab.sample_size_continuous(std, mde, baseline, relative, alpha, power, ratio)
except InvalidInputError as exc:
    st.error(str(exc))
    st.stop()
m1, m2, m3, m4 = st.columns(4)
m1.metric("Control", f"{size.control:,}")
m2.metric("Treatment", f"{size.treatment:,}")
m3.metric("Total", f"{size.total:,}")
m4.metric("Duration", f"{size.duration_days(daily, coverage):,} days")
effects = [size.effect_size * f for f in (0.75, 1.0, 1.5)]
curve = ab.power_curve(effects, max_units=int(size.control * 2), points=40, alpha=alpha, ratio=ratio,
                       binary=kind == "conversion rate")
curve["effect"] = curve["effect_size"].map(lambda h: f"{h / size.effect_size:.2g}× the MDE")
st.altair_chart(charts.power_curve_chart(curve, size.control), width="stretch")
