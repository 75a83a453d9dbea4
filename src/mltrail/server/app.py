"""The store server's HTTP API (FastAPI on uvicorn, the router's stack).

It owns one store folder and writes exactly the files a local store writes, so the
folder still commits to git and opens locally with ``mltrail.Store(PATH)``. Each part
has its routes in its own module: runs (:mod:`.tracking_routes`), A/B experiments
(:mod:`.ab_routes`), the model registry (:mod:`.model_routes`) and the feature store's
reads (:mod:`.feature_routes`); ``GET /api/v1/health`` is here.

With ``MLTRAIL_SERVER_TOKEN`` set, every call needs ``Authorization: Bearer <token>``.
A refused call writes nothing: 401 without the token, 413 past ``max_body`` bytes, 422
naming what is wrong, 404 for what is not here, 409 for a state that forbids it. The
error's type goes along (``{"error", "type"}``), so a client raises the same exception
a local store would.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..errors import (
    AlreadyExistsError,
    BusyError,
    InvalidInputError,
    MltrailError,
    NotFoundError,
    PayloadTooLargeError,
    StoreCorruptError,
    WrongStateError,
)
from ..store import Store
from . import ab_routes, feature_routes, model_routes, tracking_routes
from .bodies import MAX_BODY


def create_app(store: Store, token: str | None = None, max_body: int = MAX_BODY) -> FastAPI:
    app = FastAPI(title=f"mltrail server: {store.root}")
    app.state.max_body = max_body
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
        return JSONResponse({"error": str(exc), "type": type(exc).__name__}, _status_of(exc))

    @app.get("/api/v1/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "store": str(store.root)}

    for part in (tracking_routes, ab_routes, model_routes, feature_routes):
        app.include_router(part.routes(store))
    return app


def _status_of(exc: MltrailError) -> int:
    for kind, status in ((PayloadTooLargeError, 413), (InvalidInputError, 422), (StoreCorruptError, 422),
                         (NotFoundError, 404), (AlreadyExistsError, 409), (WrongStateError, 409),
                         (BusyError, 503)):
        if isinstance(exc, kind):
            return status
    return 500
