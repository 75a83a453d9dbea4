"""Grouped curves on a page (the Runs page's whole filtered set, the Compare page's picked
runs): group by params or tags, one line and band per group, aggregated by the store."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from . import charts, state, views
from .text import md


def grouping_picker(runs: pd.DataFrame, key: str) -> list[str]:
    """The params/tags to group ``runs`` by, as chosen on the page (``key``: the widget's)."""
    columns = views.grouping_columns(runs)
    if not columns:
        return []
    if key in st.session_state:  # (a link's or an earlier page's choice the options may not hold)
        st.session_state[key] = [c for c in st.session_state[key] if c in columns]
    return st.multiselect("Group by", columns, key=key, format_func=lambda c: c.split(".", 1)[-1],
                          help="Runs with the same values of these params or tags are one line: the mean "
                               "of their curves, with a band around it")


def grouped_curves(root: str, generation: int, runs: pd.DataFrame, by: list[str], key: str,
                   metrics: list[str] | None = None) -> None:
    """Charts of ``runs`` grouped by ``by``: the metric picker, the band, the x axis and the
    smoothing (their widgets keyed under ``key``), then a chart per metric."""
    groups = views.group_labels(runs, by)
    available = metrics if metrics is not None else sorted(
        c.removeprefix("metrics.") for c in views.prefixed(runs, "metrics", logged=True))
    if not available:
        st.info("These runs have logged no metric.")
        return
    a, b, c, d = st.columns([3, 1, 1, 1])
    shown = a.multiselect("Metrics", available, default=available[:2], key=f"{key}_metrics")
    band = b.radio("Band", list(charts.BAND_TITLES), format_func=charts.BAND_TITLES.get, key=f"{key}_band")
    x_axis = c.radio("x axis", ["step", "time"], horizontal=True, key=f"{key}_x",
                     help="time: seconds since each run's first point")
    weight = d.slider("Smoothing", 0.0, 0.95, 0.0, 0.05, key=f"{key}_smoothing",
                      help="Each run's curve is smoothed before the runs are aggregated")
    if not shown:
        return
    frame = state.grouped(root, generation, tuple(groups.items()), tuple(shown), x_axis, band, weight)
    colours = charts.run_colours(list(dict.fromkeys(groups.values())))  # a group's colour, every chart
    grid = st.columns(2)
    for i, metric in enumerate(shown):
        grid[i % 2].altair_chart(charts.grouped_chart(frame, metric, x_axis, band, colours=colours), width="stretch")
    st.caption(views.groups_caption(groups, frame, state.GROUPED_POINTS) + " Grouped by "
               + ", ".join(md(c.split(".", 1)[-1]) for c in by) + ".")
