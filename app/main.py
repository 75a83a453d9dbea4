"""mltrail's dashboard: `mltrail ui --store PATH` runs this with Streamlit."""

import streamlit as st

st.set_page_config(page_title="mltrail", page_icon=":material/timeline:", layout="wide")
st.navigation([
    st.Page("runs.py", title="Runs", icon=":material/table_rows:", default=True),
    st.Page("compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("run.py", title="Run", icon=":material/description:"),
    st.Page("live.py", title="Live", icon=":material/monitor_heart:"),
]).run()
