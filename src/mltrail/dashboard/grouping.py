"""Grouped curves on a page (the Runs page's whole filtered set, the Compare page's picked
runs): group by params or tags, one line and band per group, aggregated by the store."""

from __future__ import annotations

from typing import Any

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


def from_address(key: str) -> None:
    """A first render of a link's (or a saved view's) grouped charts: the widgets under
    ``key`` take the address's ``metric``, ``band``, ``x`` and ``smoothing``."""
    url, session = st.query_params, st.session_state
    if f"{key}_metrics" not in session and url.get_all("metric"):
        session[f"{key}_metrics"] = url.get_all("metric")
    if f"{key}_band" not in session and url.get("band") in charts.BAND_TITLES:
        session[f"{key}_band"] = url["band"]
    if f"{key}_x" not in session and url.get("x") in ("step", "time"):
        session[f"{key}_x"] = url["x"]
    if f"{key}_smoothing" not in session and url.get("smoothing"):
        try:
            session[f"{key}_smoothing"] = min(max(float(url["smoothing"]), 0.0), MAX_SMOOTHING)
        except ValueError:
            pass  # a hand-edited link: the slider's default


def to_address(chosen: dict[str, Any]) -> None:
    """The grouped charts' choices into the address (the defaults left out), so a link keeps them."""
    url = st.query_params
    wanted = {"metric": chosen.get("charts") or None,
              "band": chosen.get("band") if chosen.get("band", "std") != "std" else None,
              "x": chosen.get("x") if chosen.get("x", "step") != "step" else None,
              "smoothing": str(chosen["smoothing"]) if chosen.get("smoothing") else None}
    for name, value in wanted.items():
        if value:
            url[name] = value
        elif name in url:
            del url[name]


MAX_SMOOTHING = 0.95


def grouped_curves(root: str, generation: int, runs: pd.DataFrame, by: list[str], key: str,
                   metrics: list[str] | None = None) -> dict[str, Any]:
    """Charts of ``runs`` grouped by ``by``: the metric picker, the band, the x axis and the
    smoothing (their widgets keyed under ``key``), then a chart per metric. Returns what was
    chosen, as a saved view holds it: ``charts, band, x, smoothing``."""
    groups = views.group_labels(runs, by)
    available = metrics if metrics is not None else sorted(
        c.removeprefix("metrics.") for c in views.prefixed(runs, "metrics", logged=True))
    if not available:
        st.info("These runs have logged no metric.")
        return {}
    if f"{key}_metrics" in st.session_state:  # (a saved view's or a link's metrics these runs may not have)
        st.session_state[f"{key}_metrics"] = [m for m in st.session_state[f"{key}_metrics"] if m in available]
    a, b, c, d = st.columns([3, 1, 1, 1])
    shown = a.multiselect("Metrics", available, key=f"{key}_metrics",  # (a link's, else the first two)
                          default=None if f"{key}_metrics" in st.session_state else available[:2])
    band = b.radio("Band", list(charts.BAND_TITLES), format_func=charts.BAND_TITLES.get, key=f"{key}_band")
    x_axis = c.radio("x axis", ["step", "time"], horizontal=True, key=f"{key}_x",
                     help="time: seconds since each run's first point")
    weight = d.slider("Smoothing", 0.0, MAX_SMOOTHING, 0.0, 0.05, key=f"{key}_smoothing",
                      help="Each run's curve is smoothed before the runs are aggregated")
    chosen = {"charts": shown, "band": band, "x": x_axis, "smoothing": weight}
    if not shown:
        return chosen
    frame = state.grouped(root, generation, tuple(groups.items()), tuple(shown), x_axis, band, weight)
    colours = charts.run_colours(list(dict.fromkeys(groups.values())))  # a group's colour, every chart
    grid = st.columns(2)
    for i, metric in enumerate(shown):
        grid[i % 2].altair_chart(charts.grouped_chart(frame, metric, x_axis, band, colours=colours), width="stretch")
    st.caption(views.groups_caption(groups, frame, state.GROUPED_POINTS, x_axis) + " Grouped by "
               + ", ".join(md(c.split(".", 1)[-1]) for c in by) + ".")
    return chosen
