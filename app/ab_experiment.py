"""Experiment: hypothesis, variants, results with intervals, health, and the controls."""

from typing import Any

import pandas as pd
import streamlit as st

from mltrail.dashboard import charts, state, views
from mltrail.dashboard.text import md
from mltrail.errors import MltrailError

st.title("A/B experiment")
root, registry, keys = state.open_ab_page()
wanted = st.query_params.get("key") or st.session_state.get("ab_key")
key = st.selectbox("Experiment", keys, index=keys.index(wanted) if wanted in keys else 0, key="ab_select")
st.query_params["key"] = key
exp = state.ab_experiment(registry, key)
spec = exp.spec
REFRESH_SECONDS = 5


phases = [p.number for p in exp.phases]
phase = st.selectbox("Phase", phases[::-1], key="ab_phase",  # newest first: the current phase by default
                     format_func=lambda n: f"phase {n}" + (" (current)" if n == exp.phase.number else "")
                     + f" · from {pd.Timestamp(exp.get_phase(n).started, unit='s', tz='UTC'):%Y-%m-%d %H:%M} UTC") \
    if len(phases) > 1 else exp.phase.number


LIFTS = ("lift", "lift low", "lift high")


def results_shown(table: pd.DataFrame) -> pd.DataFrame:
    """A results table with "—" where there is no value (the control's lift, a metric with
    no feedback yet), never Streamlit's "None"."""
    return views.blank_missing(views.percent_missing(table, LIFTS))


def percent_columns(table: pd.DataFrame) -> dict[str, Any]:
    """The percent format, for the lift columns that are still numbers."""
    return {c: st.column_config.NumberColumn(format="percent") for c in LIFTS
            if c in table and pd.api.types.is_numeric_dtype(table[c])}


@st.fragment(run_every=REFRESH_SECONDS if exp.state == "running" else None)
def results_panel() -> None:
    """Re-drawn every few seconds while the experiment runs: it fills in as traffic arrives."""
    exp = state.ab_experiment(registry, key)
    result = state.ab_results(root, key, state.ab_fingerprint(key), phase=phase)

    st.markdown(f"### {md(key)}  \n**{exp.state}** · phase {result.phase} of {len(exp.phases)} · "
                f"coverage {exp.coverage:.0%} of eligible units · owner {md(spec.owner)}"
                + (" · sequential" if spec.sequential else ""))
    if result.srm_alarm:
        st.error(f"Sample-ratio mismatch (p = {result.srm_p_value:.2g}): the units per variant do not match "
                 "the weights. Find the cause before reading any number below.")
    st.markdown(f"**H0** {md(spec.hypothesis.null)}  \n**H1** {md(spec.hypothesis.alternative)}")
    message = st.success if result.recommendation.startswith("Ship") else (
        st.warning if result.recommendation.startswith("Investigate") else st.info)
    message(md(result.recommendation))  # it names variants and metrics
    st.caption(f"{result.crossover_units} units seen in more than one variant were left out.")

    weights = exp.get_phase(result.phase).weights  # the weights of the phase shown
    st.dataframe(pd.DataFrame([{
        "variant": v.name, "control": v.control, "weight": weights[v.name],
        "units": result.units.get(v.name, 0), "needs": exp.min_sample_size[v.name],
        "serves": v.model or v.url or "",
    } for v in spec.variants]).set_index("variant"), width="stretch")

    metric = st.selectbox("Metric", [m.name for m in spec.metrics], key="ab_metric")
    rows = result.table[result.table["metric"] == metric]
    shown = rows[["variant", "units", "mean", "relative", "relative_ci_low", "relative_ci_high", "p_value",
                  "significant", "progress"]].rename(columns={
                      "relative": "lift", "relative_ci_low": "lift low", "relative_ci_high": "lift high",
                      "p_value": "p"}).set_index("variant")
    shown = results_shown(shown)
    st.dataframe(shown, width="stretch", column_config={
        **percent_columns(shown),
        "progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")})
    left, right = st.columns(2)
    if rows["relative"].notna().any():
        left.altair_chart(charts.intervals(result.table, metric), width="stretch")
    if len(result.daily):
        right.altair_chart(charts.exposures_over_time(result.daily, metric), width="stretch")
    dimensions = state.ab_dimensions(root, key, state.ab_fingerprint(key))
    if dimensions:  # attributes logged with the exposures: the same metric, per segment
        by = st.selectbox("Break down by", ["(no breakdown)", *dimensions], key="ab_by",
                          help="A unit counts under its first exposure's value; no correction across segments.")
        if by != "(no breakdown)":
            segments = state.ab_results_by(root, key, state.ab_fingerprint(key), by, phase)
            segments = segments[segments["metric"] == metric]
            breakdown = results_shown(segments[["segment", "variant", "units", "mean", "relative", "relative_ci_low",
                                                "relative_ci_high", "p_value", "significant"]].rename(columns={
                                                    "segment": by, "relative": "lift", "relative_ci_low": "lift low",
                                                    "relative_ci_high": "lift high", "p_value": "p"}))
            st.dataframe(breakdown, width="stretch", hide_index=True, column_config=percent_columns(breakdown))
    if exp.state == "running":
        st.caption(f"Running: this part refreshes itself every {REFRESH_SECONDS} s.")


results_panel()

st.subheader("Controls")
st.caption("Each control appends a lifecycle event through mltrail's API; routers see it within a second.")


def act(action) -> None:
    try:
        action()
    except MltrailError as exc:
        st.session_state["ab_error"] = str(exc)


if not state.may("ab", key, "manage"):
    st.caption("You may read this experiment; starting, pausing or stopping it needs manage.")
elif exp.state in ("draft", "paused"):
    st.button("Start" if exp.state == "draft" else "Resume", key="ab_start", type="primary",
              on_click=act, args=(lambda: exp.start(by="dashboard"),))
if exp.state == "running" and state.may("ab", key, "manage"):
    st.button("Pause", key="ab_pause", on_click=act, args=(lambda: exp.pause(by="dashboard"),))
if exp.state != "stopped" and state.may("ab", key, "manage"):
    with st.form("ab_stop_form"):
        winner = st.selectbox("Winner", ["(none: keep the control)", *exp.variants], key="ab_winner")
        reason = st.text_input("Reason", key="ab_reason", placeholder="the decision, in words")
        if st.form_submit_button("Stop the experiment"):
            act(lambda: exp.stop(None if winner.startswith("(none") else winner, reason, by="dashboard"))
            st.rerun()
    with st.form("ab_weights_form"):
        st.warning("Changing weights starts a new phase with a new seed: every unit is reassigned and "
                   "the analysis starts again from zero.")
        columns = st.columns(len(exp.variants))
        weights = {name: col.number_input(md(name), 0.0, 1.0, float(exp.weights[name]), 0.05, key=f"ab_w_{name}")
                   for name, col in zip(exp.variants, columns)}
        if st.form_submit_button("Apply weights"):
            act(lambda: exp.set_weights(weights, reason="changed in the dashboard", by="dashboard"))
            st.rerun()
elif exp.state == "stopped":
    st.markdown(f"Stopped: **{md(exp.winner or 'no winner (the control stays)')}** — {md(exp.decision)}")
if "ab_error" in st.session_state:
    st.error(md(st.session_state.pop("ab_error")))
