"""The server's grants: ``store.access`` against a URL.

- ``GET /api/v1/access/{kind}/{name}``: who has which level on an object, and how
  (directly, through a group, as an admin); for whoever may read the object. ``GET
  .../mine``: the caller's own level (what the dashboard shows controls for)
- ``POST /api/v1/access/{kind}/{name}`` (``{"to", "level", "reason"}``): grant; and
  ``DELETE /api/v1/access/{kind}/{name}/{to}`` (``{"reason"}``): revoke; both need
  ``manage`` on the object, and are events in the store's ``access/`` folder

Users and groups are made on the server's machine (``mltrail users|groups --store PATH``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, TypeAdapter

from ..storage.access_events import Kind, Level
from ..store import Store
from .bodies import arrow, json_body, parsed
from .gate import Gate, gate


class _Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str
    level: Level
    reason: str | None = None


class _Revoke(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None


_GRANT, _REVOKE = TypeAdapter(_Grant), TypeAdapter(_Revoke)


def routes(store: Store) -> APIRouter:
    api = APIRouter(prefix="/api/v1/access")

    @api.get("/{kind}/{name}")
    def show(kind: Kind, name: str, g: Gate = Depends(gate)) -> Response:
        g.require(kind, name, "read")
        return arrow(store.access.show(kind, name))

    @api.get("/{kind}/{name}/mine")
    def mine(kind: Kind, name: str, g: Gate = Depends(gate)) -> dict[str, Any]:
        """The caller's own level on an object (None: they may not see it)."""
        return {"level": g.level(kind, name)}

    @api.post("/{kind}/{name}", openapi_extra=json_body(_GRANT))
    async def grant(kind: Kind, name: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _GRANT, "a grant")
        g.require(kind, name, "manage", "grant access")
        store.access.grant(kind, name, asked.to, asked.level, asked.reason, by=g.by(None))
        return {"ok": True}

    @api.delete("/{kind}/{name}/{to}", openapi_extra=json_body(_REVOKE))
    async def revoke(kind: Kind, name: str, to: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _REVOKE, "a revocation")
        g.require(kind, name, "manage", "revoke access")
        store.access.revoke(kind, name, to, asked.reason, by=g.by(None))
        return {"ok": True}

    return api
