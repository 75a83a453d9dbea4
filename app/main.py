"""mltrail's dashboard: `mltrail ui --store PATH` runs this with Streamlit."""

import streamlit as st

from mltrail.dashboard import state
from mltrail.errors import UpstreamError

st.set_page_config(page_title="mltrail", page_icon=":material/timeline:", layout="wide")
page = st.navigation({
    "Runs": [
        st.Page("runs.py", title="Runs", icon=":material/table_rows:", default=True),
        st.Page("compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("run.py", title="Run", icon=":material/description:"),
        st.Page("live.py", title="Live", icon=":material/monitor_heart:"),
        st.Page("study.py", title="Study", icon=":material/tune:"),
        st.Page("reports.py", title="Reports", icon=":material/article:"),
    ],
    "A/B experiments": [
        st.Page("ab_experiments.py", title="Experiments", icon=":material/science:"),
        st.Page("ab_experiment.py", title="Experiment", icon=":material/analytics:"),
        st.Page("ab_power.py", title="Power calculator", icon=":material/calculate:"),
    ],
    "Registry": [
        st.Page("models.py", title="Models", icon=":material/inventory_2:"),
        st.Page("features.py", title="Features", icon=":material/dataset:"),
    ],
})
notice = st.empty()  # above the page: the one line saying the server cannot be reached
try:
    state.sign_in()  # on a server with users: who you are decides what every page shows (after
    page.run()       # the navigation, so that signing in keeps the page the address asked for)
except UpstreamError as exc:  # a read the caches did not hold: the page stops where it got to
    state.note_unreachable(exc)
finally:  # (st.stop() too ends a page by raising)
    state.unreachable(notice)
