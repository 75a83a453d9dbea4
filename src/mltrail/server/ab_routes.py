"""The server's A/B experiments: a remote store's ``store.ab`` and remote routers' logs.

- ``GET /api/v1/ab``: the keys; ``POST /api/v1/ab`` (``{"spec", "by"}``): create one
- ``GET /api/v1/ab/{key}/lifecycle``: its lifecycle events (a client replays them, as a
  local store does); ``POST`` (``{"type", "fields"}``): one change, made by the
  experiment's own method (start, pause, stop, set_weights, set_coverage; ``fields`` are
  its arguments), so that it is checked as a local call is: never an event appended
  past those checks
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
from collections.abc import Callable
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from ..ab.experiment import Experiment
from ..ab.ingest import AbLogIngest
from ..errors import InvalidInputError
from ..registry.uris import parse_model_uri
from ..store import Store
from .bodies import json_body, packed, parsed, read_body
from .gate import Gate, gate


class _Arguments(BaseModel):  # a lifecycle method's arguments, as a client sends them
    model_config = ConfigDict(extra="forbid")
    by: str | None = None


class _Start(_Arguments):  # start and pause
    reason: str | None = None


class _Stop(_Arguments):
    winner: str | None = None
    reason: str | None = None  # Experiment.stop says that one is needed


class _Reweight(_Arguments):
    weights: dict[str, float]
    reason: str | None = None


class _Cover(_Arguments):
    coverage: float


Change = Callable[[Experiment, Any, str | None], Experiment]
# Each change is the Experiment's own method, with its checks (a winner that is a variant,
# weights naming the variants, a reason to stop): the route once appended the event past
# them, and a reweight naming 'contrl' broke every read of the experiment.
_CHANGES: dict[str, tuple[TypeAdapter[Any], Change]] = {
    "ab_started": (TypeAdapter(_Start), lambda exp, a, by: exp.start(by=by, reason=a.reason)),
    "ab_paused": (TypeAdapter(_Start), lambda exp, a, by: exp.pause(by=by, reason=a.reason)),
    "ab_stopped": (TypeAdapter(_Stop), lambda exp, a, by: exp.stop(a.winner, a.reason, by=by)),
    "ab_phase": (TypeAdapter(_Reweight), lambda exp, a, by: exp.set_weights(a.weights, a.reason, by=by)),
    "ab_coverage": (TypeAdapter(_Cover), lambda exp, a, by: exp.set_coverage(a.coverage, by=by)),
}
# what the server sets itself: the time, and a new phase's hashing seed (a seed a client
# chose could pick which units land in which variant)
_SET_HERE = ("ts", "experiment", "type", "v", "seed")


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

    @api.post("", openapi_extra=json_body(_CREATE))
    async def create(request: Request, g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        asked = await parsed(request, _CREATE, "an experiment")
        exp = await run_in_threadpool(store.ab.create, asked.spec, by=g.by(asked.by))
        g.created("ab", exp.key)
        return lifecycle(exp.key)

    @api.get("/{key}/lifecycle")
    def events(key: str, g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        g.require("ab", key, "read")
        return lifecycle(key)

    @api.post("/{key}/lifecycle", openapi_extra=json_body(_CHANGE))
    async def change(key: str, request: Request, g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        asked = await parsed(request, _CHANGE, "a lifecycle change")
        g.require("ab", key, "manage", "start, pause, stop or reweight it")
        adapter, make = _CHANGES[asked.type]
        arguments = _arguments(adapter, asked.fields)
        by = g.by(arguments.by)
        await run_in_threadpool(lambda: make(store.ab.get(key), arguments, by))
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

    @api.post("/{key}/results", openapi_extra=json_body(_RESULTS))
    async def results(key: str, request: Request, g: Gate = Depends(gate)) -> Response:
        asked = await parsed(request, _RESULTS, "a results query")
        g.require("ab", key, "read")
        covariate = pd.Series(asked.covariate, dtype=float) if asked.covariate is not None else None

        def analyse() -> Any:
            return store.ab.get(key).results(asked.phase, asked.sequential, covariate)

        found = await run_in_threadpool(analyse)
        return packed({f.name: getattr(found, f.name) for f in dataclasses.fields(found)})

    @api.post("/{key}/results-by", openapi_extra=json_body(_RESULTS_BY))
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

    @api.post("/{key}/promote", openapi_extra=json_body(_PROMOTE))
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


def _arguments(adapter: TypeAdapter[Any], fields: dict[str, Any]) -> Any:
    reserved = [name for name in _SET_HERE if name in fields]
    if reserved:
        raise InvalidInputError(f"a lifecycle change cannot set {', '.join(reserved)}: the server does")
    try:
        return adapter.validate_python(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInputError(f"a lifecycle change: fields.{'.'.join(map(str, first['loc']))}: "
                                f"{first['msg']}") from None
