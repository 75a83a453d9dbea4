"""The model service on the sample store's real churn models, alone and behind the router."""

import asyncio
import json
import shutil

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

import mltrail
from mltrail.serve.model import BatchPredictor, create_model_app
from mltrail.serve.router import create_app
from mltrail.serve.upstream import Reply
from tests.factories import CHURN_FEATURES as FEATURES
from tests.factories import REPO, ab_spec


@pytest.fixture
def sample(tmp_path):
    copy = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", copy, ignore=shutil.ignore_patterns(".cache"))
    return mltrail.Store(copy)


def test_model_service_predicts_with_a_logged_model(sample):
    with TestClient(create_model_app(sample, f"runs:/{sample.resolve_run('rf-depth8')}/model.pkl")) as client:
        reply = client.post("/predict", json={"features": FEATURES})
        assert reply.status_code == 200 and 0.0 <= reply.json()["prediction"] <= 1.0
        health = client.get("/healthz").json()
        assert health["features"] == list(FEATURES) and health["model"].startswith("runs:/")
        missing = client.post("/predict", json={"features": {"tenure_months": 1.0}})
        assert missing.status_code == 422 and "monthly_charges" in missing.json()["detail"]
        not_a_number = client.post("/predict", json={"features": {**FEATURES, "tenure_months": "long"}})
        assert not_a_number.status_code == 422 and "tenure_months" in not_a_number.text
        assert client.post("/predict", content=b"{oops").status_code == 422
        assert client.post("/predict", content=b"x" * (2 << 20)).status_code == 413


def test_a_tampered_artifact_is_refused(sample):
    run = sample.resolve_run("gb-lr0.2")
    path = sample.artifact_path(run, "model.pkl")
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(mltrail.StoreCorruptError, match="sha256"):
        create_model_app(sample, f"runs:/{run}/model.pkl")


@pytest.mark.slow
def test_router_in_front_of_two_real_models(sample):
    sample.registry.create("churn-test")
    sample.registry.register("churn-test", "logreg-C1")
    sample.registry.register("churn-test", "gb-lr0.2")
    sample.registry.set_alias("churn-test", "production", 1)
    control = create_model_app(sample, "models:/churn-test@production")  # a registry URI
    treatment = create_model_app(sample, f"runs:/{sample.resolve_run('gb-lr0.2')}/model.pkl")

    class ByHost:  # the router's upstream, calling the two model apps in process
        def __init__(self):
            self.client = None

        async def open(self):
            self.client = httpx.AsyncClient(transport=ByHostTransport())

        async def close(self):
            await self.client.aclose()

        async def post(self, url, body):
            reply = await self.client.post(url, content=body, headers={"content-type": "application/json"})
            return Reply(reply.status_code, reply.content)

    class ByHostTransport(httpx.AsyncBaseTransport):
        def __init__(self):
            self.apps = {"control.local": httpx.ASGITransport(app=control),
                         "treatment.local": httpx.ASGITransport(app=treatment)}

        async def handle_async_request(self, request):
            return await self.apps[request.url.host].handle_async_request(request)

    variants = [{"name": "control", "weight": 0.5, "control": True, "url": "http://control.local"},
                {"name": "treatment", "weight": 0.5, "url": "http://treatment.local"}]
    sample.ab.create(ab_spec(key="models-live", variants=variants, mde=0.05)).start()
    router = create_app(sample, upstream=ByHost())
    with TestClient(router) as client:
        answers = [client.post("/experiments/models-live/predict",
                               json={"unit_id": f"c{i}", "features": FEATURES}).json() for i in range(40)]
    by_variant = {}
    for answer in answers:
        by_variant.setdefault(answer["variant"], set()).add(round(answer["prediction"], 9))
    assert set(by_variant) == {"control", "treatment"}
    assert by_variant["control"] != by_variant["treatment"]  # two different models answered


def test_rows_submitted_in_one_turn_are_predicted_in_one_call():
    calls = []

    def predict_rows(rows):
        calls.append(len(rows))
        if np.isnan(rows).any():
            raise ValueError("Input X contains NaN.")
        return rows.sum(axis=1)

    batches = BatchPredictor(predict_rows)

    async def scenario():
        together = [batches.submit([i, 1.0]) for i in range(5)]  # one turn of the loop
        first = await asyncio.gather(*together)
        alone = await batches.submit([10.0, 1.0])  # a lone request is not kept waiting for company
        mixed = await asyncio.gather(batches.submit([1.0, 1.0]), batches.submit([float("nan"), 1.0]),
                                     batches.submit([2.0, 1.0]), return_exceptions=True)
        return first, alone, mixed

    first, alone, mixed = asyncio.run(scenario())
    assert first == [1.0, 2.0, 3.0, 4.0, 5.0] and alone == 11.0
    assert mixed[0] == 2.0 and mixed[2] == 3.0 and isinstance(mixed[1], ValueError)  # only the bad row fails
    assert calls == [5, 1, 3, 1, 1, 1]  # the refused batch of 3 was retried row by row


def test_labels_are_predictions_and_a_broken_model_answers_every_request():
    """A classifier without probabilities predicts labels ("stay", "leave"): they are
    answered as JSON (they used to hang every request); a model whose answer cannot be
    sent fails each waiting request, never leaves one hanging."""
    labels = BatchPredictor(lambda rows: np.where(rows[:, 0] > 0.5, "leave", "stay"))
    broken = BatchPredictor(lambda rows: [object() for _ in rows])
    short = BatchPredictor(lambda rows: rows[:1, 0])

    async def scenario():
        answers = await asyncio.gather(labels.submit([0.9]), labels.submit([0.1]))
        failed = await asyncio.wait_for(asyncio.gather(broken.submit([1.0]), broken.submit([2.0]),
                                                       return_exceptions=True), timeout=5)
        cut = await asyncio.wait_for(asyncio.gather(short.submit([1.0]), short.submit([2.0]),
                                                    return_exceptions=True), timeout=5)
        return answers, failed, cut

    answers, failed, cut = asyncio.run(scenario())
    assert answers == ["leave", "stay"]
    assert all(isinstance(e, TypeError) for e in failed)
    assert all(isinstance(e, ValueError) and "1 predictions for 2 rows" in str(e) for e in cut)


@pytest.mark.slow
def test_concurrent_requests_get_the_predictions_they_would_get_alone(sample):
    service = create_model_app(sample, f"runs:/{sample.resolve_run('logreg-C1')}/model.pkl")
    rows = [{name: value + i / 7 for name, value in FEATURES.items()} for i in range(40)]
    with TestClient(service) as client:  # one at a time: each is a batch of one
        alone = [client.post("/predict", json={"features": row}).json()["prediction"] for row in rows]
        nan_row = json.dumps({"features": {**FEATURES, "tenure_months": float("nan")}})  # NaN: JSON5, pydantic takes it
        refused = client.post("/predict", content=nan_row.encode())

    batch_sizes = []
    predict_rows = service.batches.predict_rows
    service.batches.predict_rows = lambda batch: batch_sizes.append(len(batch)) or predict_rows(batch)

    async def together():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service), base_url="http://m") as client:
            replies = await asyncio.gather(*(client.post("/predict", json={"features": row}) for row in rows))
        return [reply.json()["prediction"] for reply in replies]

    assert asyncio.run(together()) == pytest.approx(alone, rel=1e-12)  # (BLAS may round a batch differently)
    assert max(batch_sizes) > 1
    assert refused.status_code == 422 and "NaN" in refused.json()["detail"]


def test_a_model_whose_library_is_missing_names_what_to_install(sample, monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if scikit-learn were not installed
    with pytest.raises(mltrail.MltrailError, match=r"needs the Python module 'sklearn.*pip install scikit-learn"):
        create_model_app(sample, f"runs:/{sample.resolve_run('logreg-C1')}/model.pkl")
