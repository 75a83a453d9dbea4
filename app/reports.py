"""Reports: the team's Markdown files under the store's reports/, drawn with live data."""

import streamlit as st

from mltrail.dashboard import state
from mltrail.dashboard.text import md
from mltrail.errors import MltrailError
from mltrail.reports.blocks import Prose
from mltrail.reports.render import Charts, Problem, Table, Value, render

TEMPLATE = """# A new report

Prose in Markdown, and blocks that read the store when the report is drawn:

```mltrail runs
filter: attributes.status = 'FINISHED'
limit: 5
```
"""

st.title("Reports")
root, generation = state.open_page()
store = state.store()
listed = state.remembered(("reports",), store.reports.list)
titles = dict(zip(listed["name"], listed["title"]))
url = st.query_params
if "report" not in st.session_state:  # a first render: the address decides
    st.session_state["report"] = url.get("report") if url.get("report") in titles else next(iter(titles), None)
if titles:
    name = st.selectbox("Report", list(titles), key="report", format_func=lambda n: f"{titles[n]} ({n})")
    url["report"] = name
else:
    name = None
    st.info("No report yet. A report is a Markdown file, `reports/<name>.md` in the store, with blocks "
            "(```` ```mltrail runs ````, `chart`, `value`, `ab`) drawn here with live data; write one below "
            "or in your editor, and `mltrail report render <name> -o report.html` sends it as one file.")

report = state.remembered(("report", name), lambda: store.reports.get(name)) if name else None
with st.expander("Edit" if report else "Write a report", expanded=report is None), \
        st.form("report_editor", border=False):
    new_name = st.text_input("Name", value=name or "", help="The file is reports/<name>.md")
    text = st.text_area("Markdown", value=report.text if report else TEMPLATE, height=320)
    if st.form_submit_button("Save report"):
        try:
            saved = store.reports.save(new_name.strip(), text)
        except MltrailError as exc:
            st.error(md(exc))
        else:
            st.session_state.pop("report", None)
            url["report"] = saved.name
            st.rerun()

if report is not None:
    st.caption(f"reports/{md(report.name)}.md" + (f" · by {md(report.author)}" if report.author else "")
               + " · every number read now, as you may read it · `mltrail report render "
               + f"{report.name} -o {report.name}.html` writes it as one file")  # (a name is [A-Za-z0-9_.-])
    # (while the server cannot be reached: what this session drew last)
    for piece in state.remembered(("report drawn", name, report.text), lambda: render(store, report.text)):
        if isinstance(piece, Prose):
            st.markdown(piece.text)
        elif isinstance(piece, Table):
            if piece.title:
                st.markdown(f"**{md(piece.title)}**")
            st.dataframe(piece.frame, hide_index=True, width="stretch")
            st.caption(md(piece.caption))
        elif isinstance(piece, Charts):
            if piece.title:
                st.markdown(f"**{md(piece.title)}**")
            grid = st.columns(2)
            for i, chart in enumerate(piece.charts):
                grid[i % 2].altair_chart(chart, width="stretch")
            st.caption(md(piece.caption))
        elif isinstance(piece, Value):
            st.metric(piece.title or piece.caption, piece.text, help=piece.caption)
        elif isinstance(piece, Problem):
            st.warning(md(piece.text))
