"""Compare: metric histories, params against a metric, scatter, and a side-by-side table."""

import streamlit as st

from mltrail.dashboard import charts, grouping, state, views
from mltrail.dashboard.text import md

st.title("Compare runs")
root, generation = state.open_page()
runs = state.search(root, generation, None, None)
ids = views.short_ids(runs["run_id"])
labels = {run_id: f"{name} · {ids[run_id]}" for run_id, name in zip(runs["run_id"], runs["run_name"])}
linked = st.query_params.get_all("run")  # a shared link: /compare?run=ID&run=ID
default = [r for r in (state.selected_runs() or linked) if r in labels]
parents = [r for r in runs["run_id"] if r in set(runs["parent_run_id"].dropna())]
if parents:  # a sweep or a cross-validation: its child runs at once


    def add_children() -> None:
        parent = st.session_state.get("compare_parent")
        kids = runs.loc[runs["parent_run_id"] == parent, "run_id"].tolist()
        before = st.session_state.get("compare_runs", default)
        st.session_state["compare_runs"] = list(dict.fromkeys([*before, *kids]))

    st.selectbox("Add the child runs of", [None, *parents], key="compare_parent", on_change=add_children,
                 format_func=lambda r: "(a parent run)" if r is None else labels[r])
chosen = st.multiselect("Runs", list(labels), default=default, format_func=labels.get, key="compare_runs")
st.session_state["selected_runs"] = chosen
st.query_params["run"] = chosen
if not chosen:
    st.info("Pick runs here or on the Runs page.")
    st.stop()
subset = runs[runs["run_id"].isin(chosen)]
names = views.series_names(subset)
colours = charts.run_colours([names[r] for r in chosen if r in names])  # one colour per run, every chart

st.subheader("Metric history")
by = grouping.grouping_picker(subset, "compare_group_by")
if by:  # a line per group of runs: their mean and a band
    grouping.grouped_curves(root, generation, subset, by, "compare_grouped")
else:
    history = state.history(root, generation, tuple(chosen))
    keys = sorted(history["key"].unique())
    a, b, c, d = st.columns([3, 1, 1, 1])
    shown = a.multiselect("Metrics", keys, default=keys[:4], key="compare_metrics")
    x_axis = b.radio("x axis", ["step", "timestamp"], horizontal=True, key="x_axis")
    weight = c.slider("Smoothing", 0.0, 0.95, 0.0, 0.05, key="smoothing")
    log_scale = d.toggle("Log scale", key="log_scale")
    smoothed = views.smooth(history, weight)
    grid = st.columns(2)
    for i, key in enumerate(shown):
        grid[i % 2].altair_chart(charts.history_chart(smoothed, key, names, x_axis, log_scale, colours),
                                 width="stretch")

params, metrics = views.prefixed(subset, "params", logged=True), views.prefixed(subset, "metrics", logged=True)
if params and metrics:
    st.subheader("Params against a metric")
    p1, p2 = st.columns([3, 1])
    axes = p1.multiselect("Params", params, default=[c for c in params if subset[c].nunique() > 1][:6]
                          or params[:4], key="parallel_params")
    target = p2.selectbox("Metric", metrics, key="parallel_metric")
    if axes:
        st.altair_chart(charts.parallel_coordinates(subset, axes, target, names, colours), width="stretch")
    st.subheader("Scatter")
    s1, s2 = st.columns(2)
    x = s1.selectbox("x", params + metrics, key="scatter_x")
    y = s2.selectbox("y", metrics + params, key="scatter_y")
    st.altair_chart(charts.scatter(subset, x, y, names, colours), width="stretch")
    missing = int((subset[x].isna() | subset[y].isna()).sum())
    if missing:
        verb = "has" if missing == 1 else "have"
        st.caption(f"{missing} of the {views.counted(len(subset), 'run')} {verb} no value for {md(x)} or {md(y)}: "
                   "not drawn.")

st.subheader("Params and latest metrics")
differences = st.toggle("Differences only", value=True, key="differences_only")
details = {run_id: state.run_details(root, generation, run_id) for run_id in chosen}
st.dataframe(views.compare_table(details, differences), width="stretch")
