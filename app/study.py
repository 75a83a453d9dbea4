"""Study: an Optuna study logged with mltrail.optuna, from its runs: the optimization
history, the best trial, the parameters' importances and the trials' parallel coordinates."""

import json

import pandas as pd
import streamlit as st

from mltrail.dashboard import charts, state, views
from mltrail.dashboard.text import md
from mltrail.errors import MltrailError


@st.cache_data(show_spinner=False, max_entries=32)
def importances(key: str, generation: int, run_id: str) -> pd.DataFrame:
    """Optuna's fANOVA importances of the study rebuilt from its runs (mltrail.optuna.load_study)."""
    del generation
    import optuna

    from mltrail.optuna import load_study

    found = optuna.importance.get_param_importances(
        load_study(state.store(), run_id), evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    return pd.DataFrame({"param": list(found), "importance": list(found.values())})


def show() -> None:
    """The page; returns early when there is nothing to show (not st.stop(): a stopped page
    loses the line saying the server cannot be reached)."""
    st.title("Study")
    root, generation = state.open_page()
    studies = state.search(root, generation, None, "tags.`optuna.role` = 'study'")
    if studies.empty:
        st.info("No Optuna study in this store yet: log one with "
                "`study.optimize(objective, callbacks=[mltrail.optuna.callback(store, 'tuning')])`.")
        return
    names = views.series_names(studies)
    asked = st.query_params.get("run")
    ids = list(studies["run_id"])
    chosen = st.selectbox("Study", ids, index=ids.index(asked) if asked in ids else 0, format_func=names.get,
                          key="study_run")
    st.query_params["run"] = chosen
    study = studies.set_index("run_id").loc[chosen]
    trials = state.search(root, generation, study["experiment"], f"attributes.parent_run_id = '{chosen}'",
                          view="all")
    directions = json.loads(study.get("tags.optuna.directions") or '["minimize"]')
    metrics = json.loads(study.get("tags.optuna.metric_names") or '["value"]')
    counts = trials.get("tags.optuna.state", pd.Series(dtype=object)).value_counts()
    st.caption(f"{md(study['experiment'])} · {views.counted(len(trials), 'trial')}: "
               + ", ".join(f"{counts.get(s, 0)} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL"))
               + f" · {' and '.join(f'{d} {md(m)}' for d, m in zip(directions, metrics))} · {study['status']}")
    if trials.empty:
        st.info("No trial has ended yet: each appears here as Optuna finishes it.")
        return

    metric, direction = metrics[0], directions[0]
    history = views.optimization_history(trials, f"metrics.{metric}", direction)
    left, right = st.columns([3, 2])
    left.altair_chart(charts.optimization_history(history, metric), width="stretch")
    if len(metrics) == 1 and history["best"].notna().any():
        best = history.loc[history["value"].where(history["state"] == "COMPLETE").idxmin()
                           if direction == "minimize" else
                           history["value"].where(history["state"] == "COMPLETE").idxmax()]
        row = trials.set_index("run_id").loc[best["run_id"]]
        right.markdown(f"**Best trial:** {md(row['run_name'])} · {md(metric)} = {best['value']:.6g}")
        params = {c.removeprefix("params."): row[c] for c in views.prefixed(trials, "params") if pd.notna(row[c])}
        right.dataframe(pd.DataFrame({"param": list(params), "value": [str(v) for v in params.values()]}),
                        hide_index=True, width="stretch")
        right.page_link("run.py", label="Open the best trial's run", icon=":material/description:",
                        query_params={"run": best["run_id"]})

    complete = int(counts.get("COMPLETE", 0))
    if len(metrics) == 1 and complete >= 2:
        try:
            left.altair_chart(charts.importances(importances(root, generation, chosen)), width="stretch")
        except ImportError:
            left.caption("Parameter importances need Optuna here: `pip install 'mltrail[optuna]'`.")
        except (MltrailError, ValueError, RuntimeError) as exc:  # (Optuna's own, e.g. a single-valued param space)
            left.caption(f"Parameter importances could not be computed: {md(str(exc))}")

    params = [c for c in views.prefixed(trials, "params", logged=True) if trials[c].nunique() > 1]
    target = f"metrics.{metric}"
    if params and target in trials:
        st.subheader("Parameters against the objective")
        shown = trials[trials["tags.optuna.state"] == "COMPLETE"]
        trial_names = views.series_names(shown)
        st.altair_chart(charts.parallel_coordinates(shown, params, target, trial_names), width="stretch")

    st.subheader("Intermediate values")  # what the pruner read: a pruned trial's line stops where it was pruned
    reported = state.history(root, generation, tuple(trials["run_id"]), ("intermediate_value",))
    if reported.empty:
        st.caption("The objective reported no intermediate value (`trial.report`).")
    else:
        st.altair_chart(charts.history_chart(reported, "intermediate_value", views.series_names(trials)),
                        width="stretch")


show()
