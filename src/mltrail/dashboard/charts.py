"""Altair charts of runs: metric histories, parallel coordinates, scatter."""

from __future__ import annotations

import altair as alt
import pandas as pd

from .views import numeric


def history_chart(history: pd.DataFrame, key: str, names: dict[str, str], x: str = "step",
                  log_scale: bool = False) -> alt.Chart:
    """One line per run for one metric; x is ``step`` or ``timestamp``."""
    data = history[history["key"] == key].assign(run=lambda d: d["run_id"].map(names))
    if log_scale:
        data = data[data["value"] > 0]  # a log axis has no place for zero or below
    return alt.Chart(data, title=key).mark_line(point=len(data) < 200).encode(
        x=alt.X(x, title=x, type="temporal" if x == "timestamp" else "quantitative"),
        y=alt.Y("value", title=key, scale=alt.Scale(type="log" if log_scale else "linear")),
        color=alt.Color("run:N", title="run"),
        tooltip=["run", "step", "value", "timestamp"],
    ).properties(height=260)


def parallel_coordinates(runs: pd.DataFrame, params: list[str], metric: str) -> alt.Chart:
    """Each run a line across its params (normalised to 0..1), coloured by ``metric``."""
    columns = [*params, metric]
    data = runs[["run_name", *columns]].copy()
    for column in columns:
        values = numeric(data[column])
        if not pd.api.types.is_numeric_dtype(values):  # categories: evenly spaced codes
            values = values.astype("category").cat.codes.astype(float).where(values.notna())
        span = values.max() - values.min()
        data[column] = (values - values.min()) / span if span else 0.5
    long = data.melt(id_vars="run_name", value_vars=columns, var_name="axis", value_name="position")
    colour = runs.set_index("run_name")[metric]
    long["colour"] = long["run_name"].map(colour)
    return alt.Chart(long, title=f"params against {metric}").mark_line(opacity=0.7).encode(
        x=alt.X("axis:N", sort=columns, title=None),
        y=alt.Y("position:Q", title="scaled value", axis=alt.Axis(format="%")),
        color=alt.Color("colour:Q", title=metric, scale=alt.Scale(scheme="viridis")),
        detail="run_name:N",
        tooltip=["run_name", "axis", "colour"],
    ).properties(height=320)


def scatter(runs: pd.DataFrame, x: str, y: str) -> alt.Chart:
    data = runs[["run_name", x, y]].copy()
    data[x], data[y] = numeric(data[x]), numeric(data[y])
    return alt.Chart(data, title=f"{y} against {x}").mark_circle(size=80).encode(
        x=alt.X(x, title=x), y=alt.Y(y, title=y), tooltip=["run_name", x, y],
    ).properties(height=320)


def intervals(table: pd.DataFrame, metric: str) -> alt.Chart:
    """Each treatment's relative lift against control with its confidence interval."""
    rows = table[(table["metric"] == metric) & ~table["control"] & table["relative"].notna()]
    data = pd.DataFrame({"variant": rows["variant"], "lift": rows["relative"],
                         "low": rows["relative_ci_low"], "high": rows["relative_ci_high"]})
    base = alt.Chart(data, title=f"{metric}: lift against control, with its interval")
    bars = base.mark_rule(strokeWidth=3).encode(
        y=alt.Y("variant:N", title=None), x=alt.X("low:Q", title="relative lift", axis=alt.Axis(format="%")),
        x2="high:Q")
    points = base.mark_point(filled=True, size=90).encode(y="variant:N", x="lift:Q",
                                                           tooltip=["variant", "lift", "low", "high"])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 4], color="gray").encode(x="x:Q")
    return (bars + points + zero).properties(height=60 + 40 * len(data))


def exposures_over_time(daily: pd.DataFrame, metric: str) -> alt.Chart:
    """Cumulative units per variant by day of first exposure."""
    data = daily[daily["metric"] == metric].sort_values("day").copy()
    data["units"] = data.groupby("variant")["n"].cumsum()
    return alt.Chart(data, title="units exposed, cumulative").mark_line(point=True).encode(
        x=alt.X("day:T", title="day"), y=alt.Y("units:Q", title="units"),
        color=alt.Color("variant:N"), tooltip=["variant", "day", "units"]).properties(height=240)


def power_curve_chart(curve: pd.DataFrame, planned: int | None = None) -> alt.Chart:
    chart = alt.Chart(curve, title="power against units per control arm").mark_line().encode(
        x=alt.X("units:Q", title="units per control arm"), y=alt.Y("power:Q", title="power", axis=alt.Axis(format="%")),
        color=alt.Color("effect:N", title="effect"), tooltip=["effect", "units", "power"])
    target = alt.Chart(pd.DataFrame({"y": [0.8]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="y:Q")
    layers = chart + target
    if planned:
        layers += alt.Chart(pd.DataFrame({"x": [planned]})).mark_rule(color="red").encode(x="x:Q")
    return layers.properties(height=300)


def alias_timeline(history: pd.DataFrame) -> alt.Chart:
    """Which version each alias held over time: a step line per alias, a point per move."""
    data = history[history["action"] == "set"].assign(version=lambda d: d["to_version"].astype(float))
    base = alt.Chart(data).encode(
        x=alt.X("time:T", title="time"),
        y=alt.Y("version:Q", title="version", axis=alt.Axis(tickMinStep=1, format="d")),
        color=alt.Color("alias:N", title="alias"),
        tooltip=["alias", "time", "from_version", "to_version", "by", "reason", "experiment"])
    layered = base.mark_line(interpolate="step-after") + base.mark_point(size=80, filled=True)
    return layered.properties(title="aliases over time", height=220)
