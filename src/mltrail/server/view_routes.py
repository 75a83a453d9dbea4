"""The server's saved views: a remote store's ``store.views``.

- ``GET /api/v1/views``: the views the caller may read, each whole
- ``GET /api/v1/views/{name}``: one view
- ``PUT /api/v1/views/{name}`` (the view's fields and ``by``): save it, new or changed
- ``DELETE /api/v1/views/{name}`` (``{"by"}``): delete it

A view names experiments: one that names an experiment the caller may not read does not
exist for them (not listed, a 404), since its filter and columns describe that experiment.
A view that names none shows each reader what they may read, so everyone sees it. Saving
needs read on every experiment named; changing or deleting a view is for its author (the
first to save it) or an admin: a colleague's view is not rewritten under their name.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..access.control import RANK
from ..errors import AlreadyExistsError, NotFoundError
from ..storage.view_events import MAX_LIST
from ..store import Store
from ..tracking.views import SavedView, view_name
from .authored import BY, locked, require_author
from .bodies import json_body, parsed
from .gate import Gate, gate

_Items = Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=MAX_LIST)]


class _Save(BaseModel):
    """A view's fields, bounded as its event is (before anything is looked up for them)."""

    model_config = ConfigDict(extra="forbid")
    experiments: _Items = []
    filter: Annotated[str, Field(max_length=10_000)] = ""
    order_by: _Items = []
    columns: _Items = []
    charts: _Items = []
    group_by: _Items = []
    band: str = "std"
    x: str = "step"
    smoothing: float = 0.0
    description: Annotated[str, Field(max_length=10_000)] = ""
    by: str | None = None


_SAVE = TypeAdapter(_Save)


def readable(g: Gate, view: SavedView) -> bool:
    """The caller may read every experiment the view names."""
    return len(g.readable("experiment", view.experiments)) == len(view.experiments)


def routes(store: Store) -> APIRouter:
    api = APIRouter(prefix="/api/v1/views")
    views = store.views

    def visible(name: str, g: Gate) -> SavedView:
        view = views.get(name)
        if not readable(g, view):
            raise NotFoundError(f"no saved view {name!r}")
        return view

    def changeable(name: str, g: Gate, deleting: bool = False) -> SavedView | None:
        """The view the caller is about to change (None: a new one), if they may. A view they
        may not read is not there for a deletion; a new view cannot take its name."""
        if not views.exists(name):
            return None
        view = views.get(name)
        if not readable(g, view):
            if deleting:
                raise NotFoundError(f"no saved view {name!r}")
            raise AlreadyExistsError(f"the view name {name!r} is taken")
        require_author(g, f"view {name!r}", view.author)
        return view

    @api.get("")
    def all_views(g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        return [view.to_dict() for view in views.all() if readable(g, view)]

    @api.get("/{name}")
    def one(name: str, g: Gate = Depends(gate)) -> dict[str, Any]:
        return visible(name, g).to_dict()

    @api.put("/{name}", openapi_extra=json_body(_SAVE))
    async def save(name: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _SAVE, "a view")
        fields = asked.model_dump(exclude={"by"})

        def save() -> SavedView:
            for experiment in dict.fromkeys(asked.experiments):
                if not RANK[g.level("experiment", experiment)]:
                    raise NotFoundError(f"no experiment {experiment!r}")
            changeable(name, g)  # (and the write, under one lock: two saves of one name take turns)
            return views.save(name, **fields, by=g.by(asked.by))
        return (await locked(store, f"view-{view_name(name)}", f"view {name!r}", save)).to_dict()

    @api.delete("/{name}", openapi_extra=json_body(BY))
    async def delete(name: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, BY, "a view's deletion")

        def delete() -> None:
            if changeable(name, g, deleting=True) is None:
                raise NotFoundError(f"no saved view {name!r}")
            views.delete(name, by=g.by(asked.by))
        await locked(store, f"view-{view_name(name)}", f"view {name!r}", delete)
        return {"view": name}

    return api
