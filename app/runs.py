"""Runs: pick an experiment, filter with MLflow's language, choose columns and runs."""

import streamlit as st

from mltrail.dashboard import state, views
from mltrail.errors import FilterSyntaxError, NotFoundError

st.title("Runs")
try:
    generation = state.generation()
except NotFoundError as exc:
    st.error(str(exc))
    st.stop()
root = state.root()
experiments = state.experiments(root, generation)
descriptions = dict(zip(experiments["experiment"], experiments["description"].fillna("")))
choice = st.selectbox("Experiment", ["(all experiments)", *experiments["experiment"]], key="experiment",
                      format_func=lambda e: f"{e} — {descriptions[e]}" if descriptions.get(e) else e)
experiment = None if choice == "(all experiments)" else choice
filter_text = st.text_input("Filter", key="filter",
                            placeholder="metrics.val/auc > 0.9 and params.family = 'random_forest'")
try:
    runs = state.search(root, generation, experiment, filter_text.strip() or None)
except FilterSyntaxError as exc:
    st.error("The filter does not parse.")
    st.code(str(exc), language=None)
    st.stop()

params, metrics = views.prefixed(runs, "params"), views.prefixed(runs, "metrics")
varying = [c for c in params if runs[c].nunique() > 1]
columns = st.multiselect("Columns", params + metrics, default=(varying[:6] + metrics[:6]),
                         key="columns")
st.caption(f"{len(runs)} runs" + (f" in {experiment}" if experiment else ""))
st.dataframe(views.styled(views.run_table(runs, columns)), width="stretch",
             column_config={"start": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")})

labels = dict(zip(runs["run_id"], runs["run_name"] + " · " + runs["run_id"].str[:8]))
kept = [r for r in state.selected_runs() if r in labels]
picked = st.multiselect("Runs to compare", list(labels), default=kept, format_func=labels.get,
                        key="pick_runs")
st.session_state["selected_runs"] = picked
left, right = st.columns(2)
left.page_link("compare.py", label=f"Compare {len(picked)} selected runs", icon=":material/compare_arrows:",
               disabled=not picked)
right.page_link("run.py", label="Open one run", icon=":material/description:")
