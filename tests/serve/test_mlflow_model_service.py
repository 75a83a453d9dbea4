"""The model service, and the A/B router in front of it, on MLflow models that MLflow itself
saved: a scikit-learn model in MLflow's default format (skops since MLflow 3.x), an XGBoost
Booster, a LightGBM Booster and a PythonModel answer a JSON predict request with what
MLflow's own loaded model predicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import mltrail
from mltrail.serve.model import create_model_app
from mltrail.serve.router import create_app
from mltrail.serve.upstream import Reply
from tests.factories import ab_spec, quiet_run
from tests.registry.mlflow_saved import save_models

pytest.importorskip("mlflow")
pytest.importorskip("skops")
pytestmark = pytest.mark.slow  # MLflow saves the models in a child process first

SERVED = ("sklearn-sgd", "xgboost-booster", "lightgbm-booster", "pyfunc")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("mlflow") / "models"
    return folder, save_models(folder)


@pytest.fixture
def logged(saved: tuple[Path, dict[str, Any]], store: mltrail.Store) -> tuple[mltrail.Store, str]:
    folder, _ = saved
    with quiet_run(store, "mlflow-models", name="saved") as run:
        for name in SERVED:
            run.log_artifact(folder / name, name=name)
    store.registry.create("wine")
    store.registry.register("wine", run.id, "sklearn-sgd")
    return store, run.id


def rows(expected: dict[str, Any]) -> list[dict[str, float]]:
    return pd.DataFrame(**expected["sample"]).to_dict(orient="records")


@pytest.mark.parametrize("name", [*SERVED[:-1], pytest.param(SERVED[-1], marks=pytest.mark.filterwarnings(
    "ignore:.*Any type hint:UserWarning"))])  # (MLflow's advice to the PythonModel the test saved)
def test_an_mlflow_model_answers_a_predict_request_as_mlflow_predicts(saved, logged, name):
    _, expected = saved
    store, run_id = logged
    uri = "models:/wine/1" if name == "sklearn-sgd" else f"runs:/{run_id}/{name}"
    model = expected["models"][name]
    wanted = model["proba"] or model["predict"]  # (a classifier's answer is its positive class's probability)
    with TestClient(create_model_app(store, uri)) as client:
        assert client.get("/healthz").json()["features"] == ["a", "b", "c"]  # from the model, else its signature
        for i, features in enumerate(rows(expected)[:5]):
            reply = client.post("/predict", json={"features": features})
            assert reply.status_code == 200, reply.text
            assert reply.json()["prediction"] == pytest.approx(wanted[i], rel=1e-6), (name, i)
        missing = client.post("/predict", json={"features": {"a": 1.0}})
        assert missing.status_code == 422 and "b, c" in missing.json()["detail"]


def test_the_router_serves_mlflow_models_as_variants(saved, logged):
    _, expected = saved
    store, run_id = logged
    apps = {"control.local": create_model_app(store, "models:/wine/1"),
            "treatment.local": create_model_app(store, f"runs:/{run_id}/xgboost-booster")}

    class InProcess:  # the router's upstream, calling the two model apps in this process
        async def open(self) -> None:
            transports = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}

            class ByHost(httpx.AsyncBaseTransport):
                async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                    return await transports[request.url.host].handle_async_request(request)

            self.client = httpx.AsyncClient(transport=ByHost())

        async def close(self) -> None:
            await self.client.aclose()

        async def post(self, url: str, body: bytes) -> Reply:
            reply = await self.client.post(url, content=body, headers={"content-type": "application/json"})
            return Reply(reply.status_code, reply.content)

    variants = [{"name": "control", "weight": 0.5, "control": True, "url": "http://control.local"},
                {"name": "treatment", "weight": 0.5, "url": "http://treatment.local"}]
    store.ab.create(ab_spec(key="mlflow-models", variants=variants, mde=0.05)).start()
    features = rows(expected)[0]
    wanted = {"control": expected["models"]["sklearn-sgd"]["proba"][0],
              "treatment": expected["models"]["xgboost-booster"]["predict"][0]}
    with TestClient(create_app(store, upstream=InProcess())) as client:
        answers = [client.post("/experiments/mlflow-models/predict",
                               json={"unit_id": f"u{i}", "features": features}).json() for i in range(30)]
    assert {a["variant"] for a in answers} == {"control", "treatment"}
    for answer in answers:
        assert answer["prediction"] == pytest.approx(wanted[answer["variant"]], rel=1e-6)
