"""MLflow's REST API on `mltrail server`: MLflow's own Python client (its RestStore) on a
real server, the answers and errors at the HTTP level as MLflow's reference gives them,
and the permission gate: a user sees and changes only what their grants allow."""

import base64
import json
import urllib.error
import urllib.request

import pytest

import mltrail
from tests.factories import serving_store

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "store"
    with serving_store(folder) as url:
        yield url, folder


def call(url, method, path, body=None, headers=None):
    """(status, JSON answer) of one raw request."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_mlflow_s_client_logs_reads_and_searches_runs_on_the_server(served, tmp_path):
    url, folder = served
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_params({"C": 1.0, "penalty": "l2"})
        for step in range(5):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.set_tag("team", "risk")
        mlflow.log_dict({"layers": 3}, "config/model.json")
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "baseline"
    assert got.data.params == {"C": "1.0", "penalty": "l2"}
    assert got.data.metrics == {"loss": 0.2}
    assert got.data.tags["team"] == "risk"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")] == \
        [(s, 1 / (s + 1)) for s in range(5)]
    found = mlflow.search_runs(experiment_names=["churn"], filter_string="params.penalty = 'l2'")
    assert list(found["run_id"]) == [run.info.run_id]
    assert mlflow.search_runs(experiment_names=["churn"], filter_string="metrics.loss > 0.5").empty
    # artifacts went through the proxy, into the store, content-addressed
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["config"]
    assert mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/config/model.json") == {"layers": 3}
    # what the server wrote is an mltrail store: the folder opens locally
    local = mltrail.Store(folder).get_run(run.info.run_id)
    assert local["tags"]["team"] == "risk" and set(local["artifacts"]["path"]) == {"config/model.json"}


def test_an_experiment_created_by_mlflow_exists_before_its_first_run_with_its_tags(served):
    url, _ = served
    client = MlflowClient(url)
    experiment_id = client.create_experiment("empty", tags={"owner": "ana"})
    got = client.get_experiment_by_name("empty")
    assert got.experiment_id == experiment_id and got.tags == {"owner": "ana"}
    client.set_experiment_tag(experiment_id, "stage", "dev")
    assert client.get_experiment(experiment_id).tags == {"owner": "ana", "stage": "dev"}
    assert "empty" in [e.name for e in client.search_experiments()]
    client.delete_experiment(experiment_id)
    assert "empty" not in [e.name for e in client.search_experiments()]
    with pytest.raises(MlflowException) as taken:
        client.create_experiment("empty")
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
def test_errors_are_mlflow_s_error_codes_with_mlflow_s_statuses(served, prefix):
    url, _ = served
    missing = call(url, "GET", f"{prefix}/runs/get?run_id=01NOSUCHRUN0000000000000000")
    assert missing[0] == 404 and missing[1]["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "01NOSUCHRUN" in missing[1]["message"]
    no_experiment = call(url, "GET", f"{prefix}/experiments/get?experiment_id=42")
    assert no_experiment[0] == 404 and no_experiment[1]["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    by_name = call(url, "GET", f"{prefix}/experiments/get-by-name?experiment_name=nope")
    assert by_name[0] == 404 and by_name[1]["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    not_json = call(url, "POST", f"{prefix}/runs/create", b"{not json")
    assert not_json[0] == 400 and not_json[1]["error_code"] == "INVALID_PARAMETER_VALUE"
    wrong_type = call(url, "POST", f"{prefix}/runs/log-metric", {"run_id": "x", "key": "m", "value": "high"})
    assert wrong_type[0] == 400 and wrong_type[1]["error_code"] == "INVALID_PARAMETER_VALUE"
    created = call(url, "POST", f"{prefix}/experiments/create", {"name": "churn"})
    assert created[0] == 200 and created[1]["experiment_id"].isdigit()
    again = call(url, "POST", f"{prefix}/experiments/create", {"name": "churn"})
    assert again[0] == 400 and again[1]["error_code"] == "RESOURCE_ALREADY_EXISTS"
    # a refusal no retry changes is a 400, as MLflow's stores answer a thing's state: a 500
    # (INVALID_STATE) would have MLflow's client retry it for minutes
    assert call(url, "POST", f"{prefix}/registered-models/create", {"name": "m"})[0] == 200
    kept = call(url, "DELETE", f"{prefix}/registered-models/delete", {"name": "m"})
    assert kept[0] == 400 and kept[1]["error_code"] == "INVALID_PARAMETER_VALUE" and "history" in kept[1]["message"]
    run_id = call(url, "POST", f"{prefix}/runs/create", {"experiment_id": created[1]["experiment_id"]})[1]["run"]["info"]["run_id"]
    assert call(url, "POST", f"{prefix}/runs/update", {"run_id": run_id, "status": "FINISHED"})[0] == 200
    assert call(url, "POST", f"{prefix}/runs/delete", {"run_id": run_id})[0] == 200
    deleted_twice = call(url, "POST", f"{prefix}/runs/delete", {"run_id": run_id})
    assert deleted_twice[0] == 200  # MLflow's stores leave a deleted run deleted, without an error


def test_a_changed_param_is_refused_as_mlflow_refuses_it_and_nothing_is_written(served):
    url, folder = served
    client = MlflowClient(url)
    run = client.create_run(client.create_experiment("churn"))
    client.log_param(run.info.run_id, "C", "1.0")
    with pytest.raises(MlflowException) as refused:
        client.log_batch(run.info.run_id, params=[mlflow.entities.Param("C", "2.0")],
                         metrics=[mlflow.entities.Metric("m", 1.0, 0, 0)])
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE" and "Changing param values" in str(refused.value)
    assert client.get_run(run.info.run_id).data.params == {"C": "1.0"}
    assert client.get_run(run.info.run_id).data.metrics == {}


@pytest.fixture
def with_users(tmp_path):
    folder = tmp_path / "store"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name) for name in ("ana", "bob")}
    with serving_store(folder) as url:
        yield url, tokens


def test_a_user_sees_and_changes_only_what_their_grants_allow(with_users, monkeypatch):
    url, tokens = with_users
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["ana"])
    ana = MlflowClient(url)
    secret = ana.create_experiment("secret")
    run = ana.create_run(secret)
    ana.log_metric(run.info.run_id, "loss", 0.5)
    ana.set_terminated(run.info.run_id)
    assert ana.get_run(run.info.run_id).data.metrics == {"loss": 0.5}

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["bob"])
    bob = MlflowClient(url)
    assert "secret" not in [e.name for e in bob.search_experiments()]
    assert bob.search_runs([secret]) == []
    for attempt in (lambda: bob.get_run(run.info.run_id), lambda: bob.get_experiment(secret),
                    lambda: bob.log_metric(run.info.run_id, "loss", 9.0),
                    lambda: bob.get_metric_history(run.info.run_id, "loss"),
                    lambda: bob.set_tag(run.info.run_id, "owner", "bob"),
                    lambda: bob.delete_run(run.info.run_id)):
        with pytest.raises(MlflowException) as refused:
            attempt()
        assert refused.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert "secret" not in str(refused.value)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["ana"])
    assert [m.value for m in ana.get_metric_history(run.info.run_id, "loss")] == [0.5]  # bob changed nothing
    assert "owner" not in ana.get_run(run.info.run_id).data.tags


def test_a_running_run_is_deleted_as_mlflow_deletes_it_and_the_edit_names_the_caller(with_users, monkeypatch,
                                                                                   tmp_path):
    url, tokens = with_users
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["ana"])
    ana = MlflowClient(url)
    run_id = ana.create_run(ana.create_experiment("e")).info.run_id
    ana.log_metric(run_id, "loss", 0.5)
    ana.delete_run(run_id)  # still RUNNING: MLflow's stores delete any run
    assert ana.search_runs([ana.get_experiment_by_name("e").experiment_id]) == []
    assert ana.get_run(run_id).info.lifecycle_stage == "deleted"
    ana.restore_run(run_id)
    assert ana.get_run(run_id).info.lifecycle_stage == "active"
    edits = mltrail.Store(tmp_path / "store").run_edits(run_id)
    assert edits["by"].tolist() == ["ana", "ana"]  # the caller, not the server's own user
    experiment = ana.create_experiment("tagged")
    ana.set_experiment_tag(experiment, "team", "vision")
    ana.delete_experiment_tag(experiment, "team")
    ana.delete_experiment(experiment)
    ana.restore_experiment(experiment)
    catalog = mltrail.Store(tmp_path / "store").tracking.catalog
    events = [e for found in catalog._event_lists() for e in found if e.experiment == "tagged"]
    assert len(events) == 5 and {e.by for e in events} == {"ana"}


def test_basic_auth_is_a_user_s_name_and_token_and_nothing_else(with_users):
    url, tokens = with_users

    def basic(name, password):
        return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}

    path = "/api/2.0/mlflow/experiments/search?max_results=10"
    assert call(url, "GET", path, headers=basic("ana", tokens["ana"]))[0] == 200
    assert call(url, "GET", path, headers=basic("bob", tokens["ana"]))[0] == 401  # ana's token, bob's name
    assert call(url, "GET", path, headers=basic("ana", "wrong"))[0] == 401
    assert call(url, "GET", path)[0] == 401
    assert call(url, "GET", path, headers={"Authorization": "Bearer " + tokens["bob"]})[0] == 200


def test_a_body_past_the_server_s_limit_is_refused_and_nothing_is_written(tmp_path):
    from fastapi.testclient import TestClient

    from mltrail.server.app import create_app

    client = TestClient(create_app(mltrail.Store(tmp_path / "store"), max_body=100_000))
    api = "/api/2.0/mlflow"
    experiment_id = client.post(f"{api}/experiments/create", json={"name": "churn"}).json()["experiment_id"]
    run_id = client.post(f"{api}/runs/create", json={"experiment_id": experiment_id}).json()["run"]["info"]["run_id"]
    huge = {"run_id": run_id, "metrics": [{"key": "m", "value": 1.0, "timestamp": 0, "step": i} for i in range(20_000)]}
    refused = client.post(f"{api}/runs/log-batch", json=huge)
    assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "at most 100,000 bytes" in refused.json()["message"]
    assert client.get(f"{api}/runs/get", params={"run_id": run_id}).json()["run"]["data"].get("metrics") is None


def test_an_experiment_s_artifact_location_is_the_server_s_own(served):
    """A location given at creation would send every member's files past the server (a
    folder on their machine), where the others could not read them and the gate does not go."""
    url, folder = served
    refused = call(url, "POST", "/api/2.0/mlflow/experiments/create",
                   {"name": "churn", "artifact_location": "mltrail-artifacts:/x?root=/etc"})
    assert refused[0] == 400 and refused[1]["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not (folder / "experiments").exists() or not list((folder / "experiments").rglob("*.jsonl"))
    experiment_id = MlflowClient(url).create_experiment("churn")
    run = MlflowClient(url).create_run(experiment_id)
    assert run.info.artifact_uri == f"mlflow-artifacts:/{run.info.run_id}"


def test_a_version_s_files_must_be_the_caller_s_to_read_where_they_come_from(tmp_path):
    # bob may change his own registered model; naming his own run beside ana's files (a
    # logged model, a version of her registered model) must not copy them into it
    folder = tmp_path / "store"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name) for name in ("ana", "bob")}
    api, proxy = "/api/2.0/mlflow", "/api/2.0/mlflow-artifacts/artifacts"

    def as_(name):
        return {"Authorization": f"Bearer {tokens[name]}", "Content-Type": "application/json"}

    with serving_store(folder) as url:
        def ask(who, path, body=None, method="POST"):
            return call(url, method, f"{api}/{path}", body, as_(who))

        experiment = ask("ana", "experiments/create", {"name": "secret"})[1]["experiment_id"]
        run = ask("ana", "runs/create", {"experiment_id": experiment})[1]["run"]["info"]["run_id"]
        model = ask("ana", "logged-models", {"experiment_id": experiment, "source_run_id": run})[1]["model"]
        model_id = model["info"]["model_id"]
        put = urllib.request.Request(f"{url}{proxy}/models/{model_id}/model.pkl", data=b"ana's weights",
                                     method="PUT", headers=as_("ana"))
        with urllib.request.urlopen(put, timeout=30) as reply:
            assert reply.status == 200
        assert ask("ana", "registered-models/create", {"name": "churn"})[0] == 200
        assert ask("ana", "model-versions/create", {"name": "churn", "source": f"models:/{model_id}",
                                                    "run_id": run})[0] == 200
        assert ask("ana", "registered-models/alias", {"name": "churn", "alias": "prod", "version": "1"})[0] == 200

        mine = ask("bob", "experiments/create", {"name": "mine"})[1]["experiment_id"]
        own_run = ask("bob", "runs/create", {"experiment_id": mine})[1]["run"]["info"]["run_id"]
        assert ask("bob", "registered-models/create", {"name": "loot"})[0] == 200
        for source, extra, missing in (
                ("models:/churn@prod", {"run_id": own_run}, "models:/nope@prod"),
                ("models:/churn/1", {"run_id": own_run}, "models:/nope/1"),
                ("models:/churn/7", {}, "models:/nope/7"),  # (how many versions it has: not his to learn)
                (f"models:/{model_id}", {"run_id": own_run}, "models:/m-0123456789abcdef0123456789abcdef"),
                (f"models:/{model_id}", {}, "models:/m-0123456789abcdef0123456789abcdef"),
                (f"runs:/{own_run}/x", {"model_id": model_id, "run_id": own_run}, None)):
            status, answer = ask("bob", "model-versions/create", {"name": "loot", "source": source, **extra})
            assert (status, answer["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST"), source
            assert run not in answer["message"] and "secret" not in answer["message"], source
            if missing is not None:  # word for word as a model that is not there
                _, other = ask("bob", "model-versions/create", {"name": "loot", "source": missing, **extra})
                name_or_id = source.removeprefix("models:/").split("/")[0].split("@")[0]
                assert answer["message"] == other["message"].replace(
                    missing.removeprefix("models:/").split("/")[0].split("@")[0], name_or_id), source
        # a runs:/ source of his own run that resolves to her logged model (a link made on the
        # folder itself, past the server): her model's files are still not his
        local.tracking.logged_models.log_output(model_id, own_run, 0)
        named = ask("bob", "model-versions/create", {"name": "loot", "source": f"runs:/{own_run}/{model['info']['name']}"})
        assert (named[0], named[1]["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
        assert ask("bob", "registered-models/get?name=loot", method="GET")[1]["registered_model"].get(
            "latest_versions") is None  # nothing registered
        # a run he may not read reads as one that is not there, word for word
        hidden = ask("bob", f"runs/get?run_id={run}", method="GET")
        absent = ask("bob", "runs/get?run_id=01NOSUCHRUN0000000000000000", method="GET")
        assert hidden[1]["message"] == absent[1]["message"].replace("01NOSUCHRUN0000000000000000", run)

        # once ana lets him read her registered model, he may copy its version (its files are his to read)
        local.access.grant("model", "churn", "bob", "read", by="ana")
        status, copied = ask("bob", "model-versions/create", {"name": "loot", "source": "models:/churn@prod",
                                                              "run_id": own_run})
        assert status == 200 and copied["model_version"]["version"] == "1"
