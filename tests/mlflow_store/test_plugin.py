"""The real ``mlflow`` package on ``MLFLOW_TRACKING_URI=mltrail:<folder>`` answers as MLflow's
own stores do: the same errors (message and ``error_code``), the same values kept.

Each test here is a case where the plugin once differed from MLflow's stores (found with
MLflow's own tests, ``scripts/peer_mlflow.py --mode plugin``); what MLflow does is read in
its ``SqlAlchemyStore`` and ``FileStore``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, ViewType
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from mltrail.errors import AlreadyExistsError, InvalidInputError, NotFoundError, WrongStateError
from mltrail.mlflow_store.common import mlflow_errors


def _code(name: int) -> str:
    return str(ErrorCode.Name(name))


@pytest.mark.parametrize(("name", "message"), [
    (123, "Invalid experiment name: 123. Expects a string."),
    (["A"], "Invalid experiment name: ['A']. Expects a string."),
    (None, "Invalid experiment name: 'None'"),
    ("", "Invalid experiment name: ''"),
])
def test_an_experiment_name_that_is_not_text_is_refused_with_mlflow_s_message(
        client: MlflowClient, name: object, message: str) -> None:
    with pytest.raises(MlflowException) as raised:
        client.create_experiment(name)  # type: ignore[arg-type]
    assert raised.value.message == message
    assert raised.value.error_code == _code(INVALID_PARAMETER_VALUE)


def test_a_taken_experiment_name_deleted_or_not_is_already_exists_as_in_mlflow(client: MlflowClient) -> None:
    experiment_id = client.create_experiment("popular")
    for deleted in (False, True):
        if deleted:
            client.delete_experiment(experiment_id)  # a deleted experiment keeps its name
        with pytest.raises(MlflowException, match=r"Experiment\(name=popular\) already exists") as raised:
            client.create_experiment("popular")
        assert raised.value.error_code == _code(RESOURCE_ALREADY_EXISTS)


def test_an_unknown_experiment_id_is_resource_does_not_exist_in_mlflow_s_words(client: MlflowClient) -> None:
    with pytest.raises(MlflowException, match="No Experiment with id=-1337 exists") as raised:
        mlflow.set_experiment(experiment_id="-1337")
    assert raised.value.error_code == _code(RESOURCE_DOES_NOT_EXIST)


def test_one_bad_metric_is_refused_naming_value_as_mlflow_s_stores_do(client: MlflowClient) -> None:
    with mlflow.start_run() as run:
        with pytest.raises(MlflowException, match="Invalid value \"apple\" for parameter 'value' supplied") as raised:
            mlflow.log_metric("loss", "apple")
        assert raised.value.error_code == _code(INVALID_PARAMETER_VALUE)
    assert client.get_run(run.info.run_id).data.metrics == {}


def test_a_batch_with_one_param_key_twice_is_refused_and_nothing_is_logged(client: MlflowClient) -> None:
    with mlflow.start_run() as run:
        with pytest.raises(MlflowException, match="Duplicate parameter keys have been submitted") as raised:
            client.log_batch(run.info.run_id, params=[Param("a", "1"), Param("a", "2")])
        assert raised.value.error_code == _code(INVALID_PARAMETER_VALUE)
        client.log_batch(run.info.run_id, metrics=[Metric("m", 1.0, 5, 0)], params=[Param("a", "3")])
    assert client.get_run(run.info.run_id).data.params == {"a": "3"}


def test_a_param_value_over_mlflow_s_limit_is_kept_cut_to_the_limit_as_mlflow_keeps_it(
        client: MlflowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    long = "x" * (MAX_PARAM_VAL_LENGTH + 10)
    with mlflow.start_run() as run:
        mlflow.log_param("single", long)
        client.log_batch(run.info.run_id, params=[Param("batched", long)])
        monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
        with pytest.raises(MlflowException, match="exceeds the maximum length") as raised:
            mlflow.log_param("refused", long)
        assert raised.value.error_code == _code(INVALID_PARAMETER_VALUE)
    assert client.get_run(run.info.run_id).data.params == {"single": long[:MAX_PARAM_VAL_LENGTH],
                                                           "batched": long[:MAX_PARAM_VAL_LENGTH]}


@pytest.mark.parametrize("location", ["s3://bucket/root", "mysql://u:p@host:1/db?driver=d"])
def test_a_run_of_an_experiment_with_an_artifact_location_has_its_artifacts_under_it(
        client: MlflowClient, location: str) -> None:
    experiment_id = client.create_experiment("located", artifact_location=location)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        expected = mlflow.tracking.artifact_utils.get_artifact_uri(run.info.run_id)
    base, _, query = location.partition("?")
    assert expected == f"{base}/{run.info.run_id}/artifacts" + (f"?{query}" if query else "")
    assert client.get_run(run.info.run_id).info.artifact_uri == expected
    [found] = client.search_runs([experiment_id])
    assert found.info.artifact_uri == expected


def test_a_relative_artifact_location_is_made_absolute_as_mlflow_does(
        client: MlflowClient, tmp_path: Path) -> None:
    experiment_id = client.create_experiment("local", artifact_location="art")
    assert client.get_experiment(experiment_id).artifact_location == str(tmp_path / "art")


def test_order_by_takes_mlflow_s_bare_attribute_names_and_aliases(client: MlflowClient) -> None:
    experiment_id = client.create_experiment("ordered")
    ids = {name: client.create_run(experiment_id, run_name=name).info.run_id for name in ("b", "c", "a")}
    assert [r.info.run_name for r in client.search_runs([experiment_id], order_by=["run_name"])] == ["a", "b", "c"]
    assert [r.info.run_name for r in client.search_runs([experiment_id], order_by=["run_name DESC"])] == ["c", "b", "a"]
    for clause in ("start_time ASC", "attributes.created ASC"):
        assert [r.info.run_id for r in client.search_runs([experiment_id], order_by=[clause])] == list(ids.values())
    with pytest.raises(MlflowException) as raised:
        client.search_runs([experiment_id], order_by=["nonsense DESC"])
    assert raised.value.error_code == _code(INVALID_PARAMETER_VALUE)


def test_the_runs_of_a_deleted_experiment_are_deleted_runs_until_it_is_restored(client: MlflowClient) -> None:
    experiment_id = client.create_experiment("gone")
    kept, deleted_before = (client.create_run(experiment_id).info.run_id for _ in range(2))
    client.set_terminated(deleted_before)
    client.delete_run(deleted_before)
    client.delete_experiment(experiment_id)

    assert client.get_run(kept).info.lifecycle_stage == "deleted"
    assert client.search_runs([experiment_id]) == []
    assert {r.info.run_id for r in client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)} == {
        kept, deleted_before}
    with pytest.raises(MlflowException, match="must be in the 'active' state") as raised:
        client.log_param(kept, "a", "1")  # a run this process holds open too
    assert raised.value.error_code == _code(INVALID_PARAMETER_VALUE)

    client.restore_experiment(experiment_id)
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [kept]
    client.log_param(kept, "a", "1")
    assert client.get_run(kept).data.params == {"a": "1"}


def test_deleting_a_deleted_run_or_restoring_an_active_one_changes_nothing_as_in_mlflow(
        client: MlflowClient) -> None:
    run_id = client.create_run("0").info.run_id
    client.set_terminated(run_id)
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    client.delete_run(run_id)
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"


def test_deleting_a_deleted_experiment_or_restoring_an_active_one_is_not_found_as_in_mlflow(
        client: MlflowClient) -> None:
    experiment_id = client.create_experiment("twice")
    with pytest.raises(MlflowException, match=f"No Experiment with id={experiment_id} exists") as restored:
        client.restore_experiment(experiment_id)
    client.delete_experiment(experiment_id)
    with pytest.raises(MlflowException, match=f"No Experiment with id={experiment_id} exists") as deleted:
        client.delete_experiment(experiment_id)
    assert restored.value.error_code == deleted.value.error_code == _code(RESOURCE_DOES_NOT_EXIST)


def test_a_run_name_and_a_different_run_name_tag_are_refused_as_in_mlflow(client: MlflowClient) -> None:
    with pytest.raises(MlflowException, match="Both 'run_name' argument and 'mlflow.runName' tag") as raised:
        client.create_run("0", run_name="a", tags={"mlflow.runName": "b"})
    assert raised.value.error_code == _code(INVALID_PARAMETER_VALUE)
    assert client.create_run("0", run_name="a", tags={"mlflow.runName": "a"}).info.run_name == "a"


def test_a_run_made_by_the_client_shows_only_the_tags_mlflow_s_stores_show(client: MlflowClient) -> None:
    run = client.create_run("0", tags={"k": "v"})
    assert set(client.get_run(run.info.run_id).data.tags) == {"k", "mlflow.runName"}


def test_experiments_are_searched_newest_first_with_default_the_oldest(client: MlflowClient) -> None:
    for name in ("first", "second", "third"):
        client.create_experiment(name)
    assert [e.name for e in client.search_experiments()] == ["third", "second", "first", "Default"]


def test_a_metric_s_history_comes_in_mlflow_s_order_by_time_then_step(client: MlflowClient) -> None:
    run_id = client.create_run("0").info.run_id
    for value, timestamp, step in ((1.0, 10, 5), (2.0, 5, 7), (3.0, 20, 6), (4.0, 5, 2)):
        client.log_metric(run_id, "y", value, timestamp=timestamp, step=step)
    assert [m.value for m in client.get_metric_history(run_id, "y")] == [4.0, 2.0, 1.0, 3.0]


def test_a_filter_takes_mlflow_s_bare_attribute_names_and_aliases(client: MlflowClient) -> None:
    experiment_id = client.create_experiment("filtered")
    ids = {name: client.create_run(experiment_id, run_name=name, tags={"t": name}).info.run_id for name in "abc"}
    client.set_terminated(ids["b"])

    def found(text: str) -> set[str]:
        return {r.info.run_name for r in client.search_runs([experiment_id], text)}

    assert found("status = 'FINISHED'") == {"b"}
    assert found(f"run_id IN ('{ids['a']}', '{ids['c']}') and tags.t != 'c'") == {"a"}
    assert found("`Run name` LIKE '%'") == found("created > 0") == {"a", "b", "c"}
    assert found("attributes.run_name = 'a' OR tags.t = 'c'") == {"a", "c"}  # mltrail's OR stays
    with pytest.raises(MlflowException, match="Invalid attribute key 'foo'") as raised:
        client.search_runs([experiment_id], "foo = 1")
    assert raised.value.error_code == _code(INVALID_PARAMETER_VALUE)


@pytest.mark.parametrize(("max_results", "message"), [(0, "It must be a positive integer"),
                                                      (50001, "It must be at most 50000")])
def test_a_page_of_runs_has_mlflow_s_bounds(client: MlflowClient, max_results: int, message: str) -> None:
    with pytest.raises(MlflowException, match=message) as raised:
        client.search_runs(["0"], max_results=max_results)
    assert raised.value.error_code == _code(INVALID_PARAMETER_VALUE)


def test_deleting_an_experiment_tag_it_does_not_have_is_mlflow_s_not_found(client: MlflowClient) -> None:
    experiment_id = client.create_experiment("tagged", tags={"kept": "1"})
    with pytest.raises(MlflowException, match=f"No tag with name: gone in experiment with id {experiment_id}") as raised:
        client.delete_experiment_tag(experiment_id, "gone")
    assert raised.value.error_code == _code(RESOURCE_DOES_NOT_EXIST)
    client.delete_experiment_tag(experiment_id, "kept")
    assert client.get_experiment(experiment_id).tags == {}


def test_a_run_s_answers_at_its_start_and_end_are_what_a_read_of_the_store_gives(tmp_path):
    """create_run and update_run_info answer from the run in hand (no read of the store):
    the same as get_run answers afterwards."""
    client = mlflow.MlflowClient(f"mltrail:{tmp_path / 'runs'}")
    experiment_id = client.create_experiment("churn")
    parent = client.create_run(experiment_id, run_name="parent")
    created = client.create_run(experiment_id, tags={"team": "risk", "mlflow.parentRunId": parent.info.run_id})
    assert created.to_dictionary() == client.get_run(created.info.run_id).to_dictionary()
    client.log_param(created.info.run_id, "C", "1.0")
    ended = client._tracking_client.store.update_run_info(created.info.run_id, RunStatus.FAILED, None, None)
    read = client.get_run(created.info.run_id).info
    assert ended.status == "FAILED" and ended.to_proto() == read.to_proto()


@pytest.mark.slow
@pytest.mark.parametrize("first", ["mltrail.mlflow_store.translate", "mltrail.mlflow_store.registry",
                                   "mltrail.server.mlflow_routes", "mlflow"])
def test_the_plugin_registers_whichever_module_a_process_imports_first(first):
    """MLflow's import loads the plugin through its entry points: while the translation is
    itself being imported, if that is what imported MLflow (a server's start)."""
    import subprocess
    import sys

    code = (f"import {first}; from mlflow.tracking._tracking_service.utils import _tracking_store_registry as t; "
            "from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry as a; "
            "from mlflow.tracking._model_registry.utils import _get_store_registry as r; "
            "print('mltrail' in t._registry, 'mltrail-artifacts' in a._registry, 'mltrail' in r()._registry)")
    done = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True", "True"]


def test_a_search_answers_each_run_s_inputs_and_outputs_as_mlflow_s_sqlite_store_does(client: MlflowClient) -> None:
    import pandas as pd

    with mlflow.start_run() as plain:
        pass
    with mlflow.start_run() as trained:
        mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), name="train"), context="training")
        model = mlflow.initialize_logged_model(name="m")
        mlflow.log_outputs([mlflow.entities.LoggedModelOutput(model.model_id, 3)])
    found = {r.info.run_id: r for r in client.search_runs([trained.info.experiment_id])}
    assert found[plain.info.run_id].inputs.dataset_inputs == []  # never None: MLflow's code reads it as a list
    assert found[plain.info.run_id].outputs.model_outputs == []
    inputs = found[trained.info.run_id].inputs.dataset_inputs
    assert [(i.dataset.name, {t.key: t.value for t in i.tags}) for i in inputs] == [
        ("train", {"mlflow.data.context": "training"})]
    assert inputs[0].dataset.digest == client.get_run(trained.info.run_id).inputs.dataset_inputs[0].dataset.digest
    assert [(o.model_id, o.step) for o in found[trained.info.run_id].outputs.model_outputs] == [(model.model_id, 3)]


def test_download_artifacts_takes_a_run_s_artifact_uri_and_a_logged_model_s_location(
        client: MlflowClient, tmp_path: Path) -> None:
    """MLflow splits such a URI into its parent and last part: the repository one level up
    (above the runs, above the models) must take the run's or model's ID as a path."""
    (tmp_path / "notes.txt").write_text("hello")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"), "docs")
        model = mlflow.initialize_logged_model(name="m")
        client.log_model_artifact(model.model_id, str(tmp_path / "notes.txt"))
    whole = mlflow.artifacts.download_artifacts(artifact_uri=run.info.artifact_uri, dst_path=str(tmp_path / "run"))
    assert (Path(whole) / "docs" / "notes.txt").read_text() == "hello"
    listed = mlflow.artifacts.list_artifacts(artifact_uri=run.info.artifact_uri)
    assert [f.path.rsplit("/", 1)[-1] for f in listed] == ["docs"]
    location = client.get_logged_model(model.model_id).artifact_location
    fetched = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(tmp_path / "model"))
    assert (Path(fetched) / "notes.txt").read_text() == "hello"


def test_a_registered_version_s_number_is_an_int_as_in_mlflow_s_sqlite_store(client: MlflowClient) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("x", "model/MLmodel")
    version = client.create_model_version("churn", f"runs:/{run.info.run_id}/model", run.info.run_id) \
        if client.create_registered_model("churn") else None
    assert version is not None and version.version == 1
    client.set_registered_model_alias("churn", "champion", "1")
    assert client.get_registered_model("churn").aliases == {"champion": 1}
    assert client.get_model_version_by_alias("churn", "champion").version == 1



@pytest.mark.parametrize(("error", "code", "status"), [
    (NotFoundError("no run x"), "RESOURCE_DOES_NOT_EXIST", 404),
    (AlreadyExistsError("e exists"), "RESOURCE_ALREADY_EXISTS", 400),
    (InvalidInputError("bad name"), "INVALID_PARAMETER_VALUE", 400),
    # a state refusal: not INVALID_STATE, a 500 MLflow's REST client would retry for minutes
    (WrongStateError("run x is deleted already"), "INVALID_PARAMETER_VALUE", 400),
])
def test_mltrail_s_errors_are_mlflow_s_with_a_status_its_client_does_not_retry(error, code, status) -> None:
    with pytest.raises(MlflowException) as raised, mlflow_errors():
        raise error
    assert (raised.value.error_code, raised.value.get_http_status_code()) == (code, status)
    assert str(error) in raised.value.message


def test_a_run_deleted_while_it_runs_takes_no_more_writes_as_in_mlflow(client: MlflowClient) -> None:
    # MLflow's stores delete a RUNNING run, then refuse to log into it or end it
    run = mlflow.start_run()
    run_id = run.info.run_id
    mlflow.log_metric("loss", 0.5)
    client.delete_run(run_id)
    words = f"The run {run_id} must be in the 'active' state. Current state is deleted."
    with pytest.raises(MlflowException, match=re.escape(words)):
        mlflow.log_metric("loss", 0.25)
    with pytest.raises(MlflowException, match=re.escape(words)):
        mlflow.end_run()
    got = client.get_run(run_id)
    assert (got.info.status, got.info.lifecycle_stage, got.data.metrics) == ("RUNNING", "deleted", {"loss": 0.5})
    client.restore_run(run_id)
    client.set_terminated(run_id)  # restored, it ends as any run does
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_run_is_deleted_and_restored_by_its_full_id_only_as_in_mlflow(client: MlflowClient) -> None:
    with mlflow.start_run() as run:
        pass
    run_id = run.info.run_id
    for call in (client.delete_run, client.restore_run):
        with pytest.raises(MlflowException, match=re.escape(f"Run '{run_id[:10]}' not found")) as refused:
            call(run_id[:10])  # a prefix: mltrail's own calls take one, MLflow's stores do not
        assert refused.value.error_code == _code(RESOURCE_DOES_NOT_EXIST)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    client.delete_run(run_id)
    client.delete_run(run_id)  # a deleted run deleted again: no error, as in MLflow's stores
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
