"""MLflow 3's logged models through MLflow's REST API on `mltrail server`: the real
``mlflow`` package with ``MLFLOW_TRACKING_URI=http://...`` logs a model in a run (its files
through the artifact proxy, at ``mlflow-artifacts:/models/<model ID>``), loads it back by
``models:/`` and ``runs:/``, autologs, searches; the logged-model calls at the HTTP level;
and the gate: a logged model is its experiment's (read to see it, edit to change it)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mltrail
from tests.factories import serving_store

mlflow = pytest.importorskip("mlflow")
with warnings.catch_warnings():  # MLflow's own modules warn as they load (a type hint of its chat agents)
    warnings.simplefilter("ignore", UserWarning)
    import mlflow.pyfunc
    import mlflow.sklearn

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import LoggedModelStatus  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = pytest.mark.slow

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = tmp_path / "store"
    with serving_store(folder) as url:
        mlflow.set_tracking_uri(url)
        yield url, folder


def call(url: str, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """(status, answer: JSON, or the bytes of a file) of one raw request."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            raw = reply.read()
            is_json = reply.headers.get("content-type", "").startswith("application/json")
            return reply.status, (json.loads(raw or b"{}") if is_json else raw)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(60, 3))
    return x, (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)


def test_log_model_in_a_run_loads_back_by_model_and_run_uri_through_the_server(served) -> None:
    from sklearn.linear_model import LogisticRegression

    url, folder = served
    x, y = _data(np.random.default_rng(7))
    mlflow.set_experiment("churn")
    with mlflow.start_run() as run:
        mlflow.log_param("C", 0.5)
        mlflow.log_metric("accuracy", 0.875)
        model = LogisticRegression(C=0.5).fit(x, y)
        info = mlflow.sklearn.log_model(model, name="model", input_example=x[:2],
                                        serialization_format="cloudpickle")  # skops is not in mlflow-skinny

    assert info.model_uri == f"models:/{info.model_id}"
    expected = model.predict(x)
    np.testing.assert_array_equal(mlflow.sklearn.load_model(info.model_uri).predict(x), expected)
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(x), expected)

    client = MlflowClient()
    logged = client.get_logged_model(info.model_id)
    assert (logged.name, logged.source_run_id, logged.status) == ("model", run.info.run_id, LoggedModelStatus.READY)
    assert logged.artifact_location == f"mlflow-artifacts:/models/{info.model_id}"  # the server's proxy
    assert logged.params == {"C": "0.5"}
    assert [(m.key, m.value, m.run_id) for m in logged.metrics] == [("accuracy", 0.875, run.info.run_id)]
    assert logged.experiment_id == run.info.experiment_id
    assert [m.value for m in client.get_metric_history(run.info.run_id, "accuracy")] == [0.875]
    assert [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs] == [info.model_id]
    assert [m.model_id for m in mlflow.search_logged_models(output_format="list")] == [info.model_id]

    # the files went through the proxy into the store, content-addressed, named by the model's events
    local = mltrail.Store(folder)
    files = local.tracking.logged_models.get(info.model_id).files
    assert {"MLmodel", "model.pkl", "input_example.json"} <= set(files)
    assert all(local.layout.blob_path(f.sha256).exists() for f in files.values())
    status, listed = call(url, "GET", f"{API}/logged-models/{info.model_id}/artifacts/directories")
    assert status == 200 and listed["root_uri"] == logged.artifact_location
    assert {"MLmodel", "model.pkl"} <= {f["path"] for f in listed["files"]}
    status, mlmodel = call(url, "GET", f"{PROXY}/models/{info.model_id}/MLmodel")
    assert status == 200 and mlmodel == local.layout.blob_path(files["MLmodel"].sha256).read_bytes()


def test_sklearn_autolog_logs_a_model_the_run_names_as_its_output(served) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _data(np.random.default_rng(11))
    mlflow.set_experiment("autolog")
    mlflow.sklearn.autolog(serialization_format="cloudpickle")
    try:
        with mlflow.start_run() as run:
            model = LogisticRegression(C=2.0).fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    assert got.data.params["C"] == "2.0" and "training_accuracy_score" in got.data.metrics
    [output] = got.outputs.model_outputs
    logged = client.get_logged_model(output.model_id)
    assert logged.status == LoggedModelStatus.READY and logged.source_run_id == run.info.run_id
    np.testing.assert_array_equal(mlflow.sklearn.load_model(f"models:/{output.model_id}").predict(x),
                                  model.predict(x))


def test_the_logged_model_calls_of_mlflow_s_client_and_their_errors(served) -> None:
    url, _ = served
    client = MlflowClient()
    experiment_id = client.create_experiment("calls")
    created = client.create_logged_model(experiment_id, name="ranker", tags={"team": "search"},
                                         params={"depth": "3"}, model_type="xgb")
    model_id = created.model_id
    assert (created.status, created.model_type, created.tags, created.params) == \
        (LoggedModelStatus.PENDING, "xgb", {"team": "search"}, {"depth": "3"})
    client.log_model_params(model_id, {"lr": "0.1"})
    client.set_logged_model_tags(model_id, {"stage": "dev", "owner": "ana"})
    client.delete_logged_model_tag(model_id, "owner")
    assert client.finalize_logged_model(model_id, LoggedModelStatus.READY).status == LoggedModelStatus.READY
    got = client.get_logged_model(model_id)
    assert got.params == {"depth": "3", "lr": "0.1"} and got.tags == {"team": "search", "stage": "dev"}
    other = client.create_logged_model(experiment_id, name="baseline")
    found = client.search_logged_models([experiment_id], filter_string="name = 'ranker'")
    assert [m.model_id for m in found] == [model_id]
    page = client.search_logged_models([experiment_id], max_results=1)
    assert len(page) == 1 and page.token
    rest = client.search_logged_models([experiment_id], max_results=1, page_token=page.token)
    assert {page[0].model_id, rest[0].model_id} == {model_id, other.model_id}

    run = client.create_run(experiment_id)
    client.log_outputs(run.info.run_id, [mlflow.entities.LoggedModelOutput(model_id, 2)])
    assert [(o.model_id, o.step) for o in client.get_run(run.info.run_id).outputs.model_outputs] == [(model_id, 2)]

    client.delete_logged_model(other.model_id)
    with pytest.raises(MlflowException) as gone:
        client.get_logged_model(other.model_id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    status, deleted = call(url, "GET", f"{API}/logged-models/{other.model_id}?allow_deleted=true")
    assert status == 200 and deleted["model"]["info"]["model_id"] == other.model_id
    assert [m.model_id for m in client.search_logged_models([experiment_id])] == [model_id]

    # MLflow's errors, with MLflow's statuses
    missing = "m-" + "0" * 32
    for method, path, body in (("GET", f"logged-models/{missing}", None),
                               ("PATCH", f"logged-models/{missing}", {"status": "LOGGED_MODEL_READY"}),
                               ("PATCH", f"logged-models/{missing}/tags", {"tags": [{"key": "a", "value": "b"}]}),
                               ("DELETE", f"logged-models/{missing}", None)):
        status, error = call(url, method, f"{API}/{path}", body)
        assert (status, error["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST"), (method, path)
    assert call(url, "DELETE", f"{API}/logged-models/{model_id}/tags/nope")[0] == 404
    status, error = call(url, "POST", f"{API}/logged-models", {"name": "no experiment"})
    assert (status, error["error_code"]) == (400, "INVALID_PARAMETER_VALUE") and "experiment_id" in error["message"]
    status, error = call(url, "PATCH", f"{API}/logged-models/{model_id}", {})
    assert (status, error["error_code"]) == (400, "INVALID_PARAMETER_VALUE") and "status" in error["message"]
    status, error = call(url, "POST", f"{API}/runs/outputs", {"run_id": run.info.run_id, "models": [
        {"model_id": missing, "step": 0}]})
    assert (status, error["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


@pytest.fixture
def with_users(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """ana, bob (no grant) and carol (read on ana's "shared" experiment) on a served store."""
    folder = tmp_path / "store"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name) for name in ("ana", "bob", "carol")}
    local.access.grant("experiment", "shared", "carol", "read")
    with serving_store(folder) as url:
        yield url, tokens


def test_a_logged_model_is_its_experiment_s_to_read_and_to_change(with_users, monkeypatch, tmp_path) -> None:
    url, tokens = with_users
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["ana"])
    ana = MlflowClient(url)
    shared = ana.create_experiment("shared")
    model = ana.create_logged_model(shared, name="secret-ranker")
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "weights.txt").write_text("1 2 3")
    ana.log_model_artifacts(model.model_id, str(saved))  # through the proxy, as ana
    ana.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    run = ana.create_run(shared)

    ana.log_metric(run.info.run_id, "auc", 0.9, step=1, model_id=model.model_id)  # the run's and the model's

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["bob"])
    bob = MlflowClient(url)
    assert bob.search_logged_models([shared]) == []
    own_run = bob.create_run(bob.create_experiment("bobs")).info.run_id
    for path, body in (  # points logged in bob's own run that name ana's model: not written on it
            ("runs/log-metric", {"run_id": own_run, "key": "auc", "value": 0.1, "timestamp": 1, "step": 9,
                                 "model_id": model.model_id}),
            ("runs/log-batch", {"run_id": own_run, "metrics": [{"key": "auc", "value": 0.1, "timestamp": 1,
                                                                "step": 9, "model_id": model.model_id}]})):
        status, error = call(url, "POST", f"{API}/{path}", body, token=tokens["bob"])
        assert (status, error["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST"), path
    assert bob.get_metric_history(own_run, "auc") == []  # nothing half-written in his run either
    for attempt in (lambda: bob.get_logged_model(model.model_id),
                    lambda: bob.delete_logged_model(model.model_id),
                    lambda: bob.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)):
        with pytest.raises(MlflowException) as refused:
            attempt()
        assert refused.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert "shared" not in str(refused.value) and "secret-ranker" not in str(refused.value)
    for method, path, body in (("GET", f"{PROXY}/models/{model.model_id}/weights.txt", None),
                               ("GET", f"{PROXY}?path=models/{model.model_id}", None),
                               ("PUT", f"{PROXY}/models/{model.model_id}/evil.txt", b"evil"),
                               # (MLflow's client asks for the model first, and words the 404 its own way)
                               ("PATCH", f"{API}/logged-models/{model.model_id}/tags",
                                {"tags": [{"key": "owner", "value": "bob"}]}),
                               ("POST", f"{API}/runs/outputs", {"run_id": run.info.run_id, "models": [
                                   {"model_id": model.model_id, "step": 0}]}),
                               ("GET", f"{API}/logged-models/{model.model_id}/artifacts/directories", None)):
        status, error = call(url, method, path, body, token=tokens["bob"])
        assert (status, error["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST"), (method, path)

    # carol may read the experiment: she sees the model and its files, and changes nothing
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["carol"])
    carol = MlflowClient(url)
    assert [m.model_id for m in carol.search_logged_models([shared])] == [model.model_id]
    assert carol.get_logged_model(model.model_id).name == "secret-ranker"
    assert call(url, "GET", f"{PROXY}/models/{model.model_id}/weights.txt", token=tokens["carol"]) == \
        (200, b"1 2 3")
    for attempt in (lambda: carol.set_logged_model_tags(model.model_id, {"owner": "carol"}),
                    lambda: carol.log_outputs(run.info.run_id, [mlflow.entities.LoggedModelOutput(model.model_id, 0)])):
        with pytest.raises(MlflowException) as refused:
            attempt()
        assert refused.value.error_code == "PERMISSION_DENIED"
    status, _ = call(url, "PUT", f"{PROXY}/models/{model.model_id}/evil.txt", b"evil", token=tokens["carol"])
    assert status == 403

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["ana"])
    got = ana.get_logged_model(model.model_id)
    assert got.tags == {} and got.status == LoggedModelStatus.READY  # bob and carol changed nothing
    assert [(m.key, m.value, m.step) for m in got.metrics] == [("auc", 0.9, 1)]
    assert [f.path for f in ana.list_logged_model_artifacts(model.model_id)] == ["weights.txt"]
    ana.set_logged_model_tags(model.model_id, {"team": "search"})
    ana.delete_logged_model_tag(model.model_id, "team")
    ana.log_model_params(model.model_id, {"depth": "3"})
    ana.log_outputs(run.info.run_id, [mlflow.entities.LoggedModelOutput(model.model_id, 2)])
    ana.delete_logged_model(model.model_id)
    # each change names its caller, not the server's own user
    models = mltrail.Store(tmp_path / "store").tracking.logged_models
    events = models._events(models._folder_of(model.model_id))
    assert [type(e).__name__ for e in events] == [
        "LoggedModelCreated", "LoggedModelFiles", "LoggedModelFinalized", "LoggedModelMetrics", "LoggedModelTagsSet",
        "LoggedModelTagDeleted", "LoggedModelParamsLogged", "LoggedModelOutput", "LoggedModelDeleted"]
    assert {e.by for e in events} == {"ana"}
