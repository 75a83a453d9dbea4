"""The server's model registry: a remote store's ``store.registry``.

- ``GET /api/v1/models``: the names; ``POST /api/v1/models`` (``{"name", "description",
  "tags", "by"}``): create one
- ``GET /api/v1/models/{name}/events``: its events (a client replays them, as a local store does)
- ``POST /api/v1/models/{name}/versions`` (``{"run", "artifact", "description", "tags",
  "by"}``): register a run's artifact; ``POST .../versions/{version}/archive``
- ``PUT`` and ``DELETE /api/v1/models/{name}/aliases/{alias}`` (``{"version", "reason", "by"}``)

A model's artifact is a blob: ``load_model`` against a server fetches it from ``/api/v1/blobs``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, TypeAdapter
from starlette.concurrency import run_in_threadpool

from ..access.control import RANK
from ..errors import AlreadyExistsError, InvalidInputError
from ..store import Store
from .bodies import json_body, parsed
from .gate import Gate, gate


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str | None = None
    tags: dict[str, str] | None = None
    by: str | None = None


class _Register(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str
    artifact: str = "model.pkl"
    description: str | None = None
    tags: dict[str, str] | None = None
    by: str | None = None


class _Alias(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | str | None = None
    reason: str | None = None
    by: str | None = None


_CREATE, _REGISTER, _ALIAS = TypeAdapter(_Create), TypeAdapter(_Register), TypeAdapter(_Alias)


def routes(store: Store) -> APIRouter:
    api = APIRouter(prefix="/api/v1/models")
    registry = store.registry

    @api.get("")
    def names(g: Gate = Depends(gate)) -> list[str]:
        return g.readable("model", registry.names())

    @api.post("", openapi_extra=json_body(_CREATE))
    async def create(request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _CREATE, "a model")
        clash = [n for n in registry.names() if n.lower() == asked.name.lower()]
        if clash and not RANK[g.level("model", clash[0])]:  # a name taken by a model they cannot see
            raise AlreadyExistsError(f"the name {asked.name!r} is taken")
        await run_in_threadpool(registry.create, asked.name, asked.description, asked.tags, by=g.by(asked.by))
        g.created("model", asked.name)
        return {"model": asked.name}

    @api.get("/{name}/events")
    def events(name: str, g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        g.require("model", name, "read")
        return [event.model_dump(mode="json") for event in registry.events(name)]

    @api.post("/{name}/versions", openapi_extra=json_body(_REGISTER))
    async def register(name: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _REGISTER, "a version")
        g.require("model", name, "edit", "register versions")
        run_id = g.run(asked.run)  # the run's experiment must be readable too
        version = await run_in_threadpool(registry.register, name, run_id, asked.artifact,
                                          asked.description, asked.tags, by=g.by(asked.by))
        return {"model": name, "version": version.number}

    @api.post("/{name}/versions/{version}/archive", openapi_extra=json_body(_ALIAS))
    async def archive(name: str, version: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _ALIAS, "an archive")
        g.require("model", name, "manage", "archive versions")
        done = await run_in_threadpool(registry.archive, name, version, asked.reason, by=g.by(asked.by))
        return {"model": name, "version": done.number}

    @api.put("/{name}/aliases/{alias}", openapi_extra=json_body(_ALIAS))
    async def set_alias(name: str, alias: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _ALIAS, "an alias")
        if asked.version is None:
            raise InvalidInputError("an alias: version: Field required")
        g.require("model", name, "manage", "move aliases")
        done = await run_in_threadpool(registry.set_alias, name, alias, asked.version, asked.reason, by=g.by(asked.by))
        return {"model": name, "version": done.number}

    @api.delete("/{name}/aliases/{alias}", openapi_extra=json_body(_ALIAS))
    async def delete_alias(name: str, alias: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _ALIAS, "an alias")
        g.require("model", name, "manage", "move aliases")
        await run_in_threadpool(registry.delete_alias, name, alias, asked.reason, by=g.by(asked.by))
        return {"model": name}

    return api
