"""Models: the registry's models, their versions and source runs, aliases and their
history, and each model's lineage from run to alias."""

import pandas as pd
import streamlit as st

from mltrail.dashboard import charts, lineage, state, views

st.title("Models")
root, _ = state.open_page()
registry = state.store().registry
models = state.remembered(("models",), registry.list)
if models.empty:
    st.info("No registered model yet: `mltrail models register NAME --run RUN --create`, "
            "or `store.registry.register(...)`.")
    st.stop()
st.dataframe(views.blank_missing(models.drop(columns=["tags"]).set_index("model")), width="stretch", column_config={
    "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})

names = list(models["model"])
wanted = st.query_params.get("model")
name = st.selectbox("Model", names, index=names.index(wanted) if wanted in names else 0, key="models_pick")
st.query_params["model"] = name

st.subheader("Versions")
versions = state.remembered(("versions", name), lambda: registry.versions(name))
# (a version imported from MLflow may have no run, and no files: "missing" says why)
shown = versions.assign(source=lambda d: ("/run?run=" + d["run"].fillna("")).where(d["run"].notna()))
columns = ["version", "run_name", "source", "artifact", "missing", "aliases", "archived", "created", "description",
           *[c for c in versions.columns if c.startswith("metrics.")]]
st.dataframe(views.blank_missing(shown[columns].set_index("version")), width="stretch", column_config={
    "source": st.column_config.LinkColumn("source run", display_text="open run"),
    "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})

history = state.remembered(("alias history", name), lambda: registry.alias_history(name))
left, right = st.columns(2)
with left:
    st.subheader("Aliases")
    current = [(alias, row["version"]) for row in versions.to_dict("records")
               for alias in filter(None, row["aliases"].split(", "))]
    if current:
        st.dataframe(pd.DataFrame(current, columns=["alias", "version"]).set_index("alias"), width="stretch")
    else:
        st.caption("No alias yet: `mltrail models alias NAME ALIAS VERSION`.")
with right:
    st.subheader("Alias history")
    if len(history):
        st.altair_chart(charts.alias_timeline(history), width="stretch")
if len(history):
    st.dataframe(views.blank_missing(history), width="stretch", hide_index=True, column_config={
        "time": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")})

st.subheader("Lineage")
st.caption("run → version → A/B experiment → alias; dashed: where each alias points now.")
st.graphviz_chart(state.remembered(("lineage", name), lambda: lineage.lineage_dot(state.store(), name)))
