"""The server's feature store, read by a remote store's ``store.features`` (and a remote
router's online features). Definitions are applied and views materialized on the
server's machine, where their source files are.

- ``GET /api/v1/features/events``: definitions, materializations, saved datasets (a
  client replays them, as a local store does)
- ``GET /api/v1/features/views``: ``store.features.list()`` (Arrow)
- ``POST /api/v1/features/historical?features=..&full_feature_names=..&as_known_then=..``:
  the entity DataFrame as an Arrow IPC stream in, the training set out
- ``POST /api/v1/features/online`` (``{"features", "entity_rows", "full_feature_names"}``)
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, TypeAdapter
from starlette.concurrency import run_in_threadpool

from ..query.cells import json_ready
from ..store import Store
from .bodies import arrow, frame_of, json_body, parsed, read_body
from .gate import Gate, gate


class _Online(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: list[str]
    entity_rows: list[dict[str, Any]]
    full_feature_names: bool = False


_ONLINE = TypeAdapter(_Online)


def routes(store: Store) -> APIRouter:
    api = APIRouter(prefix="/api/v1/features")
    features = store.features

    def visible(event: Any, g: Gate) -> bool:
        """Entities are shared vocabulary; a view, its materializations and a training set
        made from views are seen by who may read every view in them."""
        if event.type == "entity_applied":
            return True
        if event.type == "dataset_saved":
            return g.may_read_training_set(event)
        return g.may_read_views([event.name if event.type == "view_applied" else event.view])

    def check_refs(refs: list[str], g: Gate) -> None:
        for view in sorted({ref.split(":")[0] for ref in refs}):
            g.require("feature_view", view, "read")

    @api.get("/events")
    def events(g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        return [event.model_dump(mode="json") for event in features.events() if visible(event, g)]

    @api.get("/views")
    def views(g: Gate = Depends(gate)) -> Response:
        table = features.list()
        return arrow(table[table["view"].isin(g.readable("feature_view", table["view"]))].reset_index(drop=True))

    @api.post("/historical")
    async def historical(request: Request, features_: list[str] = Query(alias="features"),
                         full_feature_names: bool = False, as_known_then: bool = False,
                         g: Gate = Depends(gate)) -> Response:
        check_refs(features_, g)
        entity_df = frame_of(await read_body(request), "the entity DataFrame", request.app.state.max_body)
        table = await run_in_threadpool(features.get_historical_features, entity_df, features_,
                                        full_feature_names, as_known_then)
        return arrow(table)

    @api.post("/online", openapi_extra=json_body(_ONLINE))
    async def online(request: Request, g: Gate = Depends(gate)) -> Response:
        asked = await parsed(request, _ONLINE, "an online features query")
        check_refs(asked.features, g)
        found = await run_in_threadpool(features.get_online_features, asked.features, asked.entity_rows,
                                        asked.full_feature_names)
        return Response(orjson.dumps(found, default=json_ready, option=orjson.OPT_SERIALIZE_NUMPY),
                        media_type="application/json")

    return api
