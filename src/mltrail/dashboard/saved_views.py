"""The Runs page's saved views: open one (the page takes its experiment, filter, order,
columns and grouped charts, as a shared link would give them) or save what the page shows
under a name, for the team (a file under the store's ``views/``)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..errors import MltrailError
from ..tracking.views import SavedView
from . import state
from .text import md

NONE = "(none)"
# the page's widgets a view sets: dropped, so that the page reads them from the address again
WIDGETS = ("experiment", "filter", "order", "columns", "runs_group_by", "runs_grouped_metrics",
           "runs_grouped_band", "runs_grouped_x", "runs_grouped_smoothing")


def address_of(view: SavedView) -> dict[str, Any]:
    """The Runs page's address for ``view`` (what a shared link holds)."""
    fields: dict[str, Any] = {"view": view.name, "experiment": view.experiments[0] if len(view.experiments) == 1
                              else None, "filter": view.filter, "order": ", ".join(view.order_by),
                              "column": view.columns, "group_by": view.group_by, "metric": view.charts,
                              "band": view.band if view.band != "std" else None,
                              "x": view.x if view.x != "step" else None,
                              "smoothing": str(view.smoothing) if view.smoothing else None}
    return {k: v for k, v in fields.items() if v}


def open_view(views: list[SavedView]) -> None:
    """The view picker's callback: the address becomes the view's, the widgets forget theirs."""
    chosen = st.session_state.get("saved_view")
    view = next((v for v in views if v.name == chosen), None)
    url = st.query_params
    for key in WIDGETS:
        st.session_state.pop(key, None)
    url.clear()
    if view is not None:
        url.from_dict(address_of(view))


def picker() -> SavedView | None:
    """The saved views the reader may read, one to open; the open one (from the address)."""
    try:
        views = state.remembered(("views",), state.store().views.all)
    except MltrailError as exc:
        st.warning(md(f"Saved views cannot be read: {exc}"))
        return None
    by_name = {v.name: v for v in views}
    wanted = st.query_params.get("view")
    st.session_state["saved_view"] = wanted if wanted in by_name else NONE
    if not views:
        return None
    st.selectbox("Saved view", [NONE, *by_name], key="saved_view", on_change=open_view, args=(views,),
                 help="Views saved by the team: experiment, filter, order, columns and grouped charts")
    view = by_name.get(wanted or "")
    if view is not None:
        author = f" by {md(view.author)}" if view.author else ""
        st.caption(f"View **{md(view.name)}**{author}" + (f": {md(view.description)}" if view.description else "")
                   + (f" · it names {len(view.experiments)} experiments; the page shows them all"
                      if len(view.experiments) > 1 else ""))
    return view


def save_form(fields: dict[str, Any]) -> None:
    """Save what the page shows (``fields``: the view's, as ``store.views.save`` takes them)."""
    with st.expander("Save this view"), st.form("save_view", clear_on_submit=False, border=False):
        name = st.text_input("Name", value=st.query_params.get("view", ""),
                             help="Letters, digits, '.', '_' and '-'; saving an existing name replaces it")
        description = st.text_input("Description", key="save_view_description")
        if st.form_submit_button("Save view"):
            try:
                saved = state.store().views.save(name.strip(), **fields, description=description)
            except MltrailError as exc:
                st.error(md(exc))
                return
            st.query_params["view"] = saved.name
            st.success(f"Saved view **{md(saved.name)}** ({md(saved.saved_by or 'you')}); "
                       f"it is a file under the store's views/ folder")
