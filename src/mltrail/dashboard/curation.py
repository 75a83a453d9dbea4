"""The Run page's curation controls: rename, notes, tags, delete and restore, each one
edit through the public API (an edit file, see :mod:`mltrail.tracking.curation`), shown
only to who may edit the run's experiment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from ..errors import MltrailError
from ..storage.run_edits import describe_edit
from . import state
from .text import md


def controls(info: dict[str, Any], tags: dict[str, str]) -> None:
    """The forms that change run ``info`` (its row from ``get_run``)."""
    run_id = info["run_id"]
    store = state.store()
    with st.expander("Edit this run", expanded=bool(info.get("deleted"))):
        with st.form("curate_name_notes"):
            name = st.text_input("Name", value=info["run_name"], key="curate_name")
            notes = st.text_area("Notes (Markdown)", value=info.get("description") or "", key="curate_notes",
                                 height=120)
            if st.form_submit_button("Save name and notes"):
                changes = []
                if name.strip() != info["run_name"]:
                    changes.append(lambda: store.set_run_name(run_id, name.strip()))
                if notes != (info.get("description") or ""):
                    changes.append(lambda: store.set_run_notes(run_id, notes))
                _apply(changes, "Saved." if changes else "Nothing changed.")
        with st.form("curate_tag"):
            key_col, value_col, button_col = st.columns([2, 3, 1], vertical_alignment="bottom")
            key = key_col.text_input("Tag", key="curate_tag_key", placeholder="key")
            value = value_col.text_input("Value", key="curate_tag_value")
            if button_col.form_submit_button("Set tag"):
                _apply([lambda: store.set_tag(run_id, key.strip(), value)], f"Tag {md(key.strip())} set.")
        if tags:
            with st.form("curate_untag"):
                key_col, button_col = st.columns([5, 1], vertical_alignment="bottom")
                key = key_col.selectbox("Remove a tag", sorted(tags), key="curate_untag_key")
                if button_col.form_submit_button("Remove"):
                    _apply([lambda: store.delete_tag(run_id, key)], f"Tag {md(key)} removed.")
        if info.get("deleted"):
            if st.button("Restore this run", key="curate_restore", type="primary"):
                _apply([lambda: store.restore_run(run_id)], "Restored.")
        elif info["status"] != "RUNNING":
            st.caption("Deleting hides the run from searches and charts; it can be restored "
                       "until `mltrail gc` purges it.")
            if st.button("Delete this run", key="curate_delete"):
                _apply([lambda: store.delete_run(run_id)], "Deleted: restore it here.")


def history(edits: pd.DataFrame) -> None:
    """Who changed the run, when, and how."""
    if edits.empty:
        return
    with st.expander(f"History of edits ({edits['edit_id'].nunique()})"):
        st.dataframe(pd.DataFrame({
            "time": pd.to_datetime(edits["time"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "by": edits["by"], "change": [describe_edit(r["kind"], r["key"], r["value"]) for r in edits.to_dict("records")]}),
            hide_index=True, width="stretch")


def _apply(changes: list[Callable[[], Any]], done: str) -> None:
    try:
        for change in changes:
            change()
    except MltrailError as exc:
        st.error(md(exc))
        return
    st.session_state["curate_done"] = done
    st.rerun()
