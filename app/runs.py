"""Runs: pick an experiment, filter with MLflow's language, choose columns and runs."""

import streamlit as st

from mltrail.dashboard import grouping, saved_views, state, views
from mltrail.dashboard.text import md
from mltrail.errors import InvalidInputError

st.title("Runs")
root, generation = state.open_page()
experiments = state.experiments(root, generation)
descriptions = dict(zip(experiments["experiment"], experiments["description"].fillna("")))
ALL = "(all experiments)"
url = st.query_params  # the view is in the address: a filtered, sorted view can be shared
saved_views.picker()  # or saved by name, for the team: opening one sets the address
if "experiment" not in st.session_state:  # a first render: the address decides
    st.session_state["experiment"] = url.get("experiment") if url.get("experiment") in descriptions else ALL
    st.session_state["filter"] = url.get("filter", "")
    st.session_state["order"] = url.get("order", "")
choice = st.selectbox("Experiment", [ALL, *experiments["experiment"]], key="experiment",
                      format_func=lambda e: f"{e} — {descriptions[e]}" if descriptions.get(e) else e)
experiment = None if choice == ALL else choice
unfiltered = state.search(root, generation, experiment, None)  # the examples name this store's own columns
left, right = st.columns([3, 1])
filter_text = left.text_input("Filter", key="filter", placeholder=views.filter_example(unfiltered))
order_text = right.text_input("Order by", key="order", placeholder=views.order_example(unfiltered))
deleted = st.toggle("Deleted runs", key="show_deleted",
                    help="List the deleted runs instead (open one to restore it; `mltrail gc` purges them)")
try:
    runs = state.search(root, generation, experiment, filter_text.strip() or None, order_text.strip() or None,
                        view="deleted" if deleted else "active")
except InvalidInputError as exc:  # (a FilterSyntaxError, or an order_by that names no column)
    st.error("The filter or the order does not parse.")
    st.code(str(exc), language=None)
    st.stop()

params, metrics = views.prefixed(runs, "params"), views.prefixed(runs, "metrics")
if "columns" not in st.session_state and url.get_all("column"):
    st.session_state["columns"] = [c for c in url.get_all("column") if c in params + metrics]
columns = st.multiselect("Columns", params + metrics, key="columns",
                         default=None if "columns" in st.session_state else views.default_columns(runs))
for name, value in {"experiment": experiment, "filter": filter_text.strip(), "order": order_text.strip(),
                    "column": columns}.items():  # (the saved view's name stays: it says where this began)
    if value:
        url[name] = value
    elif name in url:
        del url[name]
searched = runs  # (with child runs: a sweep's trials are what its curves group)
children = runs["parent_run_id"].value_counts() if "parent_run_id" in runs else None
if children is not None and len(children):  # sweeps and folds: their runs under their parent
    grouped = st.toggle("Child runs under their parent", value=True, key="group_children",
                        help="Each parent shows how many child runs it has; tick one and open them below.")
    if grouped and "parent_run_id" not in (filter_text or ""):
        runs = runs[runs["parent_run_id"].isna() | ~runs["parent_run_id"].isin(runs["run_id"])]
all_runs = runs
pages = views.page_count(len(runs))
if st.session_state.get("page", 1) > pages:  # a narrower filter has fewer pages
    st.session_state["page"] = 1
page = int(st.number_input("Page", min_value=1, max_value=pages, key="page")) if pages > 1 else 1
shown = views.page_of(runs, page)
st.caption(views.counted(len(runs), "deleted run" if deleted else "run")
           + (f" in {md(experiment)}" if experiment else "")
           + (f" · {views.PAGE_ROWS:,} a page, newest first" if pages > 1 else "")
           + " · tick rows to pick runs to compare")
table = views.run_table(shown, columns, children)
event = st.dataframe(views.styled(table), width="stretch", key="run_table", on_select="rerun", hide_index=True,
                     selection_mode="multi-row",
                     column_config={"start": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")})
if event is not None and event.selection.rows:  # ticking rows replaces the selection
    st.session_state["selected_runs"] = [table.index[i] for i in event.selection.rows]

names = dict(zip(all_runs["run_id"], all_runs["run_name"]))
picked = [r for r in state.selected_runs() if r in names]
parents = [r for r in picked if children is not None and r in children.index]
if len(parents) == 1:  # open a parent: its children, by the filter (so the view can be shared)
    def open_children(parent: str = parents[0]) -> None:
        st.session_state["filter"] = f"attributes.parent_run_id = '{parent}'"
    st.button(f"Show the {views.counted(children[parents[0]], 'child run')} of {md(names[parents[0]])}",
              key="open_children", on_click=open_children)
left, middle, right = st.columns([2, 1, 1])
left.markdown("**Selected:** " + (", ".join(md(names[r]) for r in picked) if picked else "none"))
if middle.button("Clear selection", disabled=not picked, key="clear_selection"):
    st.session_state["selected_runs"] = []
    st.rerun()
right.page_link("compare.py", label=f"Compare {views.counted(len(picked), 'run')}", icon=":material/compare_arrows:",
                disabled=not picked)
st.page_link("run.py", label="Open one run", icon=":material/description:")

chart_fields: dict = {}  # the grouped charts' metrics, band, x axis and smoothing, for a saved view
by: list[str] = []
if len(searched) > 1 and not deleted:  # hundreds of seeds, folds or trials: a line per group
    st.subheader("Curves, grouped")
    if "runs_group_by" not in st.session_state and url.get_all("group_by"):  # a shared link: ?group_by=params.lr
        st.session_state["runs_group_by"] = [c for c in url.get_all("group_by") if c in searched.columns]
    by = grouping.grouping_picker(searched, "runs_group_by")
    if by:
        url["group_by"] = by
    elif "group_by" in url:
        del url["group_by"]
    if by:
        grouping.from_address("runs_grouped")
        chart_fields = grouping.grouped_curves(root, generation, searched, by, "runs_grouped")
    else:
        st.caption(f"Group the {views.counted(len(searched), 'run')} found by params or tags to draw each "
                   "group's mean curve with a band.")
    grouping.to_address(chart_fields)
saved_views.save_form({"experiments": [experiment] if experiment else [], "filter": filter_text.strip(),
                       "order_by": [o.strip() for o in order_text.split(",") if o.strip()], "columns": columns,
                       "group_by": by, **chart_fields})
