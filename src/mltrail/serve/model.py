"""A model service for the separated mode: a pickled scikit-learn model from the store,
named by a registry URI (``models:/churn@production``) or a run's (``runs:/RUN/model.pkl``).

``POST /predict`` with ``{"features": {name: number}}`` answers ``{"prediction": p}``: the
positive class's probability when the model has ``predict_proba``, else ``predict``.
Features are ordered by the model's ``feature_names_in_``, else by the run's
``features`` param (a comma-separated list, as the sample store logs it). Predict is
served on plain ASGI (:mod:`.asgi`); ``/healthz`` and the docs by FastAPI behind it.

Unpickling runs code from the file: serve only artifacts of a store you trust. The
artifact's sha256 is checked against its record before it is loaded.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, ValidationError

from ..registry.uris import resolve
from ..tracking.store import Store
from .asgi import Receive, Send, declared_length, read_body, send_json, too_large

MAX_BODY_BYTES = 1 << 20


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: dict[str, float]


def load_served_model(store: Store, uri: str) -> tuple[Any, list[str] | None]:
    """The unpickled model a URI names (hash verified) and its feature order."""
    resolved = resolve(store, uri)
    model = pickle.loads(resolved.path.read_bytes())  # noqa: S301 - a trusted store's own artifact, hash checked
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return model, [str(n) for n in names]
    params = store.get_run(resolved.run)["params"].set_index("key")["value"]
    return model, params["features"].split(",") if "features" in params else None


class ModelService:
    """``POST /predict`` on plain ASGI in front of ``app`` (FastAPI: health, docs)."""

    def __init__(self, app: Any, model: Any, order: list[str] | None) -> None:
        self.app = app
        self.model = model
        self.order = order
        self._proba = hasattr(model, "predict_proba")

    def predict(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            features = PredictRequest.model_validate_json(body).features
        except ValidationError as exc:
            return 422, {"detail": [{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors(include_url=False)]}
        names = self.order or sorted(features)
        missing = [n for n in names if n not in features]
        if missing:
            return 422, {"detail": f"missing features: {', '.join(missing)}"}
        row = np.array([[features[n] for n in names]])
        if self._proba:
            return 200, {"prediction": float(self.model.predict_proba(row)[0][-1])}
        return 200, {"prediction": float(self.model.predict(row)[0])}

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if (declared_length(scope) or 0) > MAX_BODY_BYTES:
            await too_large(send, MAX_BODY_BYTES)
            return
        body = await read_body(receive, MAX_BODY_BYTES)
        if body is None:
            await too_large(send, MAX_BODY_BYTES)
            return
        await send_json(send, *self.predict(body))


def create_model_app(store: Store, uri: str) -> ModelService:
    """The service for ``uri`` (``models:/...`` or ``runs:/RUN/artifact``)."""
    model, order = load_served_model(store, uri)
    app = FastAPI(title=f"mltrail model service: {uri}")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "model": uri, "features": order}

    return ModelService(app, model, order)
