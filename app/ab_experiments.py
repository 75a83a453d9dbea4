"""Experiments: every A/B experiment with its state, units, progress and health."""

import pandas as pd
import streamlit as st

from mltrail.dashboard import state, views
from mltrail.dashboard.text import md

st.title("A/B experiments")
root, registry, keys = state.open_ab_page()
rows = []
for key in keys:
    exp = state.ab_experiment(registry, key)
    result = state.ab_results(root, key, state.ab_fingerprint(key))
    primary = result.table[result.table["metric"] == exp.spec.primary.name]
    rows.append({
        "experiment": key, "state": exp.state, "phase": exp.phase.number,
        "started": pd.to_datetime(exp.started, unit="s", utc=True).strftime("%Y-%m-%d %H:%M") if exp.started
        else views.MISSING,  # (never started: a draft)
        "units": sum(result.units.values()),
        "progress": float(primary["progress"].min()) if len(primary) else 0.0,
        "health": "⚠ SRM" if result.srm_alarm else "ok", "owner": exp.spec.owner,
        "recommendation": result.recommendation,
    })
st.dataframe(pd.DataFrame(rows).set_index("experiment"), width="stretch", column_config={
    "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
})
alarms = [r["experiment"] for r in rows if r["health"] != "ok"]
if alarms:
    st.error("Sample-ratio mismatch in " + ", ".join(map(md, alarms)) + ": their results cannot be trusted.")
choice = st.selectbox("Open", keys, key="ab_open")
st.session_state["ab_key"] = choice
st.page_link("ab_experiment.py", label=f"Open {md(choice)}", icon=":material/analytics:")
