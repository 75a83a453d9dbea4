"""The store server's HTTP API (FastAPI on uvicorn, the router's stack).

It owns one store folder and writes exactly the files a local store writes, so the
folder still commits to git and opens locally with ``mltrail.Store(PATH)``. Each part
has its routes in its own module: runs (:mod:`.tracking_routes`), blobs in resumable
parts (:mod:`.blob_routes`), A/B experiments
(:mod:`.ab_routes`), the model registry (:mod:`.model_routes`) and the feature store's
reads (:mod:`.feature_routes`), users and grants (:mod:`.access_routes`), saved views
(:mod:`.view_routes`) and reports (:mod:`.report_routes`); ``GET
/api/v1/health`` (open to all: it only says the server is up) and ``GET /api/v1/whoami``
are here.

A store without users takes one shared token (``MLTRAIL_SERVER_TOKEN``, else none);
once it has users, every call needs ``Authorization: Bearer <a user's token>`` and each
route asks :mod:`.gate` what that user may read and do. A refused call writes nothing:
401 without a valid token, 403 above the user's level, 404 for what is not here (or
not visible to them), 413 past ``max_body`` bytes, 422 naming what is wrong, 409 for a
state that forbids it. The
error's type goes along (``{"error", "type"}``), so a client raises the same exception
a local store would.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib.util
import logging
import threading
import time
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
    PermissionDeniedError,
    StoreCorruptError,
    WrongStateError,
)
from ..remote.http import ACTING_AS
from ..store import Store
from . import (ab_routes, access_routes, blob_routes, feature_routes, model_routes, report_routes, tracking_routes,
               view_routes)
from .bodies import MAX_BODY

# Who did what to which object, and how it ended: ``<client> <user> <method> <path>
# <status> <ms>``, one line a call at INFO (``mltrail server`` prints it; an application
# embedding the app configures it as any logger). Tokens and bodies are never logged.
ACCESS_LOG = logging.getLogger("mltrail.server.access")


def create_app(store: Store, token: str | None = None, max_body: int = MAX_BODY,
               default_permission: str = "none") -> FastAPI:
    """The server of ``store``. Without users in it, ``token`` (if any) is the one
    shared token; with users, each call needs a user's token and sees what the user may
    (``default_permission``: what a user may do to objects without a grant to them,
    ``none`` or ``read``)."""
    if default_permission not in ("none", "read"):
        raise InvalidInputError(f"the default permission is none or read, not {default_permission!r}")
    app = FastAPI(title=f"mltrail server: {store.root}")
    app.state.store = store
    app.state.max_body = max_body
    app.state.default_permission = None if default_permission == "none" else "read"
    app.state.stopping = threading.Event()  # set when the server stops: calls held open answer now
    expected = f"Bearer {token}".encode() if token else None

    @app.middleware("http")
    async def authorise(request: Request, call_next: Any) -> Any:
        given, claimed = _as_bearer(request.headers.get("authorization", ""))
        if request.url.path == "/api/v1/health":  # is it up? (says nothing else: for probes and the dashboard)
            return await call_next(request)
        if store.access.enabled():  # users: each call is one of them
            user = store.access.authenticate(given.removeprefix("Bearer ")) if given.startswith("Bearer ") else None
            if user is not None and claimed is not None and claimed != user.name:  # a token is one user's
                user = None
            if user is None:
                return JSONResponse({"error": "a valid user token is needed: Authorization: Bearer <token> "
                                              "(mltrail users token NAME makes a new one)",
                                     "type": "InvalidInputError"}, 401)
            acting_as = request.headers.get(ACTING_AS)
            if acting_as:  # a dashboard that signed its user in (OpenID Connect) acts for them
                if not user.admin:
                    return JSONResponse({"error": f"only an admin's token may act as another user ({ACTING_AS})",
                                         "type": "PermissionDeniedError"}, 403)
                try:
                    user = store.access.user(acting_as)
                except NotFoundError:
                    return JSONResponse({"error": f"no user {acting_as!r} here: mltrail users add {acting_as}",
                                         "type": "InvalidInputError"}, 401)
            request.state.user = user
        elif expected is not None and not hmac.compare_digest(given.encode(), expected):
            return JSONResponse({"error": "a valid token is needed: Authorization: Bearer <token>",
                                 "type": "InvalidInputError"}, 401)
        return await call_next(request)

    @app.middleware("http")
    async def access_log(request: Request, call_next: Any) -> Any:
        """One line a call (outermost: refusals by the token check are logged too)."""
        started = time.perf_counter()
        status = 500  # (what the client sees when a call raises past every handler)
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            user = getattr(request.state, "user", None)
            ACCESS_LOG.info("%s %s %s %s %d %.1fms", request.client.host if request.client else "-",
                            user.name if user else "-", request.method, request.url.path, status,
                            (time.perf_counter() - started) * 1000)

    @app.exception_handler(MltrailError)
    async def refused(request: Request, exc: MltrailError) -> JSONResponse:
        message = str(exc)
        user = getattr(request.state, "user", None)
        if user is not None and not user.admin:
            if isinstance(exc, NotFoundError):  # its hint lists names, some of which they may not read
                message = getattr(exc, "message", message)
            message = message.replace(str(store.root), "the store")  # where its files are is not theirs to know
        return JSONResponse({"error": message, "type": type(exc).__name__}, _status_of(exc))

    @app.get("/api/v1/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/api/v1/whoami")
    def whoami(request: Request) -> dict[str, Any]:
        user = getattr(request.state, "user", None)
        return {"user": user.name if user else None, "admin": user.admin if user else True,
                "groups": sorted(user.groups) if user else [], "users": store.access.enabled()}

    for part in (tracking_routes, blob_routes, ab_routes, model_routes, feature_routes, access_routes,
                 view_routes, report_routes):
        app.include_router(part.routes(store))
    if importlib.util.find_spec("mlflow") is not None:  # MLflow's REST API, for MLflow's clients (mltrail[mlflow])
        from . import mlflow_routes

        app.include_router(mlflow_routes.routes(store))
    return app


def _as_bearer(given: str) -> tuple[str, str | None]:
    """An Authorization header as a bearer token, and the user name basic auth claims.
    MLflow's clients send MLFLOW_TRACKING_USERNAME/PASSWORD as basic auth: the password is
    the user's mltrail token (or a store's shared token), the name must be the token's."""
    if not given.startswith("Basic "):
        return given, None
    try:
        name, _, password = base64.b64decode(given[6:], validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", None
    return (f"Bearer {password}" if password else ""), name


def _status_of(exc: MltrailError) -> int:
    for kind, status in ((PayloadTooLargeError, 413), (InvalidInputError, 422), (StoreCorruptError, 422),
                         (NotFoundError, 404), (PermissionDeniedError, 403), (AlreadyExistsError, 409), (WrongStateError, 409),
                         (BusyError, 503)):
        if isinstance(exc, kind):
            return status
    return 500
