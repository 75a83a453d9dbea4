"""MLflow's model registry on an mltrail store, with the real MLflow: through the plugin
(``mltrail:`` registry URI) and through a served store's MLflow REST API. What MLflow
registers, mltrail's registry (``store.registry``, ``store.load_model``) sees."""

import logging
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

import mltrail
from tests.factories import rendered_page, serving_store

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sklearn")
with warnings.catch_warnings():  # MLflow's own modules warn as they load (a type hint of its chat agents)
    warnings.simplefilter("ignore", UserWarning)
    import mlflow.pyfunc
    import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.tracking._model_registry.utils import _get_store_registry
from sklearn.linear_model import LogisticRegression

from mltrail.mlflow_store.registry import MltrailRegistryStore

pytestmark = pytest.mark.slow
ENTRY_POINT = "mltrail.mlflow_store.registry:MltrailRegistryStore"


@pytest.fixture(autouse=True)
def registry_scheme():
    """The ``mlflow.model_registry_store`` entry point pyproject declares, as MLflow reads it
    once mltrail is installed; an editable install made before it was declared lacks it."""
    registry = _get_store_registry()
    if "mltrail" not in registry._registry:
        registry.register("mltrail", MltrailRegistryStore)


def test_pyproject_declares_the_registry_store_entry_point():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["mlflow.model_registry_store"] == {"mltrail": ENTRY_POINT}


def churn_data(seed=7):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(80, 3))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def logged(C, registered_model_name=None):
    """A model fitted and logged by MLflow 3's log_model in a run of its own."""
    X, y = churn_data()
    with mlflow.start_run() as run:
        model = LogisticRegression(C=C).fit(X, y)
        mlflow.log_param("C", C)
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle",  # skops: not here
                                        input_example=X[:2], registered_model_name=registered_model_name)
    return run.info.run_id, info.model_id, model


def test_versions_mlflow_registers_are_numbered_as_mlflow_numbers_them_load_and_are_mltrail_s(tmp_path):
    folder = tmp_path / "runs"
    mlflow.set_tracking_uri(f"mltrail:{folder}")
    mlflow.set_experiment("churn")
    X, _ = churn_data()
    first_run, first_model, _ = logged(1.0)
    first = mlflow.register_model(f"runs:/{first_run}/model", "churn")
    second_run, second_model, model = logged(0.05, registered_model_name="churn")
    client = MlflowClient()

    assert int(first.version) == 1
    assert [(int(v.version), v.run_id, v.model_id) for v in client.search_model_versions("name = 'churn'",
                                                                                         order_by=["version_number"])] \
        == [(1, first_run, first_model), (2, second_run, second_model)]
    assert client.get_model_version("churn", 2).source == f"models:/{second_model}"
    client.set_registered_model_alias("churn", "champion", 2)
    assert int(client.get_model_version_by_alias("churn", "champion").version) == 2
    assert client.get_registered_model("churn").aliases == {"champion": 2}  # an int, as MLflow's sqlite store answers (its REST client: text)
    champion = mlflow.pyfunc.load_model("models:/churn@champion")
    np.testing.assert_array_equal(champion.predict(X), model.predict(X))
    np.testing.assert_array_equal(mlflow.pyfunc.load_model("models:/churn/latest").predict(X), model.predict(X))

    store = mltrail.Store(folder)  # mltrail's registry: the same versions, numbers and alias
    versions = store.registry.versions("churn")
    assert list(versions["version"]) == [1, 2] and list(versions["run"]) == [first_run, second_run]
    assert list(versions["artifact"]) == ["model.pkl", "model.pkl"]  # the pickle of MLflow's model folder
    assert store.registry.get("churn", alias="champion").params == {"C": "0.05"}  # the run's, snapshotted
    np.testing.assert_array_equal(store.load_model("models:/churn@champion").predict(X), model.predict(X))
    assert store.registry.list().set_index("model").loc["churn", "aliases"] == "champion=v2"


def test_the_dashboard_shows_versions_mlflow_registered_and_deleted(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    mlflow.set_tracking_uri(f"mltrail:{folder}")
    runs = [logged(c, registered_model_name="churn")[0] for c in (1.0, 0.1)]
    MlflowClient().set_registered_model_alias("churn", "champion", 2)
    MlflowClient().delete_model_version("churn", 1)
    monkeypatch.setenv("MLTRAIL_DIR", str(folder))
    at = rendered_page("models.py")
    assert not at.exception, [e.value for e in at.exception]
    versions = at.dataframe[1].value
    assert list(versions.index) == [1, 2] and list(versions["archived"]) == [True, False]
    assert versions.loc[2, "source"] == f"/run?run={runs[1]}"


def test_prompts_are_not_kept(tmp_path):
    store = MltrailRegistryStore(f"mltrail:{tmp_path / 'runs'}")
    with pytest.raises(NotImplementedError, match="not prompts"):
        store.create_prompt("greeting")


def test_a_model_folder_logged_as_a_run_s_artifacts_is_registered_from_its_runs_uri(tmp_path, caplog):
    folder = tmp_path / "runs"
    mlflow.set_tracking_uri(f"mltrail:{folder}")
    X, y = churn_data()
    model = LogisticRegression().fit(X, y)
    saved = tmp_path / "saved"
    mlflow.sklearn.save_model(model, saved, serialization_format="cloudpickle", input_example=X[:2])
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(saved), "exported/model")
    with caplog.at_level(logging.INFO, logger="mlflow"):
        version = mlflow.register_model(f"runs:/{run.info.run_id}/exported/model", "churn")
    assert "Waiting up to" not in caplog.text  # a version is READY once created: MLflow has nothing to wait for
    assert int(version.version) == 1 and version.model_id is None
    assert version.source.startswith("mltrail-artifacts:/") and "/exported/model" in version.source
    np.testing.assert_array_equal(mlflow.pyfunc.load_model("models:/churn/1").predict(X), model.predict(X))
    registered = mltrail.Store(folder).registry.get("churn", 1)
    assert registered.artifact == "exported/model/model.pkl"
    assert {f.path for f in registered.files} >= {"MLmodel", "model.pkl"}

    copy = MlflowClient().copy_model_version("models:/churn/1", "churn-prod")  # MLflow's promotion to another model
    assert (copy.name, int(copy.version), copy.run_id) == ("churn-prod", 1, run.info.run_id)
    MlflowClient().delete_model_version("churn", 1)  # the copy keeps its files
    assert MlflowClient().get_model_version_download_uri("churn-prod", 1) == f"runs:/{run.info.run_id}/exported/model"
    np.testing.assert_array_equal(mlflow.pyfunc.load_model("models:/churn-prod/1").predict(X), model.predict(X))
    assert mltrail.Store(folder).registry.get("churn-prod", 1).artifact == "exported/model/model.pkl"


def test_searches_tags_descriptions_stages_and_deletes_as_mlflow_s_stores_answer_them(tmp_path):
    folder = tmp_path / "runs"
    mlflow.set_tracking_uri(f"mltrail:{folder}")
    client = MlflowClient()
    client.create_registered_model("churn", tags={"team": "risk"}, description="who leaves")
    client.create_registered_model("fraud")
    with pytest.raises(MlflowException, match=r"Registered Model \(name=churn\) already exists") as taken:
        client.create_registered_model("churn")
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"
    runs = [logged(c)[0] for c in (1.0, 0.5, 0.1)]
    for run_id in runs:
        client.create_model_version("churn", f"runs:/{run_id}/model", run_id, tags={"run": run_id[:8]})

    assert [m.name for m in client.search_registered_models("name LIKE 'ch%'")] == ["churn"]
    assert [m.name for m in client.search_registered_models("tags.team = 'risk'")] == ["churn"]
    client.set_registered_model_tag("fraud", "team", "risk")
    client.delete_registered_model_tag("churn", "team")
    client.update_registered_model("churn", "who churns")
    assert [m.name for m in client.search_registered_models("tags.team = 'risk'")] == ["fraud"]
    assert client.get_registered_model("churn").description == "who churns"
    assert [int(v.version) for v in client.search_model_versions(f"run_id = '{runs[1]}'")] == [2]
    assert [int(v.version) for v in client.search_model_versions(f"tags.run = '{runs[2][:8]}'")] == [3]
    page = client.search_model_versions("name = 'churn'", max_results=2)
    assert len(page) == 2 and page.token

    with pytest.warns(FutureWarning, match="stages"):  # MLflow 2's stages, deprecated in MLflow
        client.transition_model_version_stage("churn", 1, "Production")
    with pytest.warns(FutureWarning, match="stages"):
        client.transition_model_version_stage("churn", 2, "production", archive_existing_versions=True)
    with pytest.warns(FutureWarning, match="stages"):
        latest = client.get_latest_versions("churn", ["Production", "Archived"])
    assert [(int(v.version), v.current_stage) for v in latest] == [(2, "Production"), (1, "Archived")]
    assert "mlflow.current_stage" not in client.get_model_version("churn", 2).tags

    client.set_registered_model_alias("churn", "champion", 3)
    client.update_model_version("churn", 3, "the best")
    client.delete_model_version("churn", 3)
    with pytest.raises(MlflowException, match=r"Model Version \(name=churn, version=3\) not found") as gone:
        client.get_model_version("churn", 3)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert [int(v.version) for v in client.search_model_versions("name = 'churn'")] == [2, 1]
    assert client.get_registered_model("churn").aliases == {}
    fourth = client.create_model_version("churn", f"runs:/{runs[0]}/model", runs[0])
    assert int(fourth.version) == 4  # as MLflow: a deleted version's number stays taken
    history = mltrail.Store(folder).registry.versions("churn")
    assert list(history["archived"]) == [False, False, True, False]  # mltrail keeps the deleted one, archived

    with pytest.raises(MlflowException, match="cannot be renamed"):
        client.rename_registered_model("churn", "churn2")
    with pytest.raises(MlflowException, match="cannot be deleted"):
        client.delete_registered_model("churn")
    with pytest.raises(MlflowException, match="files are in its store") as elsewhere:
        client.create_model_version("churn", "s3://bucket/model", runs[0])
    assert elsewhere.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="Registered Model with name=nope not found"):
        client.get_registered_model("nope")


@pytest.fixture
def with_users(tmp_path):
    folder = tmp_path / "store"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name) for name in ("ana", "bob")}
    with serving_store(folder) as url:
        yield url, folder, tokens


def test_the_server_s_registry_is_mlflow_s_and_a_user_without_a_grant_sees_nothing(with_users, monkeypatch,
                                                                                     tmp_path):
    url, folder, tokens = with_users
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["ana"])
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("churn")
    X, y = churn_data()
    model = LogisticRegression().fit(X, y)
    saved = tmp_path / "saved"  # a model folder through the artifact proxy (the server has no logged models yet)
    mlflow.sklearn.save_model(model, saved, serialization_format="cloudpickle", input_example=X[:2])
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(saved), "model")
    ana = MlflowClient(url)
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn")
    second = ana.create_model_version("churn", f"runs:/{run.info.run_id}/model", run.info.run_id)
    assert (int(version.version), int(second.version)) == (1, 2)
    ana.set_registered_model_alias("churn", "champion", 1)
    assert int(ana.get_model_version_by_alias("churn", "champion").version) == 1
    assert [m.name for m in ana.search_registered_models()] == ["churn"]
    np.testing.assert_array_equal(mlflow.pyfunc.load_model("models:/churn@champion").predict(X), model.predict(X))
    assert mltrail.Store(folder).registry.get("churn", alias="champion").by == "ana"
    remote = mltrail.Store(url, token=tokens["ana"], spool=tmp_path / "spool")  # mltrail's own client sees it
    assert (remote.registry.get("churn", alias="champion").number, remote.registry.get("churn").artifact) \
        == (1, "model/model.pkl")
    np.testing.assert_array_equal(remote.load_model("models:/churn@champion").predict(X), model.predict(X))
    with pytest.raises(mltrail.errors.InvalidInputError, match="made on the server: through its MLflow API"):
        remote.registry.set_tag("churn", "team", "risk")  # never written into the spool
    remote.close(wait=5)

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["bob"])
    bob = MlflowClient(url)
    assert bob.search_registered_models() == [] and bob.search_model_versions("name = 'churn'") == []
    for attempt in (lambda: bob.get_registered_model("churn"), lambda: bob.get_model_version("churn", 1),
                    lambda: bob.get_model_version_by_alias("churn", "champion"),
                    lambda: bob.set_registered_model_alias("churn", "mine", 2),
                    lambda: bob.delete_model_version("churn", 1),
                    lambda: bob.get_model_version_download_uri("churn", 1),
                    lambda: bob.create_model_version("churn", f"runs:/{run.info.run_id}/model", run.info.run_id)):
        with pytest.raises(MlflowException) as refused:
            attempt()
        assert refused.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as taken:  # a name taken by a model bob cannot see
        bob.create_registered_model("churn")
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS" and "ana" not in str(taken.value)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["ana"])
    assert ana.get_registered_model("churn").aliases == {"champion": "1"}  # bob changed nothing


def http(url, method, path, body=None):
    """(status, JSON answer) of one raw request, as any language's MLflow client sends it."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_the_registry_s_rest_calls_answer_as_mlflow_s_reference_gives_them(tmp_path):
    folder = tmp_path / "store"
    with serving_store(folder) as url:
        mlflow.set_tracking_uri(url)
        X, y = churn_data()
        saved = tmp_path / "saved"
        mlflow.sklearn.save_model(LogisticRegression().fit(X, y), saved, serialization_format="cloudpickle",
                                  input_example=X[:2])
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(saved), "model")
        api = "/api/2.0/mlflow"
        assert http(url, "POST", f"{api}/registered-models/create", {"name": "churn", "description": "who"})[0] == 200
        status, answer = http(url, "POST", f"{api}/model-versions/create",
                              {"name": "churn", "source": f"runs:/{run.info.run_id}/model", "run_id": run.info.run_id})
        assert status == 200 and answer["model_version"]["version"] == "1"
        assert answer["model_version"]["current_stage"] == "None" and answer["model_version"]["status"] == "READY"
        assert http(url, "POST", f"{api}/registered-models/alias",
                    {"name": "churn", "alias": "champion", "version": "1"}) == (200, {})
        status, answer = http(url, "GET", "/ajax-api/2.0/mlflow/registered-models/alias?name=churn&alias=champion")
        assert status == 200 and answer["model_version"]["aliases"] == ["champion"]
        status, answer = http(url, "PATCH", f"{api}/registered-models/update", {"name": "churn", "description": "new"})
        assert status == 200 and answer["registered_model"]["description"] == "new"
        status, answer = http(url, "GET", f"{api}/model-versions/get-download-uri?name=churn&version=1")
        assert status == 200 and answer["artifact_uri"] == f"runs:/{run.info.run_id}/model"
        assert http(url, "DELETE", f"{api}/registered-models/alias", {"name": "churn", "alias": "champion"}) == (200, {})
        status, answer = http(url, "GET", f"{api}/registered-models/get?name=nope")
        assert (status, answer["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
        assert answer["message"] == "Registered Model with name=nope not found"
        status, answer = http(url, "GET", f"{api}/model-versions/get?name=churn&version=7")
        assert (status, answer["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
        status, answer = http(url, "POST", f"{api}/registered-models/create", {"name": "churn"})
        assert (status, answer["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
        status, answer = http(url, "POST", f"{api}/model-versions/create", {"name": "churn", "source": "/tmp/x"})
        assert (status, answer["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        status, answer = http(url, "DELETE", f"{api}/model-versions/delete", {"name": "churn", "version": "1"})
        assert status == 200
        status, answer = http(url, "GET", f"{api}/model-versions/search?filter=name%3D%27churn%27")
        assert (status, answer) == (200, {})


def test_a_version_imported_without_its_files_is_listed_and_its_download_says_why(tmp_path):
    from tests.migration.mlruns import MlrunsBuilder

    builder = MlrunsBuilder(tmp_path / "mlruns")
    builder.experiment("1", "churn")
    builder.run("1", "a" * 32, name="fit", artifacts={"model/model.pkl": b"\x80\x04N."})
    builder.model("churn", [{"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model"}, {"source": "s3://nowhere/x"},
                            {"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model", "deleted": True}])
    store = mltrail.Store(tmp_path / "store")
    store.import_mlflow(builder.root)
    client = MlflowClient(f"mltrail:{store.root}")
    versions = {v.version: v for v in client.search_model_versions("name = 'churn'")}
    assert sorted(versions) == [1, 2]  # the one deleted in MLflow is deleted here too
    assert (versions[2].source, versions[2].run_id) == ("s3://nowhere/x", None)
    with pytest.raises(MlflowException, match="imported from MLflow without its files: its source s3://nowhere/x"):
        client.get_model_version_download_uri("churn", "2")
    with pytest.raises(MlflowException, match="Model Version .*version=3.* not found"):
        client.get_model_version("churn", "3")
