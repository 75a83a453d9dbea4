"""The A/B router (separated mode): one ASGI service in front of independent model services.

``POST /experiments/{key}/predict`` with ``{"unit_id": ..., "features": {...}}`` (and
optionally the unit's ``"attributes"``, logged with its exposure) assigns
the unit, forwards the features to that variant's model service over a pooled HTTP
client (:mod:`.upstream`), answers with the prediction, and logs the exposure when the
unit is in a running experiment. ``POST /experiments/{key}/feedback`` logs a KPI value.
The store's lifecycle events are the only source of truth: each experiment is re-read at
most once a second, so a pause from the dashboard or CLI reaches every router without a
restart.

These two calls carry all the traffic, so :class:`HotPaths` serves them on plain ASGI
(see :mod:`.asgi` for why); everything else (status, ``/metrics``, admin calls) is an
ordinary FastAPI app behind it.

Faults: an upstream timeout is a 504 and a connection error or 5xx a 502, each naming
the variant, unless the experiment's spec says ``fallback_to_control`` (then the
control answers); the router itself stays up. Malformed bodies get 422 with the reason,
unknown experiments 404, bodies over the limit 413. Admin calls (start, pause, stop,
weights) write lifecycle files under a lock: they run off the event loop, so a lock held
elsewhere never stalls a predict, and one not had within ``MLTRAIL_LOCK_TIMEOUT`` is a
503. Every library error maps to one status (:func:`status_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union

import orjson
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from ..ab.experiment import AbRegistry, Experiment
from ..ab.logging import check_attributes
from ..errors import (
    AlreadyExistsError,
    BusyError,
    InvalidInputError,
    MltrailError,
    NotFoundError,
    PermissionDeniedError,
    UpstreamError,
    UpstreamTimeoutError,
    WrongStateError,
)
from ..registry.uris import parse_model_uri
from ..remote.ab import RemoteAbRegistry
from ..remote.http import Server
from ..remote.store import RemoteStore
from ..storage.layout import FOLDER_NAME
from ..store import Store
from .asgi import Receive, Send, declared_length, receive_body, send_json, too_large
from .upstream import Reply, Upstream, UpstreamTimeout, UpstreamUnreachable

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
HOT_PATH = re.compile(f"/experiments/({FOLDER_NAME})/(predict|feedback)")  # only a valid key


# what a feature or an entity key may be: JSON scalars that every model service and the
# online store can take (an int past 64 bits, a list or a dict gave 500s)
Scalar = Union[StrictBool, Annotated[int, Field(ge=-2**63, le=2**63 - 1)], float, str, None]
KeyValue = Union[Annotated[int, Field(ge=-2**63, le=2**63 - 1)], str]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit_id: str = Field(min_length=1, max_length=500)
    features: dict[str, Scalar] = Field(default_factory=dict)
    entity: dict[str, KeyValue] | None = None  # join keys: the variant's online features are looked up
    # the unit's attributes (country, platform...), logged with its exposure: results by dimension
    attributes: dict[str, Scalar] | None = None


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


class RouteError(Exception):
    """An answer other than 200: its status and the reason given to the caller."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class _Cached:
    """An experiment as last read, with what the hot path needs precomputed."""

    experiment: Experiment
    checked: float
    urls: dict[str, str | None]  # variant -> its model service's /predict
    features: dict[str, list[str]]  # variant -> the online features it needs

    @classmethod
    def of(cls, experiment: Experiment, now: float) -> _Cached:
        variants = experiment.spec.variants
        return cls(experiment, now, {v.name: v.url.rstrip("/") + "/predict" if v.url else None for v in variants},
                   {v.name: list(v.features) for v in variants})


class RouterMetrics:
    """The Prometheus series of one router app (its own registry: tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mltrail_router_requests", "Predict requests",
                                ["experiment", "variant", "status"], registry=self.registry)
        self.upstream_errors = Counter("mltrail_router_upstream_errors", "Upstream failures",
                                       ["experiment", "variant", "kind"], registry=self.registry)
        self.fallbacks = Counter("mltrail_router_fallbacks", "Requests the control answered for a failed variant",
                                 ["experiment", "variant"], registry=self.registry)
        self.latency = Histogram("mltrail_router_latency_seconds", "Predict latency", ["experiment", "variant"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5))
        self.flush_failures = Counter("mltrail_router_log_flush_failures",
                                      "Exposure-log flushes that failed (each is retried; nothing queued is dropped)",
                                      ["experiment"], registry=self.registry)
        self._served: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._failures_seen: dict[str, int] = {}

    def count_flush_failures(self, logs: dict[str, Any]) -> None:
        """Bring the flush-failure counter up to the logs' own counts (read at scrape)."""
        for key, log in logs.items():
            new = log.failed_flushes - self._failures_seen.get(key, 0)
            if new > 0:
                self.flush_failures.labels(key).inc(new)
                self._failures_seen[key] = log.failed_flushes

    def served(self, experiment: str, variant: str) -> tuple[Any, Any]:
        """A variant's series of answered requests and of latency, found once (``labels``
        builds a key and takes a lock on every call, on every request)."""
        series = self._served.get((experiment, variant))
        if series is None:
            series = self._served[experiment, variant] = (self.requests.labels(experiment, variant, "200"),
                                                          self.latency.labels(experiment, variant))
        return series


class Router:
    """What the router knows and does, apart from HTTP framing."""

    def __init__(self, store: Store, upstream: Upstream, admin_token: str | None) -> None:
        self.store = store
        self.upstream = upstream
        self.admin_token = admin_token
        self.metrics = RouterMetrics()
        self._cache: dict[str, _Cached] = {}

    # -- the store's view ------------------------------------------------------------

    def _cached(self, key: str) -> _Cached:
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached.checked < REFRESH_SECONDS:
            return cached
        try:  # cheap: the registry lists the lifecycle folder and reads only new files
            cached = self._cache[key] = _Cached.of(self.store.ab.get(key), now)
        except NotFoundError:
            raise RouteError(404, f"no experiment {key!r}") from None
        return cached

    def experiment(self, key: str) -> Experiment:
        """The experiment as the store says now (re-read at most once a second)."""
        return self._cached(key).experiment

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)

    def open_logs(self) -> dict[str, Any]:
        """This process's exposure logs of the experiments it has served."""
        logs = {key: self.store.ab.open_log(key) for key in list(self._cache)}
        return {key: log for key, log in logs.items() if log is not None}

    async def flush_logs(self) -> None:
        """Flush every log now (at shutdown); one that fails is reported and kept for the
        exit-time flush, and does not stop the others."""
        for key, log in self.open_logs().items():
            try:
                await asyncio.to_thread(log.flush)
            except OSError as exc:
                logger.warning("mltrail router: could not flush the exposure log of %r: %s", key, exc)

    # -- the hot path ----------------------------------------------------------------

    async def predict(self, key: str, body: bytes) -> dict[str, Any]:
        started = time.perf_counter()
        request = _parse(PredictRequest, body)
        try:
            attributes = check_attributes(request.attributes) if request.attributes else None
        except InvalidInputError as exc:  # refused before the model is asked
            raise RouteError(422, str(exc)) from None
        cached = self._cached(key)
        exp = cached.experiment
        if exp.state == "running":  # one hash: the assignment decides both variant and exposure
            assigned = exp.assign(request.unit_id)
            variant, exposed = assigned or exp.control, assigned is not None
        else:
            variant, exposed = exp.serving(request.unit_id), False
        try:
            served_by, prediction = await self._predict_upstream(key, exp, cached, variant, request)
        except RouteError as exc:
            self.metrics.requests.labels(key, variant, str(exc.status)).inc()
            raise
        if exposed:  # intention to treat: a unit served by the fallback stays in its variant
            try:
                exp.log_exposure(request.unit_id, variant, attributes)
            except WrongStateError:  # paused this very second: served, but not an exposure
                exposed = False
        answered, latency = self.metrics.served(key, variant)
        answered.inc()
        latency.observe(time.perf_counter() - started)
        answer = {"prediction": prediction, "variant": variant, "experiment": key,
                  "phase": exp.phase.number, "exposed": exposed}
        if served_by != variant:  # the fallback answered
            answer["served_by"] = served_by
        return answer

    async def _predict_upstream(self, key: str, exp: Experiment, cached: _Cached, variant: str,
                                request: PredictRequest) -> tuple[str, Any]:
        """Which variant's service answered, and its prediction (the control's when the
        variant's fails and the spec says ``fallback_to_control``)."""
        try:
            payload = self._payload(cached, variant, request)
            reply = await self._forward(key, variant, cached.urls[variant], payload)
            served_by = variant
        except RouteError as exc:
            if variant == exp.control or not exp.spec.fallback_to_control or exc.status < 500:
                raise
            self.metrics.fallbacks.labels(key, variant).inc()
            served_by = exp.control
            reply = await self._forward(key, served_by, cached.urls[served_by],
                                        self._payload(cached, served_by, request))
        try:
            return served_by, orjson.loads(reply.body)["prediction"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            self.metrics.upstream_errors.labels(key, served_by, "bad_answer").inc()
            raise RouteError(502, f"the model service of variant {served_by!r} answered without a "
                                  'JSON "prediction"') from None

    def _payload(self, cached: _Cached, variant: str, request: PredictRequest) -> bytes:
        """The model service's request: the caller's features, plus the variant's online
        features looked up by the request's entity key (the caller's own values win).
        The lookup is one SQLite read (~0.3 ms), done on the event loop."""
        refs = cached.features[variant]
        if not refs:
            return orjson.dumps({"features": request.features})
        features = dict(request.features)
        needed = [ref for ref in refs if ref.partition(":")[2] not in features]
        if needed:
            if request.entity is None:
                names = ", ".join(ref.partition(":")[2] for ref in needed)
                raise RouteError(422, f"variant {variant!r} needs {names}: send them in features, or an "
                                      "entity key to look them up online")
            try:
                online = self.store.features.get_online_features(needed, [request.entity])
            except MltrailError as exc:
                raise RouteError(422, f"online features for variant {variant!r}: {exc}") from None
            for ref in needed:
                name = ref.partition(":")[2]
                features[name] = online[name][0]
        return orjson.dumps({"features": features})

    async def _forward(self, key: str, variant: str, url: str | None, payload: bytes) -> Reply:
        if url is None:
            raise RouteError(502, f"variant {variant!r} has no model service URL")
        try:
            reply = await self.upstream.post(url, payload)
        except UpstreamTimeout as exc:
            self.metrics.upstream_errors.labels(key, variant, "timeout").inc()
            raise RouteError(504, f"the model service of variant {variant!r} timed out: {exc}") from None
        except UpstreamUnreachable as exc:
            self.metrics.upstream_errors.labels(key, variant, "connection").inc()
            raise RouteError(502, f"the model service of variant {variant!r} is unreachable: {exc}") from None
        if reply.status >= 500:
            self.metrics.upstream_errors.labels(key, variant, "5xx").inc()
            raise RouteError(502, f"the model service of variant {variant!r} answered {reply.status}")
        if reply.status >= 400:  # the caller's features were wrong: pass the reason on
            raise RouteError(reply.status, f"variant {variant!r}: {reply.body[:500].decode(errors='replace')}")
        return reply

    def feedback(self, key: str, body: bytes) -> dict[str, Any]:
        request = _parse(FeedbackRequest, body)
        try:
            self.experiment(key).log_feedback(request.unit_id, request.metric, request.value)
        except InvalidInputError as exc:
            raise RouteError(422, str(exc)) from None
        return {"logged": True}

    # -- admin -----------------------------------------------------------------------

    def user_registry(self, authorization: str | None) -> AbRegistry | None:
        """In front of a server's store, a caller's own token (not the router's admin
        token) acts as that user: the server checks that they manage the experiment. None
        for the admin token, or a router on a folder."""
        if not isinstance(self.store, RemoteStore) or not (authorization or "").startswith("Bearer "):
            return None
        token = authorization.removeprefix("Bearer ")
        if self.admin_token is not None and hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return None
        return RemoteAbRegistry(Server(self.store.url, token), self.store.tracking.layout)

    def check_admin(self, authorization: str | None) -> None:
        if self.admin_token is None:
            raise RouteError(403, "admin calls are disabled: set MLTRAIL_ADMIN_TOKEN to enable them")
        given = (authorization or "").encode()
        if not hmac.compare_digest(given, f"Bearer {self.admin_token}".encode()):  # constant time
            raise RouteError(401, "a valid bearer token is needed")


def _parse(model: type[BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:  # the same shape as FastAPI's 422s
        raise RouteError(422, orjson.loads(exc.json(include_url=False, include_context=False))) from None


class HotPaths:
    """``POST /experiments/{key}/predict`` and ``/feedback`` served straight on ASGI; every
    other request, and any request over the body limit, is answered as FastAPI would."""

    def __init__(self, app: Any, router: Router, max_bytes: int) -> None:
        self.app = app
        self.router = router
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (declared_length(scope) or 0) > self.max_bytes:
            await too_large(send, self.max_bytes)
            return
        match = HOT_PATH.fullmatch(scope["path"]) if scope["method"] == "POST" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        body = await receive_body(scope, receive, send, self.max_bytes)
        if body is None:
            return
        key, action = match.groups()
        try:
            if action == "predict":
                answer = await self.router.predict(key, body)
            else:
                answer = self.router.feedback(key, body)
        except RouteError as exc:
            await send_json(send, exc.status, {"detail": exc.detail})
            return
        await send_json(send, 200, answer)


def create_app(store: Store, upstream: Upstream | None = None, admin_token: str | None = None,
               timeout: float = 2.0, max_body_bytes: int = 64 * 1024) -> Any:
    """The router's ASGI app. ``upstream`` posts to the model services (tests pass fake
    ones); by default a pooled :class:`~mltrail.serve.upstream.Upstream` with ``timeout``."""
    router = Router(store, upstream or Upstream(timeout=timeout), admin_token)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # exposures reach the disk every MLTRAIL_FLUSH_SECONDS from the process's background
        # flusher (mltrail.storage.background), which outlives a failed flush
        await router.upstream.open()
        try:
            yield
        finally:  # graceful shutdown (SIGTERM): in-flight requests are done, then flush
            await router.flush_logs()
            await router.upstream.close()

    app = FastAPI(title="mltrail A/B router", lifespan=lifespan)

    @app.exception_handler(RouteError)
    async def route_error(_: Request, exc: RouteError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(MltrailError)
    async def mltrail_error(_: Request, exc: MltrailError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    @app.get("/experiments")
    async def experiments() -> list[dict[str, Any]]:
        described = []
        for key in store.ab.keys():
            try:
                described.append(describe(store, router.experiment(key)))
            except (RouteError, MltrailError):  # one unreadable experiment never hides the others
                continue
        return described

    @app.get("/experiments/{key}")
    async def experiment(key: str) -> dict[str, Any]:
        return describe(store, router.experiment(key))

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        router.metrics.count_flush_failures(router.open_logs())
        return PlainTextResponse(generate_latest(router.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def lifecycle(key: str, authorization: str | None, action: Callable[[Experiment], Experiment]) -> Any:
        user = router.user_registry(authorization)
        if user is None:
            router.check_admin(authorization)
        exp = router.experiment(key) if user is None else await asyncio.to_thread(user.get, key)
        # a lifecycle change takes the experiment's file lock and writes a file: off the
        # event loop, with a bounded wait (BusyError, a 503) if another process holds it
        updated = await asyncio.to_thread(action, exp)
        router.forget(key)
        return await asyncio.to_thread(describe, store, updated)

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

    return HotPaths(app, router, max_body_bytes)


def status_of(exc: MltrailError) -> int:
    """The HTTP status of a library error."""
    for kind, status in ((InvalidInputError, 422), (NotFoundError, 404), (PermissionDeniedError, 403),
                         (AlreadyExistsError, 409),
                         (WrongStateError, 409), (BusyError, 503), (UpstreamTimeoutError, 504),
                         (UpstreamError, 502)):
        if isinstance(exc, kind):
            return status
    return 500


def describe(store: Store, exp: Experiment) -> dict[str, Any]:
    log = store.ab.open_log(exp.key)
    counts: dict[str, int] = dict(log.counts) if log is not None else {}
    variants = [{"name": v.name, "weight": exp.weights[v.name], "url": v.url, "model": v.model,
                 "version": _registered_version(store, v.model)} for v in exp.spec.variants]
    return {"key": exp.key, "state": exp.state, "phase": exp.phase.number, "weights": exp.weights,
            "coverage": exp.coverage, "control": exp.control, "winner": exp.winner,
            "fallback_to_control": exp.spec.fallback_to_control, "variants": variants,
            "exposures_by_this_router": counts}


def _registered_version(store: Store, uri: str | None) -> int | None:
    """The registry version a variant's ``models:/`` URI names now (None for other URIs
    or one that does not resolve): the lineage of what this router is serving."""
    if not uri or not uri.startswith("models:/"):
        return None
    try:
        name, number, alias = parse_model_uri(uri)
        return store.registry.get(name, number, alias).number
    except MltrailError:
        return None
