"""Altair charts of runs: metric histories, parallel coordinates, scatter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import altair as alt
import pandas as pd

from .views import numeric

if TYPE_CHECKING:
    from altair.utils.schemapi import UndefinedType

# one colour per run, the same in every chart of a page: Tableau's ten, then ten more
# that stay apart from them (Streamlit's theme would otherwise colour series in blues)
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac", "#003f5c", "#ffa600", "#7a5195", "#488f31", "#ef5675", "#2f4b7c",
           "#d45087", "#8c564b", "#17becf", "#bcbd22"]


def run_colours(runs: list[str]) -> alt.Scale:
    """The colour scale of a page's runs (in the order given): pass it to every chart."""
    return alt.Scale(domain=list(runs), range=[PALETTE[i % len(PALETTE)] for i in range(len(runs))])


def history_chart(history: pd.DataFrame, key: str, names: dict[str, str], x: str = "step",
                  log_scale: bool = False, colours: alt.Scale | None = None) -> alt.Chart:
    """One line per run for one metric; x is ``step`` or ``timestamp``; the y axis fits
    the values (an accuracy of 0.80-0.84 is not drawn against zero)."""
    data = history[history["key"] == key].assign(run=lambda d: d["run_id"].map(names))
    if log_scale:
        data = data[data["value"] > 0]  # a log axis has no place for zero or below
    colours = colours or run_colours(list(dict.fromkeys(names.values())))
    temporal = x == "timestamp"
    return alt.Chart(data, title=key).mark_line(point=len(data) < 200).encode(
        x=alt.X(x, title="time" if temporal else x, type="temporal" if temporal else "quantitative",
                axis=alt.Axis(format="%H:%M:%S", labelOverlap=True) if temporal else alt.Axis()),
        y=alt.Y("value:Q", title=key.rsplit("/", 1)[-1], scale=alt.Scale(type="log" if log_scale else "linear",
                                                                          zero=False),
                axis=alt.Axis(format=",.6~g")),  # 41,643 and 0.95, not 41,642.976563 or 950m
        color=alt.Color("run:N", title="run", scale=colours,
                        legend=None if len(names) == 1 else alt.Legend()),  # one run: its name is the page's
        # (types given: an empty selection has no values to infer them from, and Altair warns)
        tooltip=["run:N", "step:Q", "value:Q", alt.Tooltip("timestamp:T", format="%H:%M:%S.%L")],
    ).properties(height=260)


def histogram_heatmap(cells: pd.DataFrame, key: str) -> alt.Chart:
    """A key's histograms over steps (:func:`mltrail.dashboard.views.histogram_cells`): a
    column a step, each bin a cell shaded by its share of that step's values, as
    TensorBoard's and W&B's histograms over time read."""
    return alt.Chart(cells, title=key).mark_rect().encode(
        x=alt.X("step:O", title="step", axis=alt.Axis(labelOverlap=True)),
        y=alt.Y("low:Q", title=key.rsplit("/", 1)[-1], axis=alt.Axis(format=",.6~g")), y2="high:Q",
        color=alt.Color("share:Q", title="share", scale=alt.Scale(scheme="viridis"), legend=alt.Legend(format="%")),
        tooltip=["step:O", alt.Tooltip("low:Q", format=",.6~g"), alt.Tooltip("high:Q", format=",.6~g"),
                 "count:Q", alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=260)


BAND_TITLES = {"std": "mean ± std", "minmax": "min–max", "ci": "95% CI of the mean"}


def grouped_chart(grouped: pd.DataFrame, key: str, x: str = "step", band: str = "std", log_scale: bool = False,
                  colours: alt.Scale | None = None) -> alt.LayerChart | alt.FacetChart:
    """One metric of grouped runs (:meth:`mltrail.Store.grouped_history`): per group, its
    mean as a line and its band as a shaded area, in the group's colour."""
    data = grouped[grouped["key"] == key]
    if log_scale:
        data = data[(data["mean"] > 0) & (data["low"] > 0)]
    colours = colours or run_colours(list(dict.fromkeys(data["group"])))
    x_title = "seconds since the run's first point" if x == "time" else "step"
    base = alt.Chart(data).encode(
        x=alt.X("x:Q", title=x_title),
        color=alt.Color("group:N", title="group", scale=colours))
    scale = alt.Scale(type="log" if log_scale else "linear", zero=False)
    area = base.mark_area(opacity=0.2).encode(
        y=alt.Y("low:Q", title=key.rsplit("/", 1)[-1], scale=scale, axis=alt.Axis(format=",.6~g")), y2="high:Q",
        tooltip=["group:N", alt.Tooltip("x:Q", title=x_title), alt.Tooltip("low:Q", format=",.6~g"),
                 alt.Tooltip("high:Q", format=",.6~g"), alt.Tooltip("runs:Q", title="runs")])
    line = base.mark_line().encode(
        y=alt.Y("mean:Q", scale=scale),
        tooltip=["group:N", alt.Tooltip("x:Q", title=x_title), alt.Tooltip("mean:Q", format=",.6~g"),
                 alt.Tooltip("runs:Q", title="runs")])
    return alt.layer(area, line).properties(height=260, title=f"{key} ({BAND_TITLES.get(band, band)})")


STATE_COLOURS = alt.Scale(domain=["COMPLETE", "PRUNED", "FAIL"], range=["#4e79a7", "#bab0ac", "#e15759"])


def optimization_history(history: pd.DataFrame, metric: str) -> alt.LayerChart | alt.FacetChart:
    """An Optuna study's trials: each trial's value as a point (coloured by its state), and
    the best value so far as a step line."""
    x = alt.X("trial:Q", title="trial", axis=alt.Axis(tickMinStep=1, format="d"))
    points = alt.Chart(history.dropna(subset=["value"])).mark_circle(size=45).encode(
        x=x, y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False), axis=alt.Axis(format=",.6~g")),
        color=alt.Color("state:N", title="trial", scale=STATE_COLOURS),
        tooltip=["trial:Q", "state:N", alt.Tooltip("value:Q", format=",.6~g")])
    best = alt.Chart(history.dropna(subset=["best"])).mark_line(interpolate="step-after", color="#f28e2b").encode(
        x=x, y="best:Q", tooltip=["trial:Q", alt.Tooltip("best:Q", title="best so far", format=",.6~g")])
    return alt.layer(points, best).properties(height=300, title="Optimization history")


def importances(frame: pd.DataFrame) -> alt.Chart:
    """Parameter importances (``param, importance``), largest first. (Streamlit takes the
    height as the whole chart's, title and axis included: a bar needs 32 px of it.)"""
    return alt.Chart(frame, title="Parameter importances (Optuna's fANOVA)").mark_bar().encode(
        x=alt.X("importance:Q", title="importance", axis=alt.Axis(format=".0%")),
        y=alt.Y("param:N", sort="-x", title=None),
        tooltip=["param:N", alt.Tooltip("importance:Q", format=".1%")]).properties(height=90 + 32 * len(frame))


def parallel_coordinates(runs: pd.DataFrame, params: list[str], metric: str, names: dict[str, str],
                         colours: alt.Scale | None = None) -> alt.LayerChart | alt.FacetChart:
    """Each run a line across its params and ``metric``, every axis labelled with its real
    values: a number axis from its lowest to its highest value, a category axis with each
    category at its place."""
    columns = [*params, metric]
    points, labels = [], []
    run_names = runs["run_id"].map(names)
    for column in columns:
        values = numeric(runs[column])
        if pd.api.types.is_numeric_dtype(values):
            low, high = values.min(), values.max()
            span = high - low
            positions = (values - low) / span if span else values * 0 + 0.5
            labels += [(column, 0.0, _short(low)), (column, 1.0, _short(high))] if span else [(column, 0.5, _short(low))]
        else:
            categories = sorted(str(v) for v in values.dropna().unique())
            place = {c: (i / (len(categories) - 1) if len(categories) > 1 else 0.5) for i, c in enumerate(categories)}
            positions = values.map(lambda v: place.get(str(v)) if pd.notna(v) else None)
            labels += [(column, p, c) for c, p in place.items()]
        for run, value, position in zip(run_names, values, positions):
            if position is not None and pd.notna(position):
                points.append({"run": run, "axis": column, "position": float(position), "value": _short(value)})
    data = pd.DataFrame(points, columns=["run", "axis", "position", "value"])
    axis_labels = pd.DataFrame(labels, columns=["axis", "position", "label"])
    x = alt.X("axis:N", sort=columns, title=None, axis=alt.Axis(labelAngle=0, orient="top", labelLimit=160))
    y = alt.Y("position:Q", axis=None, scale=alt.Scale(domain=[-0.05, 1.05]))
    colours = colours or run_colours(list(dict.fromkeys(run_names)))
    rules = alt.Chart(pd.DataFrame({"axis": columns})).mark_rule(color="#bbb").encode(x=x)
    lines = alt.Chart(data).mark_line(point=True, opacity=0.85).encode(
        x=x, y=y, color=alt.Color("run:N", title="run", scale=colours), detail="run:N",
        tooltip=["run:N", "axis:N", "value:N"])
    ticks = alt.Chart(axis_labels).mark_text(align="left", dx=5, fontSize=11, color="#555").encode(
        x=x, y=y, text="label:N")
    return alt.layer(rules, lines, ticks, title=f"params against {metric}").properties(height=340)


def scatter(runs: pd.DataFrame, x: str, y: str, names: dict[str, str], colours: alt.Scale | None = None) -> alt.Chart:
    """One point per run that has both values; each axis fits its values."""
    data = pd.DataFrame({"run": runs["run_id"].map(names).to_numpy(), "x": numeric(runs[x]).to_numpy(),
                         "y": numeric(runs[y]).to_numpy()}).dropna()
    colours = colours or run_colours(list(data["run"]))

    def kind(field: str) -> Literal["quantitative", "nominal"]:
        return "quantitative" if pd.api.types.is_numeric_dtype(data[field]) else "nominal"

    def scale(kind: str) -> alt.Scale | UndefinedType:
        return alt.Scale(zero=False, padding=12) if kind == "quantitative" else alt.Undefined

    x_kind, y_kind = kind("x"), kind("y")  # types given: nothing left to infer (an empty column warns)
    return alt.Chart(data, title=f"{y} against {x}").mark_circle(size=110, opacity=0.9).encode(
        x=alt.X("x", title=x, type=x_kind, scale=scale(x_kind)),
        y=alt.Y("y", title=y, type=y_kind, scale=scale(y_kind)),
        color=alt.Color("run:N", title="run", scale=colours),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("x", title=x, type=x_kind),
                 alt.Tooltip("y", title=y, type=y_kind)],
    ).properties(height=320)


def _short(value: object) -> str:
    """A value as an axis label: numbers to four significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


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
        # whole seconds on the time axis (Vega's own format went to ".800" for moves a
        # script made within a second)
        x=alt.X("time:T", title="time", axis=alt.Axis(format="%Y-%m-%d %H:%M:%S", labelAngle=0, tickCount=4)),
        y=alt.Y("version:Q", title="version", axis=alt.Axis(tickMinStep=1, format="d")),
        color=alt.Color("alias:N", title="alias"),
        tooltip=["alias", "time", "from_version", "to_version", "by", "reason", "experiment"])
    layered = base.mark_line(interpolate="step-after") + base.mark_point(size=80, filled=True)
    return layered.properties(title="aliases over time", height=220)
