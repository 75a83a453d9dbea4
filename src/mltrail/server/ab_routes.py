"""The server's A/B experiments: a remote store's ``store.ab`` and remote routers' logs.

- ``GET /api/v1/ab``: the keys; ``POST /api/v1/ab`` (``{"spec", "by"}``): create one
- ``GET /api/v1/ab/{key}/lifecycle``: its lifecycle events (a client replays them, as a
  local store does); ``POST`` (``{"type", "fields"}``): append one, checked against the state
- ``GET|POST /api/v1/ab/{key}/log/{segment}?offset=N``: a remote router's log segment,
  its size here, and its next lines appended exactly once (:mod:`mltrail.ab.ingest`)
- ``POST /api/v1/ab/{key}/results`` (``{"phase", "sequential", "covariate"}``): the
  analysis, run here on the compacted log (:mod:`mltrail.remote.wire`)
- ``POST /api/v1/ab/{key}/results-by`` (``{"dimension", "phase", "sequential"}``): the
  analysis per value of an exposure attribute, each segment's fields as ``<i>.<field>``;
  ``GET /api/v1/ab/{key}/dimensions``: the attributes its exposures carry
- ``GET /api/v1/ab/{key}/fingerprint``: changes when its lifecycle or log does
- ``POST /api/v1/ab/{key}/promote`` (``{"alias", "force", "by"}``): the winner to the registry
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, TypeAdapter
from starlette.concurrency import run_in_threadpool

from ..ab.ingest import AbLogIngest
from ..registry.uris import parse_model_uri
from ..storage import ab_events as ev
from ..store import Store
from .bodies import packed, parsed, read_body
from .gate import Gate, gate

_LIFECYCLE = {"ab_started": ev.Started, "ab_paused": ev.Paused, "ab_stopped": ev.Stopped,
              "ab_phase": ev.NewPhase, "ab_coverage": ev.CoverageChanged}


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: dict[str, Any]
    by: str | None = None


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["ab_started", "ab_paused", "ab_stopped", "ab_phase", "ab_coverage"]
    fields: dict[str, Any] = {}


class _ResultsAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phase: int | None = None
    sequential: bool | None = None
    covariate: dict[str, float] | None = None


class _Promote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alias: str = "production"
    force: bool = False
    by: str | None = None


_CREATE, _CHANGE = TypeAdapter(_Create), TypeAdapter(_Change)
class _ResultsByAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dimension: str
    phase: int | None = None
    sequential: bool | None = None


_RESULTS, _PROMOTE = TypeAdapter(_ResultsAsked), TypeAdapter(_Promote)
_RESULTS_BY = TypeAdapter(_ResultsByAsked)


def routes(store: Store) -> APIRouter:
    logs = AbLogIngest(store.ab)
    api = APIRouter(prefix="/api/v1/ab")

    def lifecycle(key: str) -> list[dict[str, Any]]:
        return [event.model_dump(mode="json") for event in store.ab.lifecycle(key)]

    @api.get("")
    def keys(g: Gate = Depends(gate)) -> list[str]:
        return g.readable("ab", store.ab.keys())

    @api.post("")
    async def create(request: Request, g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        asked = await parsed(request, _CREATE, "an experiment")
        exp = await run_in_threadpool(store.ab.create, asked.spec, by=g.by(asked.by))
        g.created("ab", exp.key)
        return lifecycle(exp.key)

    @api.get("/{key}/lifecycle")
    def events(key: str, g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        g.require("ab", key, "read")
        return lifecycle(key)

    @api.post("/{key}/lifecycle")
    async def change(key: str, request: Request, g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        asked = await parsed(request, _CHANGE, "a lifecycle change")
        g.require("ab", key, "manage", "start, pause, stop or reweight it")
        fields = {**asked.fields, "by": g.by(asked.fields.get("by"))}
        await run_in_threadpool(store.ab.append, key, _LIFECYCLE[asked.type], **fields)
        return lifecycle(key)

    @api.get("/{key}/log/{segment}")
    def segment_size(key: str, segment: str, g: Gate = Depends(gate)) -> dict[str, int]:
        g.require("ab", key, "edit", "log exposures")
        return {"size": logs.size(key, segment)}

    @api.post("/{key}/log/{segment}")
    async def append_log(key: str, segment: str, offset: int, request: Request, g: Gate = Depends(gate)) -> dict[str, int]:
        g.require("ab", key, "edit", "log exposures")
        body = await read_body(request)
        return {"size": await run_in_threadpool(logs.append, key, segment, offset, body)}

    @api.post("/{key}/results")
    async def results(key: str, request: Request, g: Gate = Depends(gate)) -> Response:
        asked = await parsed(request, _RESULTS, "a results query")
        g.require("ab", key, "read")
        covariate = pd.Series(asked.covariate, dtype=float) if asked.covariate is not None else None

        def analyse() -> Any:
            return store.ab.get(key).results(asked.phase, asked.sequential, covariate)

        found = await run_in_threadpool(analyse)
        return packed({f.name: getattr(found, f.name) for f in dataclasses.fields(found)})

    @api.post("/{key}/results-by")
    async def results_by(key: str, request: Request, g: Gate = Depends(gate)) -> Response:
        asked = await parsed(request, _RESULTS_BY, "a results-by query")
        g.require("ab", key, "read")
        found = await run_in_threadpool(
            lambda: store.ab.get(key).results_by(asked.dimension, asked.phase, asked.sequential))
        parts: dict[str, Any] = {"dimension": found.dimension, "segments": list(found.segments)}
        for i, result in enumerate(found.segments.values()):
            parts.update({f"{i}.{f.name}": getattr(result, f.name) for f in dataclasses.fields(result)})
        return packed(parts)

    @api.get("/{key}/dimensions")
    def dimensions(key: str, g: Gate = Depends(gate)) -> list[str]:
        g.require("ab", key, "read")
        return store.ab.get(key).dimensions()

    @api.get("/{key}/fingerprint")
    def fingerprint(key: str, g: Gate = Depends(gate)) -> list[int]:
        g.require("ab", key, "read")
        store.ab.lifecycle(key)  # the experiment exists
        return list(store.ab.fingerprint(key))

    @api.post("/{key}/promote")
    async def promote(key: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _PROMOTE, "a promotion")
        g.require("ab", key, "manage", "promote its winner")
        exp = store.ab.get(key)
        served = next((v.model for v in exp.spec.variants if v.name == exp.winner), None)
        if served and served.startswith("models:/"):
            g.require("model", parse_model_uri(served)[0], "manage", "move its aliases")
        version = await run_in_threadpool(store.promote_winner, key, asked.alias, asked.force, g.by(asked.by))
        return {"model": version.model, "version": version.number}

    return api
