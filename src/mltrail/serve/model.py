"""A model service for the separated mode: a pickled scikit-learn model that a run logged.

``POST /predict`` with ``{"features": {name: value}}`` answers ``{"prediction": p}``: the
positive class's probability when the model has ``predict_proba``, else ``predict``.
Features are ordered by the model's ``feature_names_in_``, else by the run's
``features`` param (a comma-separated list, as the sample store logs it).

Unpickling runs code from the file: serve only artifacts of a store you trust. The
artifact's sha256 is checked against the run's record before it is loaded.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict

from ..errors import StoreCorruptError
from ..tracking.store import Store


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: dict[str, float]


def load_run_model(store: Store, run: str, artifact: str) -> tuple[Any, list[str] | None]:
    """The unpickled model of a run's artifact (hash verified) and its feature order."""
    details = store.get_run(run)
    path = store.artifact_path(run, artifact)
    data = path.read_bytes()
    recorded = details["artifacts"].set_index("path").loc[artifact, "sha256"]
    if hashlib.sha256(data).hexdigest() != recorded:
        raise StoreCorruptError(f"artifact {artifact!r} of run {run} no longer matches its sha256")
    model = pickle.loads(data)  # noqa: S301 - a trusted store's own artifact, hash checked
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return model, [str(n) for n in names]
    params = details["params"].set_index("key")["value"]
    return model, params["features"].split(",") if "features" in params else None


def create_model_app(store: Store, run: str, artifact: str) -> FastAPI:
    model, order = load_run_model(store, run, artifact)
    app = FastAPI(title=f"mltrail model service: {run} {artifact}")

    @app.post("/predict")
    async def predict(body: PredictRequest) -> dict[str, float]:
        names = order or sorted(body.features)
        missing = [n for n in names if n not in body.features]
        if missing:
            raise HTTPException(422, f"missing features: {', '.join(missing)}")
        row = [[body.features[n] for n in names]]
        if hasattr(model, "predict_proba"):
            return {"prediction": float(model.predict_proba(row)[0][-1])}
        return {"prediction": float(model.predict(row)[0])}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "run": run, "artifact": artifact, "features": order}

    return app
