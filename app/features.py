"""Features: entities, feature views (schema, source, ttl, materialization, freshness)
and the training sets saved from them."""

import pandas as pd
import streamlit as st

from mltrail.dashboard import state
from mltrail.dashboard import views as dashboard_views  # (``views`` here are feature views)
from mltrail.dashboard.text import md

st.title("Features")
state.open_page()
fs = state.store().features
views = state.remembered(("feature views",), fs.list)
if views.empty:
    st.info("No feature view yet: `store.features.apply_entity(...)` then `apply_view(...)`.")
    st.stop()

st.subheader("Freshness")
st.caption("How old the newest value the online store holds is, per view "
           "(`mltrail features materialize` brings it up to date).")
columns = st.columns(min(len(views), 4))
for i, row in enumerate(views.to_dict("records")):
    age = row["freshness"]
    if pd.isna(age):
        columns[i % len(columns)].metric(md(row["view"]), "not materialized")
    else:
        hours = pd.Timedelta(age).total_seconds() / 3600
        text = f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"
        stale = not pd.isna(row["ttl_seconds"]) and pd.Timedelta(age).total_seconds() > row["ttl_seconds"]
        columns[i % len(columns)].metric(md(row["view"]), text, "older than its ttl" if stale else "within its ttl",
                                         delta_color="inverse" if stale else "normal")

st.subheader("Feature views")
table = dashboard_views.blank_missing(views.drop(columns=["source_sha256"]).set_index("view"))
st.dataframe(table, width="stretch", column_config={  # (a column with a gap is text already)
    column: st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")
    for column in ("materialized_until", "materialized_at", "newest_online")
    if column in table and pd.api.types.is_datetime64_any_dtype(table[column])})

st.subheader("Entities")
st.dataframe(dashboard_views.blank_missing(state.remembered(("entities",), fs.entities).set_index("entity")),
             width="stretch")

saved = state.remembered(("training sets",), fs.datasets)
if len(saved):
    st.subheader("Saved training sets")
    st.dataframe(dashboard_views.blank_missing(saved), width="stretch", hide_index=True)
