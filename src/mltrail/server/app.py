"""The store server's HTTP API (FastAPI on uvicorn, the router's stack).

It owns one store folder and writes exactly the files a local store writes, so the
folder still commits to git and opens locally with ``mltrail.Store(PATH)``. Version 1
of the API takes what ``mltrail sync`` uploads:

- ``GET /api/v1/health``
- ``GET /api/v1/runs/{run_id}/last-seq``: how much of a run the server holds
- ``POST /api/v1/runs/{run_id}/events?experiment=NAME``: a run's next JSON lines, as its
  file holds them; appended exactly once (see :mod:`mltrail.tracking.ingest`)
- ``GET /api/v1/blobs/{sha256}`` (is it here?) and ``PUT /api/v1/blobs/{sha256}?large=0|1``
- ``POST /api/v1/runs/{run}/stop`` (``{"reason", "by"}``) and ``GET
  /api/v1/runs/{run_id}/stop``: requests to stop a run, which its job's uploader fetches
- ``GET /api/v1/search`` (``experiment``, ``filter``, ``order_by``, ``max_results``) and
  ``POST /api/v1/metric-history`` (``{"run_ids": [...], "keys": [...]}``): Arrow IPC streams

With ``MLTRAIL_SERVER_TOKEN`` set, every call needs ``Authorization: Bearer <token>``.
A refused call writes nothing: 401 without the token, 413 past ``max_body`` bytes, 422
naming what is wrong, 409 for a run that is in another experiment here.
"""

from __future__ import annotations

import hmac
from typing import Any

import pandas as pd
import pyarrow as pa
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ..errors import (
    AlreadyExistsError,
    BusyError,
    InvalidInputError,
    MltrailError,
    NotFoundError,
    StoreCorruptError,
    WrongStateError,
)
from ..store import Store
from ..tracking.ingest import RunIngest

MAX_BODY = 64 << 20


def create_app(store: Store, token: str | None = None, max_body: int = MAX_BODY) -> FastAPI:
    ingest = RunIngest(store.layout)
    app = FastAPI(title=f"mltrail server: {store.root}")
    expected = f"Bearer {token}".encode() if token else None

    @app.middleware("http")
    async def authorise(request: Request, call_next: Any) -> Any:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return JSONResponse({"error": "a valid token is needed: Authorization: Bearer <token>"}, 401)
        return await call_next(request)

    @app.exception_handler(MltrailError)
    async def refused(_: Request, exc: MltrailError) -> JSONResponse:
        # the error's type goes along: a client raises the same exception a local store would
        return JSONResponse({"error": str(exc), "type": type(exc).__name__}, _status_of(exc))

    @app.get("/api/v1/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "store": str(store.root)}

    @app.get("/api/v1/runs/{run_id}/last-seq")
    def last_seq(run_id: str) -> dict[str, int]:
        return {"last_seq": ingest.last_seq(run_id)}

    @app.post("/api/v1/runs/{run_id}/events")
    async def events(run_id: str, experiment: str, request: Request) -> Any:
        body = await _bounded_body(request, max_body)
        if body is None:
            return JSONResponse({"error": f"a batch is at most {max_body:,} bytes"}, 413)
        from starlette.concurrency import run_in_threadpool  # the file work is off the loop

        done = await run_in_threadpool(ingest.append, experiment, run_id, body)
        return {"written": done.written, "duplicates": done.duplicates, "last_seq": done.last_seq}

    @app.post("/api/v1/runs/{run_ref}/stop")
    async def request_stop(run_ref: str, request: Request) -> dict[str, Any]:
        asked = _query(await _bounded_body(request, max_body), _STOP_ASKED, "a stop request")
        path = store.request_stop(run_ref, asked.reason, by=asked.by)
        return {"run_id": path.parent.name}  # stop/<run_id>/<request>.jsonl

    @app.get("/api/v1/runs/{run_id}/stop")
    def stop_requests(run_id: str) -> list[dict[str, Any]]:
        """The requests to stop a run, oldest first: a remote job's uploader copies them
        into its spool, where the run looks for them."""
        return [request.model_dump(mode="json") for request in ingest.stop_requests(run_id)]

    @app.get("/api/v1/search")
    def search(experiment: list[str] = Query(default=[]), filter: str | None = None,
               order_by: list[str] = Query(default=[]), max_results: int | None = None) -> Response:
        frame = store.search_runs(experiment=experiment or None, filter=filter, order_by=order_by or None,
                                  max_results=max_results)
        return _arrow(frame)

    @app.post("/api/v1/metric-history")
    async def metric_history(request: Request) -> Response:
        asked = _query(await _bounded_body(request, max_body), _HISTORY_ASKED, "a metric-history query")
        return _arrow(store.metric_history(asked.run_ids, asked.keys))

    @app.get("/api/v1/blobs/{sha256}")
    def has_blob(sha256: str) -> Any:
        try:
            store.blobs.path(sha256)
        except NotFoundError:
            return JSONResponse({"error": f"no blob {sha256}"}, 404)
        return {"ok": True}

    @app.put("/api/v1/blobs/{sha256}")
    async def put_blob(sha256: str, request: Request, large: bool = False) -> Any:
        body = await _bounded_body(request, max_body)
        if body is None:
            return JSONResponse({"error": f"a blob sent is at most {max_body:,} bytes"}, 413)
        store.blobs.put_sent(sha256, body, large)
        return {"ok": True}

    return app


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


def _query(body: bytes | None, adapter: TypeAdapter[Any], what: str) -> Any:
    """A JSON request body validated by ``adapter``; InvalidInputError (422) names the field."""
    if body is None:
        raise InvalidInputError(f"{what} is too big")
    try:
        return adapter.validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the body"
        raise InvalidInputError(f"{what}: {where}: {first['msg']}") from None


def _status_of(exc: MltrailError) -> int:
    for kind, status in ((InvalidInputError, 422), (StoreCorruptError, 422), (NotFoundError, 404),
                         (AlreadyExistsError, 409), (WrongStateError, 409), (BusyError, 503)):
        if isinstance(exc, kind):
            return status
    return 500


def _arrow(frame: pd.DataFrame) -> Response:
    """A DataFrame as an Arrow IPC stream: columns, not JSON rows."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue().to_pybytes(), media_type="application/vnd.apache.arrow.stream")


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it passes ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
