"""Run: everything about one run, and the command that reproduces it."""

import pandas as pd
import streamlit as st

from mltrail.config import UI_DOWNLOAD_MAX
from mltrail.dashboard import charts, curation, previews, state, views
from mltrail.dashboard.text import code, md, notes
from mltrail.errors import NotFoundError, UpstreamError
from mltrail.tracking.system_metrics import PREFIX as SYSTEM_PREFIX

st.title("Run")
root, generation = state.open_page()
runs = state.search(root, generation, None, None, view="all")  # a deleted run can be shown and restored
if runs.empty:
    st.info("This store has no runs yet.")
    st.stop()
runs = runs.sort_values("deleted", kind="stable")  # the deleted ones last
names = views.series_names(runs)  # with enough of the ID where runs share a name: one label a run
labels = dict(zip(runs["run_id"], runs["experiment"] + " / " + runs["run_id"].map(names)
                  + runs["deleted"].map({True: " (deleted)", False: ""})))
wanted = st.query_params.get("run") or next(iter(state.selected_runs()), None)
options = list(labels)
# The browser holds a picked option as its label, not its run ID: after a rename it would
# go on showing the old name (and send it back, matching no option). Setting the value
# again makes Streamlit send the new label with it.
shown = st.session_state.get("run_choice_label")
if st.session_state.get("run_choice") in labels and shown != labels[st.session_state["run_choice"]]:
    st.session_state["run_choice"] = st.session_state["run_choice"]
run_id = st.selectbox("Run", options, index=options.index(wanted) if wanted in labels else 0,
                      format_func=labels.get, key="run_choice")
st.query_params["run"] = run_id
st.session_state["run_choice_label"] = labels[run_id]
details = state.run_details(root, generation, run_id)
info = details["run"]

status = views.STATUS_BADGES.get(info["status"], info["status"])
st.markdown(f"### {md(info['run_name'])}  \n{status} · experiment **{md(info['experiment'])}** · run "
            f"#{info['run_seq']} · {code(info['run_id'])}")
if done := st.session_state.pop("curate_done", None):
    st.success(done)
parent = runs.loc[runs["run_id"] == run_id, "parent_run_id"].dropna() if "parent_run_id" in runs else []
study = run_id if details["tags"].get("optuna.role") == "study" else next(iter(parent), None)
if details["tags"].get("optuna.role") in ("study", "trial") and study:  # (mltrail.optuna's runs)
    st.page_link("study.py", label="Open its Optuna study", icon=":material/tune:", query_params={"run": study})
if info.get("deleted"):
    st.warning(f"Deleted {pd.Timestamp(info['deleted_time']).strftime('%Y-%m-%d %H:%M')}: hidden from the Runs "
               "page, searches and charts until it is restored (or purged by `mltrail gc`).")
if info.get("description"):
    with st.container(border=True):
        st.markdown(notes(info["description"]))  # Markdown its author wrote, as MLflow shows notes (no images)
if state.may("experiment", info["experiment"], "edit"):
    curation.controls(info, details["tags"])
curation.history(details["edits"])
state.stop_form(runs[runs["run_id"] == run_id], "run_stop")
end = info.get("end_time")
c1, c2, c3 = st.columns(3)
c1.metric("Started", pd.Timestamp(info["start_time"]).strftime("%Y-%m-%d %H:%M:%S"))
c2.metric("Ended", pd.Timestamp(end).strftime("%Y-%m-%d %H:%M:%S") if end is not None else "—")
c3.metric("Duration", f"{(pd.Timestamp(end) - pd.Timestamp(info['start_time'])).total_seconds():.1f} s"
          if end is not None else "running")
if info.get("error"):
    if info["status"] == "KILLED":  # stopped (a request, Ctrl-C, SIGTERM): not a failure
        st.warning("The run was stopped")
    else:
        st.error("The run failed")
    st.code(info["error"], language=None)

params = details["params"]
st.subheader("Params")
if params.empty:
    st.caption("No params.")
for group, rows in params.assign(group=params["group"].fillna("(no group)")).groupby("group", sort=True):
    st.markdown(f"**{md(group)}**")
    st.dataframe(rows[["key", "value"]].set_index("key"), width="content")

metrics = details["metrics"]
system = metrics["key"].str.startswith(SYSTEM_PREFIX)
st.subheader("Metrics")
if (~system).any():
    st.dataframe(views.blank_missing(metrics[~system][["key", "value", "step", "best_value", "best_step", "min", "max",
                                                       "count"]].rename(columns={"value": "latest", "count": "points"})
                                     .set_index("key")), width="stretch")
    history = state.history(root, generation, (run_id,), tuple(metrics[~system]["key"]))
    grid = st.columns(2)
    for i, key in enumerate(sorted(history["key"].unique())):
        grid[i % 2].altair_chart(charts.history_chart(history, key, {run_id: info["run_name"]}),
                                 width="stretch")
else:
    st.caption("No metrics.")
if system.any():  # sampled while it ran (start_run(log_system_metrics=True)), charted over time
    st.subheader("System metrics")
    history = state.history(root, generation, (run_id,), tuple(metrics[system]["key"]))
    grid = st.columns(2)
    for i, key in enumerate(sorted(history["key"].unique())):
        grid[i % 2].altair_chart(charts.history_chart(history, key, {run_id: info["run_name"]}, x="timestamp"),
                                 width="stretch")
histograms = state.histograms(root, generation, run_id)
if len(histograms):  # run.log_histogram: weights, gradients, activations over steps
    st.subheader("Histograms")
    grid = st.columns(2)
    for i, key in enumerate(sorted(histograms["key"].unique())):
        cells, steps = views.histogram_cells(histograms, key)
        grid[i % 2].altair_chart(charts.histogram_heatmap(cells, key), width="stretch")
        if steps > views.HISTOGRAM_STEPS:
            grid[i % 2].caption(f"{views.HISTOGRAM_STEPS} of its {steps:,} steps, evenly spread")

if details["tags"]:
    st.subheader("Tags")
    st.dataframe(pd.Series(details["tags"], name="value").to_frame(), width="content")

store = state.store()
if not details["artifacts"].empty:
    st.subheader("Artifacts")
    for row in details["artifacts"].to_dict("records"):
        a, b = st.columns([4, 1])
        a.markdown(f"{code(row['path'])} · {row['size']:,} bytes · sha256 {code(row['sha256'][:16])}…")
        try:
            path = store.artifact_path(run_id, row["path"])
        except NotFoundError:
            b.caption("not present here")
        except UpstreamError:  # (said above the page)
            b.caption("not fetched: the server cannot be reached")
        else:
            if row["size"] > UI_DOWNLOAD_MAX.get():  # a download button keeps its bytes in memory
                b.caption(f"too large to offer here: {code(path)}")
            else:
                with open(path, "rb") as handle:
                    b.download_button("Download", handle.read(), file_name=row["path"].rsplit("/", 1)[-1],
                                      key=f"download-{row['path']}")
                previews.show(row["path"], path, row["size"])
if not details["datasets"].empty:
    st.subheader("Datasets")
    st.dataframe(views.blank_missing(details["datasets"].drop(columns=["timestamp"])), width="stretch")

st.subheader("Source")
if info.get("git_commit"):
    dirty = " with uncommitted changes" if info.get("git_dirty") else ""
    st.markdown(f"git {code(info['git_commit'][:12])} on **{md(info.get('git_branch') or 'detached HEAD')}**{dirty}")
    if info.get("git_diff_sha256"):
        with st.expander("Uncommitted diff"):
            st.code(store.blob(info["git_diff_sha256"]).decode("utf-8", "replace"), language="diff")
else:
    st.caption("No git commit was recorded.")
environment = {k: info.get(k) for k in ("command", "script", "cwd", "python", "platform", "host", "user")}
st.dataframe(pd.Series({k: v for k, v in environment.items() if v}, name="value").to_frame(), width="stretch")
st.markdown("**Reproduce**")
try:
    st.code(store.reproduce_script(run_id), language="bash")
except UpstreamError as exc:
    state.note_unreachable(exc)
    st.caption("The command is asked of the server, which cannot be reached.")
