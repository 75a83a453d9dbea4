"""MLflow 3's logged models through the real ``mlflow`` package on an ``mltrail:`` store:
``log_model``, loading by ``models:/`` and ``runs:/``, autologging, search and the
logged-model calls of ``MlflowClient``."""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")
with warnings.catch_warnings():  # MLflow's own modules warn as they load (a type hint of its chat agents)
    warnings.simplefilter("ignore", UserWarning)
    import mlflow.pyfunc
    import mlflow.sklearn

from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException

import mltrail
from mltrail.mlflow_store.plugin import MltrailTrackingStore


@pytest.fixture
def store_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "runs"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"mltrail:{root}")
    mlflow.set_tracking_uri(f"mltrail:{root}")
    yield root
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(60, 3))
    return x, (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)


@pytest.mark.slow
def test_log_model_in_a_run_loads_back_by_model_and_run_uri(store_root: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _data(np.random.default_rng(7))
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
    assert logged.params == {"C": "0.5"}  # the run's params, as MLflow's own stores copy them
    assert [(m.key, m.value, m.run_id) for m in logged.metrics] == [("accuracy", 0.875, run.info.run_id)]
    assert logged.experiment_id == run.info.experiment_id
    # log_model sends the run's points again, naming the model: the run keeps one copy
    assert [m.value for m in client.get_metric_history(run.info.run_id, "accuracy")] == [0.875]
    assert [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs] == [info.model_id]
    assert [m.model_id for m in mlflow.search_logged_models(output_format="list")] == [info.model_id]

    # the files are the store's content-addressed blobs, named by the model's events
    files = mltrail.Store(store_root).tracking.logged_models.get(info.model_id).files
    assert {"MLmodel", "model.pkl", "input_example.json"} <= set(files)
    assert all(mltrail.Store(store_root).layout.blob_path(f.sha256).exists() for f in files.values())


@pytest.mark.slow
def test_sklearn_autolog_logs_params_metrics_and_the_model(store_root: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _data(np.random.default_rng(11))
    mlflow.sklearn.autolog(log_input_examples=True)
    try:
        with mlflow.start_run() as run:
            model = LogisticRegression(C=2.0, max_iter=200).fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)

    client = MlflowClient()
    data = client.get_run(run.info.run_id).data
    assert data.params["C"] == "2.0" and data.params["max_iter"] == "200"
    assert 0.5 < data.metrics["training_accuracy_score"] <= 1.0
    [logged] = mlflow.search_logged_models(filter_string=f"source_run_id = '{run.info.run_id}'", output_format="list")
    assert logged.status == LoggedModelStatus.READY and logged.params["C"] == "2.0"
    assert {m.key for m in logged.metrics} >= {"training_accuracy_score"}
    loaded = mlflow.sklearn.load_model(f"models:/{logged.model_id}")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_search_filters_orders_and_pages_in_the_experiments_asked(store_root: Path) -> None:
    client = MlflowClient()
    first = client.create_experiment("first")
    other = client.create_experiment("other")
    made = []
    for name, c, kind in (("a", "1", "clf"), ("b", "2", "clf"), ("c", "1", "reg")):
        model = client.create_logged_model(first, name=name, params={"c": c}, tags={"team": "x"}, model_type=kind)
        made.append(model.model_id)
        while int(time.time() * 1000) <= model.creation_timestamp:  # MLflow orders by the millisecond
            pass
    client.finalize_logged_model(made[0], LoggedModelStatus.READY)
    client.create_logged_model(other, name="elsewhere")

    def names(**kwargs: object) -> list[str]:
        return [m.name for m in client.search_logged_models([first], **kwargs)]

    assert names() == ["c", "b", "a"]  # MLflow's order: newest first
    assert names(filter_string="params.c = '1'") == ["c", "a"]
    assert names(filter_string="status = 'READY'") == ["a"]
    assert names(filter_string="model_type = 'clf' AND tags.team = 'x'") == ["b", "a"]
    assert names(order_by=[{"field_name": "name", "ascending": True}]) == ["a", "b", "c"]
    page = client.search_logged_models([first], max_results=2)
    assert [m.name for m in page] == ["c", "b"] and page.token
    assert [m.name for m in client.search_logged_models([first], max_results=2, page_token=page.token)] == ["a"]
    assert {m.name for m in client.search_logged_models([first, other])} == {"a", "b", "c", "elsewhere"}
    with pytest.raises(MlflowException, match="Invalid"):
        client.search_logged_models([first], filter_string="nonsense.key = 1")


def test_tags_params_status_and_deletion_as_mlflow_answers_them(store_root: Path) -> None:
    client = MlflowClient()
    experiment = client.create_experiment("tags")
    model = client.create_logged_model(experiment, name="m", tags={"keep": "1", "drop": "2"})
    assert model.status == LoggedModelStatus.PENDING and model.model_id.startswith("m-")
    assert model.artifact_location.startswith("mltrail-artifacts:/models/")

    client.set_logged_model_tags(model.model_id, {"keep": "3", "new": "4"})
    client.delete_logged_model_tag(model.model_id, "drop")
    client.log_model_params(model.model_id, {"lr": "0.1"})
    client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
    got = client.get_logged_model(model.model_id)
    assert got.tags == {"keep": "3", "new": "4"} and got.params == {"lr": "0.1"}
    assert got.status == LoggedModelStatus.FAILED and got.last_updated_timestamp >= got.creation_timestamp

    with pytest.raises(MlflowException, match="No tag with key 'drop'") as missing_tag:
        client.delete_logged_model_tag(model.model_id, "drop")
    assert missing_tag.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException, match="not found") as unknown:
        client.get_logged_model("m-" + "0" * 32)
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException, match="Invalid model name"):
        client.create_logged_model(experiment, name="a/b")

    client.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException, match="not found"):
        client.get_logged_model(model.model_id)
    assert client.search_logged_models([experiment]).to_list() == []
    plugin = MltrailTrackingStore(f"mltrail:{store_root}")
    assert plugin.get_logged_model(model.model_id, allow_deleted=True).name == "m"


def test_metrics_naming_a_model_are_kept_on_it_non_finite_too(store_root: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # create_external_model infers a signature, which imports pyspark.sql.connect when pyspark
    # is installed; in a pytest-xdist worker (a __main__ with no file) pyspark takes that for
    # its doctests and calls sys.exit when its Connect extras are missing. An interactive
    # session's prompt tells it otherwise: it then raises ImportError, which MLflow expects.
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    client = MlflowClient()
    with mlflow.start_run() as run:
        model = mlflow.create_external_model(name="ext")
        mlflow.log_metric("loss", 0.25, step=1, model_id=model.model_id)
        mlflow.log_metric("loss", 0.5, step=0, model_id=model.model_id)
        mlflow.log_metric("auc", math.nan, model_id=model.model_id, dataset=None)
    got = client.get_logged_model(model.model_id)
    latest = {m.key: (m.step, m.value) for m in got.metrics}
    assert latest["loss"] == (1, 0.25)  # the latest step, as MLflow's stores answer
    assert math.isnan(latest["auc"][1])
    assert sorted(m.value for m in client.get_metric_history(run.info.run_id, "loss")) == [0.25, 0.5]
    assert [m.name for m in mlflow.search_logged_models(filter_string="metrics.loss < 0.3",
                                                        output_format="list")] == ["ext"]


def test_model_files_are_written_and_read_through_the_artifact_repository(store_root: Path, tmp_path: Path) -> None:
    client = MlflowClient()
    experiment = client.create_experiment("files")
    model = client.create_logged_model(experiment, name="files")
    folder = tmp_path / "saved"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 100)
    client.log_model_artifacts(model.model_id, str(folder))

    listed = client.list_logged_model_artifacts(model.model_id)
    assert [(f.path, f.is_dir) for f in listed] == [("MLmodel", False), ("sub", True)]
    out = Path(mlflow.artifacts.download_artifacts(f"models:/{model.model_id}", dst_path=str(tmp_path / "out")))
    assert (out / "sub" / "weights.bin").read_bytes() == b"\x00\x01" * 100
    # one event for the upload, whatever the number of files: a model folder commits small
    events = sorted((store_root / "experiments" / "files" / "models" / model.model_id).glob("*.jsonl"))
    assert [e.read_text().count('"type":"logged_model_files"') for e in events].count(1) == 1



def test_record_logged_model_grows_the_runs_history_tag(store_root: Path) -> None:
    from mlflow.models import Model

    client = MlflowClient()
    with mlflow.start_run() as run:
        for path in ("first", "second"):
            client._record_logged_model(run.info.run_id, Model(artifact_path=path, run_id=run.info.run_id))
    history = json.loads(client.get_run(run.info.run_id).data.tags["mlflow.log-model.history"])
    assert [entry["artifact_path"] for entry in history] == ["first", "second"]
    with pytest.raises(TypeError, match="mlflow.models.Model"):
        client._record_logged_model(run.info.run_id, {"artifact_path": "x"})
