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
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, TypeAdapter
from starlette.concurrency import run_in_threadpool

from ..query.cells import json_ready
from ..store import Store
from .bodies import arrow, frame_of, parsed, read_body


class _Online(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: list[str]
    entity_rows: list[dict[str, Any]]
    full_feature_names: bool = False


_ONLINE = TypeAdapter(_Online)


def routes(store: Store) -> APIRouter:
    api = APIRouter(prefix="/api/v1/features")
    features = store.features

    @api.get("/events")
    def events() -> list[dict[str, Any]]:
        return [event.model_dump(mode="json") for event in features.events()]

    @api.get("/views")
    def views() -> Response:
        return arrow(features.list())

    @api.post("/historical")
    async def historical(request: Request, features_: list[str] = Query(alias="features"),
                         full_feature_names: bool = False, as_known_then: bool = False) -> Response:
        entity_df = frame_of(await read_body(request), "the entity DataFrame")
        table = await run_in_threadpool(features.get_historical_features, entity_df, features_,
                                        full_feature_names, as_known_then)
        return arrow(table)

    @api.post("/online")
    async def online(request: Request) -> Response:
        asked = await parsed(request, _ONLINE, "an online features query")
        found = await run_in_threadpool(features.get_online_features, asked.features, asked.entity_rows,
                                        asked.full_feature_names)
        return Response(orjson.dumps(found, default=json_ready, option=orjson.OPT_SERIALIZE_NUMPY),
                        media_type="application/json")

    return api
