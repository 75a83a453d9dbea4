"""The A/B router (separated mode): one ASGI service in front of independent model services.

For ``POST /experiments/{key}/predict`` it assigns the unit (``exp.serving``), forwards the
features to that variant's model service over a pooled async HTTP client, answers with
the prediction, and logs the exposure when the unit is in a running experiment. The
store's lifecycle events are the only source of truth: each experiment is re-read when
its lifecycle folder changed, checked at most once a second, so a pause from the
dashboard or CLI reaches every router without a restart.

Faults: an upstream timeout is a 504 and a connection error or 5xx a 502, each naming
the variant; the router itself stays up. Malformed bodies get 422 with the reason,
unknown experiments 404, bodies over the limit 413.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidInputError, MltrailError, NotFoundError, RunStateError
from ..tracking.store import Store

REFRESH_SECONDS = 1.0
FLUSH_SECONDS = 1.0


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit_id: str = Field(min_length=1, max_length=500)
    features: dict[str, Any]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit_id: str = Field(min_length=1, max_length=500)
    metric: str = Field(min_length=1)
    value: float


class StopRequest(BaseModel):
    winner: str | None = None
    reason: str = Field(min_length=1)


class WeightsRequest(BaseModel):
    weights: dict[str, float]
    reason: str | None = None


@dataclass
class _Cached:
    experiment: Any
    fingerprint: int
    checked: float


@dataclass
class RouterState:
    store: Store
    client: httpx.AsyncClient
    admin_token: str | None
    cache: dict[str, _Cached] = field(default_factory=dict)

    def experiment(self, key: str) -> Any:
        """The experiment as the store says now (re-read when its lifecycle changed)."""
        now = time.monotonic()
        cached = self.cache.get(key)
        if cached is not None and now - cached.checked < REFRESH_SECONDS:
            return cached.experiment
        folder = self.store.root / "ab" / key / "lifecycle"
        try:
            fingerprint = len(os.listdir(folder))
        except FileNotFoundError:
            raise HTTPException(404, f"no experiment {key!r}") from None
        if cached is None or cached.fingerprint != fingerprint:
            try:
                experiment = self.store.ab.get(key)
            except NotFoundError:
                raise HTTPException(404, f"no experiment {key!r}") from None
            cached = self.cache[key] = _Cached(experiment, fingerprint, now)
        cached.checked = now
        return cached.experiment


def create_app(store: Store, client: httpx.AsyncClient | None = None, admin_token: str | None = None,
               timeout: float = 2.0, max_body_bytes: int = 64 * 1024) -> FastAPI:
    """The router app. ``client`` is the upstream HTTP client (tests pass one whose transport
    is a fake model service); by default a pooled ``httpx.AsyncClient``."""
    metrics = CollectorRegistry()
    requests_total = Counter("mltrail_router_requests", "Predict requests", ["experiment", "variant", "status"],
                             registry=metrics)
    upstream_errors = Counter("mltrail_router_upstream_errors", "Upstream failures",
                              ["experiment", "variant", "kind"], registry=metrics)
    latency = Histogram("mltrail_router_latency_seconds", "Predict latency", ["experiment", "variant"],
                        registry=metrics, buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5))
    state = RouterState(store, client or httpx.AsyncClient(
        timeout=timeout, limits=httpx.Limits(max_connections=256, max_keepalive_connections=64)), admin_token)

    async def flush_logs() -> None:
        for cached in list(state.cache.values()):
            log = store.ab._logs.get(cached.experiment.key)
            if log is not None:
                await asyncio.to_thread(log.flush)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def flusher() -> None:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                await flush_logs()

        task = asyncio.create_task(flusher())
        try:
            yield
        finally:  # graceful shutdown (SIGTERM): in-flight requests are done, then flush
            task.cancel()
            await flush_logs()
            await state.client.aclose()

    app = FastAPI(title="mltrail A/B router", lifespan=lifespan)

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    @app.post("/experiments/{key}/predict")
    async def predict(key: str, body: PredictRequest) -> dict[str, Any]:
        started = time.perf_counter()
        exp = state.experiment(key)
        if exp.state == "running":  # one hash: the assignment decides both variant and exposure
            assigned = exp.assign(body.unit_id)
            variant, exposed = assigned or exp.control, assigned is not None
        else:
            variant, exposed = exp.serving(body.unit_id), False
        spec = next(v for v in exp.spec.variants if v.name == variant)
        if not spec.url:
            raise HTTPException(502, f"variant {variant!r} has no model service URL")
        try:
            reply = await state.client.post(spec.url.rstrip("/") + "/predict", json={"features": body.features})
        except httpx.TimeoutException:
            upstream_errors.labels(key, variant, "timeout").inc()
            requests_total.labels(key, variant, "504").inc()
            raise HTTPException(504, f"the model service of variant {variant!r} timed out") from None
        except httpx.TransportError as exc:
            upstream_errors.labels(key, variant, "connection").inc()
            requests_total.labels(key, variant, "502").inc()
            raise HTTPException(502, f"the model service of variant {variant!r} is unreachable: "
                                     f"{type(exc).__name__}") from None
        if reply.status_code >= 500:
            upstream_errors.labels(key, variant, "5xx").inc()
            requests_total.labels(key, variant, "502").inc()
            raise HTTPException(502, f"the model service of variant {variant!r} answered {reply.status_code}")
        if reply.status_code >= 400:
            requests_total.labels(key, variant, str(reply.status_code)).inc()
            raise HTTPException(reply.status_code, f"variant {variant!r}: {reply.text[:500]}")
        if exposed:
            try:
                exp.log_exposure(body.unit_id, variant)
            except RunStateError:  # paused this very second: served, but not an exposure
                exposed = False
        requests_total.labels(key, variant, "200").inc()
        latency.labels(key, variant).observe(time.perf_counter() - started)
        return {"prediction": reply.json().get("prediction"), "variant": variant, "experiment": key,
                "phase": exp.phase.number, "exposed": exposed}

    @app.post("/experiments/{key}/feedback")
    async def feedback(key: str, body: FeedbackRequest) -> dict[str, Any]:
        exp = state.experiment(key)
        try:
            exp.log_feedback(body.unit_id, body.metric, body.value)
        except InvalidInputError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"logged": True}

    @app.get("/experiments")
    async def experiments() -> list[dict[str, Any]]:
        return [describe(state.experiment(key)) for key in store.ab.keys()]

    @app.get("/experiments/{key}")
    async def experiment(key: str) -> dict[str, Any]:
        return describe(state.experiment(key))

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    def admin(authorization: str | None) -> None:
        if state.admin_token is None:
            raise HTTPException(403, "admin calls are disabled: set MLTRAIL_ADMIN_TOKEN to enable them")
        if authorization != f"Bearer {state.admin_token}":
            raise HTTPException(401, "a valid bearer token is needed")

    async def lifecycle(key: str, authorization: str | None, action: Any) -> dict[str, Any]:
        admin(authorization)
        exp = state.experiment(key)
        try:
            updated = action(exp)
        except (RunStateError, InvalidInputError) as exc:
            raise HTTPException(409 if isinstance(exc, RunStateError) else 422, str(exc)) from None
        state.cache.pop(key, None)
        return describe(updated)

    @app.post("/experiments/{key}/start")
    async def start(key: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        return await lifecycle(key, authorization, lambda e: e.start(by="router"))

    @app.post("/experiments/{key}/pause")
    async def pause(key: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        return await lifecycle(key, authorization, lambda e: e.pause(by="router"))

    @app.post("/experiments/{key}/stop")
    async def stop(key: str, body: StopRequest, authorization: str | None = Header(None)) -> dict[str, Any]:
        return await lifecycle(key, authorization, lambda e: e.stop(body.winner, body.reason, by="router"))

    @app.post("/experiments/{key}/weights")
    async def weights(key: str, body: WeightsRequest, authorization: str | None = Header(None)) -> dict[str, Any]:
        return await lifecycle(key, authorization, lambda e: e.set_weights(body.weights, body.reason, by="router"))

    @app.exception_handler(MltrailError)
    async def mltrail_error(_: Request, exc: MltrailError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422 if isinstance(exc, InvalidInputError) else 409)

    return app


class BodyLimit:
    """413 for a declared body over the limit. A plain ASGI middleware: Starlette's
    BaseHTTPMiddleware would run every request through an extra task and stream."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                    response = JSONResponse({"detail": f"body over {self.max_bytes} bytes"}, status_code=413)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def describe(exp: Any) -> dict[str, Any]:
    counts: dict[str, int] = {}
    log = exp._registry._logs.get(exp.key)
    if log is not None:
        counts = dict(log.counts)
    return {"key": exp.key, "state": exp.state, "phase": exp.phase.number, "weights": exp.weights,
            "coverage": exp.coverage, "control": exp.control, "winner": exp.winner,
            "exposures_by_this_router": counts}
