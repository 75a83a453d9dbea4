"""Live: running runs, refreshed every few seconds; a run whose heartbeat stopped is CRASHED."""

import streamlit as st

from mltrail.dashboard import charts, state, views

st.title("Live runs")
# 1 s: a run logging to a server shows here within about 2 s (its upload tick, then this one)
every = st.select_slider("Refresh every", options=[1, 2, 5, 10, 30], value=2, format_func=lambda s: f"{s} s",
                         key="refresh_seconds")


@st.fragment(run_every=every)
def live() -> None:
    root, generation = state.open_page()
    runs = state.search(root, generation, None, "attributes.status IN ('RUNNING', 'CRASHED')")
    if runs.empty:
        st.info("No run is running. Runs appear here while they train.")
        return
    metrics = views.prefixed(runs, "metrics")
    st.dataframe(views.styled(views.run_table(runs, metrics)), width="stretch", hide_index=True)
    state.stop_form(runs, "live_stop")
    history = state.history(root, generation, tuple(runs["run_id"]))
    names = views.series_names(runs)
    grid = st.columns(2)
    for i, key in enumerate(sorted(history["key"].unique())):
        grid[i % 2].altair_chart(charts.history_chart(history, key, names), width="stretch")


live()
