"""The server's runs: what remote jobs send, and the reads a remote store makes.

- ``GET /api/v1/runs/{run_id}/last-seq``: how much of a run the server holds
- ``POST /api/v1/runs/{run_id}/events?experiment=NAME``: a run's next JSON lines, as its
  file holds them; appended exactly once (see :mod:`mltrail.tracking.ingest`)
- ``POST /api/v1/runs/{run}/stop`` (``{"reason", "by"}``) and ``GET
  /api/v1/runs/{run_id}/stop``: requests to stop a run, which its job's uploader fetches
- ``GET /api/v1/search`` (``experiment``, ``filter``, ``order_by``, ``max_results``),
  ``POST /api/v1/metric-history`` (``{"run_ids": [...], "keys": [...]}``) and ``GET
  /api/v1/experiments``: Arrow IPC streams
- ``GET /api/v1/runs/{run}`` (a run's details, :mod:`mltrail.remote.wire`), ``GET
  /api/v1/runs/{run}/id``, ``GET /api/v1/runs/{run}/reproduce`` (the script)
- ``POST /api/v1/refresh``: compact what is new; the tables' generation. ``POST
  /api/v1/compact?rebuild=0|1``: what the compaction did (``mltrail compact``)
- ``GET /api/v1/blobs/{sha256}`` (is it here?), ``GET /api/v1/blobs/{sha256}/content``
  and ``PUT /api/v1/blobs/{sha256}?large=0|1``
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, TypeAdapter
from starlette.concurrency import run_in_threadpool

from ..errors import NotFoundError
from ..store import Store
from ..tracking.ingest import RunIngest
from .bodies import arrow, packed, parsed, read_body


class _StopAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None
    by: str | None = None


class _HistoryAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_ids: list[str] | None = None
    keys: list[str] | None = None


_STOP_ASKED = TypeAdapter(_StopAsked)
_HISTORY_ASKED = TypeAdapter(_HistoryAsked)


def routes(store: Store) -> APIRouter:
    ingest = RunIngest(store.layout)
    api = APIRouter(prefix="/api/v1")

    @api.get("/runs/{run_id}/last-seq")
    def last_seq(run_id: str) -> dict[str, int]:
        return {"last_seq": ingest.last_seq(run_id)}

    @api.post("/runs/{run_id}/events")
    async def events(run_id: str, experiment: str, request: Request) -> Any:
        body = await read_body(request)
        done = await run_in_threadpool(ingest.append, experiment, run_id, body)  # the file work is off the loop
        return {"written": done.written, "duplicates": done.duplicates, "last_seq": done.last_seq}

    @api.post("/runs/{run_ref}/stop")
    async def request_stop(run_ref: str, request: Request) -> dict[str, Any]:
        asked = await parsed(request, _STOP_ASKED, "a stop request")
        path = store.request_stop(run_ref, asked.reason, by=asked.by)
        return {"run_id": path.parent.name}  # stop/<run_id>/<request>.jsonl

    @api.get("/runs/{run_id}/stop")
    def stop_requests(run_id: str) -> list[dict[str, Any]]:
        """The requests to stop a run, oldest first: a remote job's uploader copies them
        into its spool, where the run looks for them."""
        return [request.model_dump(mode="json") for request in ingest.stop_requests(run_id)]

    @api.get("/runs/{run_ref}")
    def get_run(run_ref: str) -> Response:
        details = store.get_run(run_ref)
        return packed({**details, "run": pd.DataFrame([details["run"]])})

    @api.get("/runs/{run_ref}/id")
    def resolve_run(run_ref: str) -> dict[str, str]:
        return {"run_id": store.resolve_run(run_ref)}

    @api.get("/runs/{run_ref}/reproduce")
    def reproduce(run_ref: str) -> PlainTextResponse:
        return PlainTextResponse(store.reproduce_script(run_ref))

    @api.get("/search")
    def search(experiment: list[str] = Query(default=[]), filter: str | None = None,
               order_by: list[str] = Query(default=[]), max_results: int | None = None) -> Response:
        return arrow(store.search_runs(experiment=experiment or None, filter=filter,
                                       order_by=order_by or None, max_results=max_results))

    @api.post("/metric-history")
    async def metric_history(request: Request) -> Response:
        asked = await parsed(request, _HISTORY_ASKED, "a metric-history query")
        return arrow(await run_in_threadpool(store.metric_history, asked.run_ids, asked.keys))

    @api.get("/experiments")
    def experiments() -> Response:
        return arrow(store.experiments())

    @api.post("/compact")
    def compact(rebuild: bool = False) -> dict[str, Any]:
        """``mltrail compact [--rebuild]`` against the server: what the compaction did."""
        return dataclasses.asdict(store.compact(rebuild=rebuild))

    @api.post("/refresh")
    def refresh() -> dict[str, int]:
        """Compact what is new (each reader would otherwise ask for it); the generation
        of the tables, which changes when they do."""
        return {"generation": store.refresh()}

    @api.get("/blobs/{sha256}")
    def has_blob(sha256: str) -> Any:
        try:
            store.blobs.path(sha256)
        except NotFoundError:
            return JSONResponse({"error": f"no blob {sha256}", "type": "NotFoundError"}, 404)
        return {"ok": True}

    @api.get("/blobs/{sha256}/content")
    def blob_content(sha256: str) -> FileResponse:
        return FileResponse(store.blobs.verified(sha256, f"blob {sha256}"), media_type="application/octet-stream")

    @api.put("/blobs/{sha256}")
    async def put_blob(sha256: str, request: Request, large: bool = False) -> Any:
        body = await read_body(request)
        store.blobs.put_sent(sha256, body, large)
        return {"ok": True}

    return api
