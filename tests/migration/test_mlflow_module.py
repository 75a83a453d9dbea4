"""``import mltrail.mlflow as mlflow``: MLflow's tracking calls and their MLflow behaviours
(the differential test against MLflow itself is in :mod:`.test_against_mlflow`)."""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

import mltrail
from mltrail import mlflow
from mltrail.errors import AlreadyExistsError, InvalidInputError, NotFoundError, ParamChangedError, RunStateError
from mltrail.mlflow.exceptions import MlflowException
from mltrail.tracking.experiments import derived_id
from tests.factories import run_python


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    mlflow.set_tracking_uri(tmp_path / "store")
    return tmp_path / "store"


def test_a_run_inside_a_run_must_say_nested_and_is_then_its_child(store_dir: Path) -> None:
    mlflow.set_experiment("exp")
    with mlflow.start_run(run_name="parent") as parent:
        with pytest.raises(RunStateError, match="already active.*nested=True"):
            mlflow.start_run()
        with mlflow.start_run(run_name="child", nested=True) as child:
            assert mlflow.active_run().info.run_id == child.info.run_id
        assert mlflow.active_run().info.run_id == parent.info.run_id
    assert mlflow.active_run() is None
    runs = mltrail.Store(store_dir).search_runs("exp").set_index("run_name")
    assert runs.loc["child", "parent_run_id"] == parent.info.run_id
    assert runs.loc["child", "tags.mlflow.parentRunId"] == parent.info.run_id
    assert runs.loc["parent", "tags.mlflow.runName"] == "parent"


def test_a_call_it_does_not_have_is_named_and_hasattr_says_no() -> None:
    with pytest.raises(mlflow.UnsupportedCallError, match=r"does not support mlflow\.log_model: .*log_metric"):
        mlflow.log_model(object(), "model")
    with pytest.raises(mlflow.UnsupportedCallError, match=r"mlflow\.pyfunc\.log_model"):
        mlflow.pyfunc.log_model("model", python_model=object())
    with pytest.raises(mlflow.UnsupportedCallError, match=r"mlflow\.sklearn\.get_default_conda_env: it has "):
        mlflow.sklearn.get_default_conda_env()
    assert not hasattr(mlflow, "log_model") and not hasattr(mlflow, "evaluate")


def test_an_mlruns_folder_or_another_scheme_is_refused_as_the_tracking_uri(tmp_path: Path) -> None:
    (tmp_path / "mlruns" / "0").mkdir(parents=True)
    (tmp_path / "mlruns" / "0" / "meta.yaml").write_text("name: Default\n")
    with pytest.raises(InvalidInputError, match="is an MLflow store.*mltrail import mlflow"):
        mlflow.set_tracking_uri(f"file:{tmp_path / 'mlruns'}")
    with pytest.raises(InvalidInputError, match="not a sqlite: store"):
        mlflow.set_tracking_uri("sqlite:///mlflow.db")
    mlflow.set_tracking_uri(f"file:{tmp_path / 'mine'}")
    assert mlflow.get_tracking_uri() == str(tmp_path / "mine")


def test_without_a_tracking_uri_runs_go_to_the_default_store_and_experiment_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_DIR", str(tmp_path / "env_store"))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    with mlflow.start_run():
        mlflow.log_param("a", 1)
    assert list(mltrail.Store(tmp_path / "env_store").search_runs()["experiment"]) == ["from-env"]


def test_metrics_default_to_step_0_and_take_mlflow_s_millisecond_timestamps(store_dir: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("a", 1.0)
        mlflow.log_metric("a", 2.0)
        mlflow.log_metric("b", 3.0, step=7, timestamp=1_700_000_000_123)
        mlflow.log_metrics({"c": 1, "d": 2}, step=2)
    history = mltrail.Store(store_dir).metric_history([run.info.run_id]).set_index("key")
    assert list(history.loc["a", "step"]) == [0, 0]
    # to the millisecond: a metrics line keeps its points' times in ms from the line's first
    assert abs(history.loc["b", "timestamp"] - pd.Timestamp(1_700_000_000_123, unit="ms", tz="UTC")) < pd.Timedelta("1ms")
    assert history.loc[["c", "d"], "step"].tolist() == [2, 2]
    with pytest.raises(InvalidInputError, match="metric timestamp"):
        with mlflow.start_run():
            mlflow.log_metric("x", 1.0, timestamp=-5)


def test_a_log_call_without_a_run_starts_one_and_end_run_without_one_is_fine(store_dir: Path) -> None:
    mlflow.end_run()
    mlflow.log_param("p", "v")
    run = mlflow.active_run()
    assert run is not None
    mlflow.end_run()
    assert mlflow.get_run(run.info.run_id).data.params == {"p": "v"}


def test_artifacts_are_named_as_mlflow_names_them(store_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.txt").write_text("x")
    (folder / "y.txt").write_text("y")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(folder)
        mlflow.log_artifacts(folder, "plots")
        mlflow.log_artifact(folder / "y.txt", "deep/er")
        mlflow.log_table(pd.DataFrame({"a": [1]}), "tables/t.json")
        mlflow.log_table(pd.DataFrame({"a": [1]}), "tables/t.parquet")
        mlflow.log_artifact(folder)  # a folder, as MLflow logs one: under its own name
        mlflow.log_artifact(folder / "sub", "deep")
        with pytest.raises(InvalidInputError, match="log_artifact takes a file or a folder; .*missing"):
            mlflow.log_artifact(folder / "missing")
    paths = sorted(mltrail.Store(store_dir).get_run(run.info.run_id)["artifacts"]["path"])
    assert paths == ["deep/er/y.txt", "deep/sub/x.txt", "out/sub/x.txt", "out/y.txt", "plots/sub/x.txt",
                     "plots/y.txt", "sub/x.txt", "tables/t.json", "tables/t.parquet", "y.txt"]


def test_search_runs_answers_in_mlflow_s_columns_views_and_formats(store_dir: Path) -> None:
    mlflow.set_experiment("exp")
    for i in range(3):
        with mlflow.start_run(run_name=f"r{i}"):
            mlflow.log_param("i", i)
            mlflow.log_metric("m", i / 10)
    frame = mlflow.search_runs(filter_string="params.i != '1'", order_by=["metrics.m DESC"])
    assert list(frame.columns[:6]) == ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    assert list(frame["params.i"]) == ["2", "0"] and list(frame["metrics.m"]) == [0.2, 0.0]
    assert list(frame["experiment_id"]) == [derived_id("exp")] * 2  # the ID MLflow's plugin answers
    store = mltrail.Store(store_dir)
    store.delete_run(frame["run_id"][0])
    assert len(mlflow.search_runs()) == 2
    assert list(mlflow.search_runs(run_view_type=2)["run_id"]) == [frame["run_id"][0]]
    assert len(mlflow.search_runs(run_view_type=3)) == 3
    listed = mlflow.search_runs(output_format="list", max_results=1)
    assert listed[0].info.run_name == "r1" and listed[0].data.params == {"i": "1"}
    assert mlflow.search_runs(experiment_names=["nope"]).empty
    assert len(mlflow.search_runs(search_all_experiments=True)) == 2
    with pytest.raises(InvalidInputError, match="run_view_type"):
        mlflow.search_runs(run_view_type=7)
    assert mlflow.get_experiment_by_name("exp").experiment_id == derived_id("exp")
    assert mlflow.get_experiment_by_name("nope") is None
    with pytest.raises(InvalidInputError, match="Only experiment_ids or experiment_names can be used, but not both"):
        mlflow.search_runs(experiment_ids=[derived_id("exp")], experiment_names=["exp"])


def test_log_input_records_a_dataframe_an_array_and_an_mlflow_dataset(store_dir: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    with mlflow.start_run() as run:
        mlflow.log_input(frame, context="training")
        with warnings.catch_warnings():  # MLflow's own warnings on newer pandas
            warnings.simplefilter("ignore")
            import mlflow.data as mlflow_data

            dataset = mlflow_data.from_pandas(frame, name="train")
        mlflow.log_input(dataset, context="validation")
        mlflow.log_input(np.zeros((4, 2)))
        with pytest.raises(InvalidInputError, match="log_input takes an MLflow dataset"):
            mlflow.log_input("data.csv")
    datasets = mltrail.Store(store_dir).get_run(run.info.run_id)["datasets"]
    by_rows = {(row["rows"], row["context"] if isinstance(row["context"], str) else None): row
               for row in datasets.to_dict("records")}
    assert set(by_rows) == {(3, "training"), (3, "validation"), (4, None)}
    assert by_rows[(3, "validation")]["name"] == "train"
    assert by_rows[(3, "training")]["name"].startswith("dataset-") and by_rows[(4, None)]["name"].startswith("dataset-")
    assert by_rows[(3, "training")]["sha256"] == by_rows[(3, "validation")]["sha256"]  # the same data, the same hash
    # read back as MLflow's client reads it: MLflow's description of its dataset as it gave it
    inputs = {i.dataset.name: i for i in mlflow.MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs}
    train = inputs["train"]
    described = dataset.to_dict()  # (its schema is None where MLflow's inference fails, as under pytest)
    assert {k: getattr(train.dataset, k) for k in described} == described
    assert json.loads(train.dataset.profile) == {"num_rows": 3, "num_elements": 6}
    assert [(t.key, t.value) for t in train.tags] == [("mlflow.data.context", "validation")]
    plain = inputs[by_rows[(3, "training")]["name"]]  # logged as a DataFrame: mltrail's description
    assert plain.dataset.digest == by_rows[(3, "training")]["sha256"][:8] and plain.dataset.schema is None
    assert [(t.key, t.value) for t in plain.tags] == [("mlflow.data.context", "training")]


def test_autolog_logs_a_fit_into_the_active_run(store_dir: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    mlflow.autolog()
    try:
        with mlflow.start_run() as run:
            LogisticRegression(C=0.5, max_iter=50).fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    finally:
        mlflow.autolog(disable=True)
    params = mlflow.get_run(run.info.run_id).data.params
    assert params["C"] == "0.5" and params["max_iter"] == "50"


def test_a_library_s_own_autolog_works_and_its_other_calls_are_named(store_dir: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    mlflow.sklearn.autolog()
    try:
        with mlflow.start_run() as run:
            DecisionTreeClassifier(max_depth=2).fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    finally:
        mlflow.sklearn.autolog(disable=True)
    assert mlflow.get_run(run.info.run_id).data.params["max_depth"] == "2"
    assert abs(run.info.start_time / 1000 - pd.Timestamp.now(tz="UTC").timestamp()) < 60
    with pytest.raises(mlflow.UnsupportedCallError, match=r"mlflow\.sklearn\.save_model: it has mlflow\.sklearn\.autolog"):
        mlflow.sklearn.save_model(object(), "model")


@pytest.mark.slow
def test_the_tracking_uri_may_be_an_mltrail_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.factories import serving_store, wait_for

    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))
    with serving_store(tmp_path / "central") as url:
        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("remote")
        with mlflow.start_run(run_name="job") as run:
            mlflow.log_params({"lr": 0.1})
            mlflow.log_metric("loss", 0.5, step=3)
            info = mlflow.sklearn.log_model({"w": 3}, name="model", registered_model_name="remote-model")
            with mlflow.start_run(run_name="fold", nested=True):
                mlflow.log_metric("f1", 0.8)
        central = mltrail.Store(tmp_path / "central")
        wait_for(lambda: (tmp_path / "central" / "experiments").is_dir() and len(central.search_runs("remote")) == 2
                 and central.metric_history().shape[0] == 2, what="both runs on the server")
        frame = mlflow.search_runs(order_by=["attributes.start_time ASC"])
        assert list(frame["tags.mlflow.runName"]) == ["job", "fold"]
        assert frame["tags.mlflow.parentRunId"][1] == run.info.run_id
        assert mlflow.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
        assert info.registered_model_version == 1
        assert mlflow.sklearn.load_model("models:/remote-model@latest") == {"w": 3}
        assert central.load_model(info.model_uri + "/model.pkl") == {"w": 3}
        # the experiment IDs are the ones the server's MLflow API answers; one made with no run
        # yet takes runs by its ID
        answered = httpx.get(f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "remote"})
        assert answered.json()["experiment"]["experiment_id"] == frame["experiment_id"][0] == run.info.experiment_id
        made = mlflow.create_experiment("made")
        assert mlflow.get_experiment(made).name == "made"  # known before its first run reaches the server
        with pytest.raises(AlreadyExistsError, match=r"Experiment\(name=made\) already exists"):
            mlflow.create_experiment("made")
        with mlflow.start_run(experiment_id=made) as later:
            assert later.info.experiment_id == made == derived_id("made")
        mlflow._store().close()


def test_a_tracking_folder_with_no_run_yet_has_no_experiments_and_no_runs(tmp_path: Path) -> None:
    mlflow.set_tracking_uri(tmp_path / "new")
    assert mlflow.get_experiment_by_name("churn") is None
    frame = mlflow.search_runs(filter_string="metrics.f1 > 0.5")
    assert frame.empty and list(frame.columns) == ["run_id", "experiment_id", "status", "artifact_uri",
                                                    "start_time", "end_time"]
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
    with pytest.raises(mltrail.FilterSyntaxError):
        mlflow.search_runs(filter_string="metrics.f1 >")


@pytest.mark.slow
def test_figures_images_dicts_and_text_become_artifacts_under_their_names(store_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    with mlflow.start_run() as run:
        mlflow.log_figure(figure, "plots/loss.png")
        mlflow.log_image(np.zeros((4, 4, 3), dtype=np.uint8), "images/blank.png")
        mlflow.log_image(np.ones((2, 2), dtype=np.uint8), key="mask", step=3)
        mlflow.log_dict({"a": [1, 2]}, "config.json")
        mlflow.log_text("# notes", "notes.md")
    plt.close(figure)
    store = mltrail.Store(store_dir)
    paths = sorted(store.get_run(run.info.run_id)["artifacts"]["path"])
    assert paths == ["config.json", "images/blank.png", "images/mask/step_3.png", "notes.md", "plots/loss.png"]
    assert store.artifact_path(run.info.run_id, "plots/loss.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_log_model_pickles_a_model_that_load_model_and_the_registry_bring_back(store_dir: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1]
    model = LogisticRegression().fit(X, y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="clf", registered_model_name="churn")
        plain = mlflow.xgboost.log_model({"booster": "stand-in"}, "booster")
    assert (info.model_uri, info.artifact_path, info.run_id, info.registered_model_version) == (
        f"runs:/{run.info.run_id}/clf", "clf", run.info.run_id, 1)
    assert plain.registered_model_version is None
    for uri in (info.model_uri, f"runs:/{run.info.run_id}/clf/model.pkl", "models:/churn/1", "models:/churn@latest"):
        assert list(mlflow.sklearn.load_model(uri).predict(X)) == y, uri
    assert list(mlflow.pyfunc.load_model(info.model_uri).predict(X)) == y
    assert mlflow.xgboost.load_model(plain.model_uri) == {"booster": "stand-in"}
    version = mlflow.register_model(plain.model_uri, "booster")
    assert (version.model, version.number, version.artifact) == ("booster", 1, "booster/model.pkl")
    assert mlflow.register_model(info.model_uri, "churn").number == 2
    with pytest.raises(InvalidInputError, match="register_model takes a runs:/RUN/PATH URI"):
        mlflow.register_model("models:/churn/1", "again")


def test_a_model_imported_from_mlflow_loads_by_the_uri_mlflow_gave_it(tmp_path: Path) -> None:
    import pickle

    from .mlruns import MlrunsBuilder

    builder = MlrunsBuilder(tmp_path / "mlruns")
    builder.experiment("1", "churn")
    builder.run("1", "a" * 32, artifacts={"model/model.pkl": pickle.dumps({"w": 2}), "model/MLmodel": b"x: 1\n"})
    store = mltrail.Store(tmp_path / "store")
    store.import_mlflow(builder.root)
    mlflow.set_tracking_uri(tmp_path / "store")
    run_id = store.search_runs().loc[0, "run_id"]
    assert mlflow.sklearn.load_model(f"runs:/{run_id}/model") == {"w": 2}


def test_an_mlflow_experiment_id_a_script_kept_names_the_experiment_it_was_imported_into(tmp_path: Path) -> None:
    from .mlruns import MlrunsBuilder

    builder = MlrunsBuilder(tmp_path / "mlruns")
    builder.experiment("4217", "churn")
    builder.run("4217", "a" * 32, name="old")
    mltrail.Store(tmp_path / "store").import_mlflow(builder.root)
    mlflow.set_tracking_uri(tmp_path / "store")
    assert mlflow.get_experiment("4217").name == "churn"
    with mlflow.start_run(experiment_id="4217", run_name="new"):
        mlflow.log_metric("m", 1.0)
    assert sorted(mlflow.search_runs(experiment_ids=["4217"])["tags.mlflow.runName"]) == ["new", "old"]
    assert mlflow.set_experiment(experiment_id="4217").name == "churn"
    with pytest.raises(NotFoundError, match="No Experiment with id=99 exists"):  # as MLflow: an ID must exist
        mlflow.set_experiment(experiment_id="99")
    with pytest.raises(NotFoundError, match="No Experiment with id=98 exists"):
        mlflow.start_run(experiment_id="98")
    assert mlflow.set_experiment(experiment_id="0").name == "Default"  # MLflow's default experiment, always there
    with pytest.raises(InvalidInputError, match="Must specify exactly one: experiment_id or experiment_name"):
        mlflow.set_experiment("churn", "4217")


# -- MLflow's error class --------------------------------------------------------------

def test_every_error_the_shim_raises_is_an_mlflow_exception_with_mlflow_s_code(store_dir: Path) -> None:
    assert mlflow.exceptions.MlflowException is MlflowException and issubclass(MlflowException, mltrail.MltrailError)
    caught: dict[str, MlflowException] = {}
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 1)
        for name, call in {"changed param": lambda: mlflow.log_param("lr", 2),
                           "active run": lambda: mlflow.start_run(),
                           "bad metric": lambda: mlflow.log_metric("m", "high")}.items():
            try:
                call()
            except mlflow.exceptions.MlflowException as exc:  # as a script written for MLflow catches it
                caught[name] = exc
    for name, call in {"no run": lambda: mlflow.get_run("nope"),
                       "existing experiment": lambda: mlflow.create_experiment("Default"),
                       "not a call": lambda: mlflow.log_model(object(), "model")}.items():
        with pytest.raises(MlflowException) as raised:
            call()
        caught[name] = raised.value
    expected = {"changed param": ("INVALID_PARAMETER_VALUE", ParamChangedError),
                "active run": ("INVALID_STATE", RunStateError),
                "bad metric": ("INVALID_PARAMETER_VALUE", mltrail.errors.InvalidMetricValueError),
                "no run": ("RESOURCE_DOES_NOT_EXIST", NotFoundError),
                "existing experiment": ("RESOURCE_ALREADY_EXISTS", AlreadyExistsError),
                "not a call": ("NOT_IMPLEMENTED", MlflowException)}
    assert set(caught) == set(expected)
    for name, (code, mltrail_class) in expected.items():  # MLflow's error, and the mltrail error it is
        assert caught[name].error_code == code and isinstance(caught[name], mltrail_class), name
    changed = caught["changed param"]
    assert (changed.key, changed.old, changed.new) == ("lr", "1", "2")  # the mltrail error's fields stay
    assert changed.message == str(changed) == (  # MLflow's words, which scripts match on
        "Changing param values is not allowed. Param with key='lr' was already logged with value='1'. "
        "Attempted logging new value '2'.")
    assert "Please specify value as a valid double" in caught["bad metric"].message
    assert json.loads(changed.serialize_as_json())["error_code"] == "INVALID_PARAMETER_VALUE"
    assert changed.get_http_status_code() == 400 and caught["no run"].get_http_status_code() == 404
    assert isinstance(caught["not a call"], AttributeError)
    again = pickle.loads(pickle.dumps(caught["no run"]))
    assert type(again) is type(caught["no run"]) and str(again) == str(caught["no run"])
    assert mlflow.get_run(run.info.run_id).data.params == {"lr": "1"}


def test_calls_not_waiting_return_what_waits_and_the_values_are_then_written(
        store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with mlflow.start_run() as parent:
        assert mlflow.log_param("a", 1) == 1 and mlflow.log_metric("m", 0.5) is None
        operations = [mlflow.log_param("b", 2, synchronous=False), mlflow.log_params({"c": 3}, synchronous=False),
                      mlflow.log_metric("m", 1.5, step=1, synchronous=False),
                      mlflow.log_metrics({"n": 2.0}, synchronous=False),
                      mlflow.set_tag("t", "x", synchronous=False), mlflow.set_tags({"u": "y"}, synchronous=False)]
        monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "true")  # MLflow's switch when synchronous is not given
        operations.append(mlflow.log_metric("k", 3.0))
        monkeypatch.delenv("MLFLOW_ENABLE_ASYNC_LOGGING")
        assert all(isinstance(op, mlflow.RunOperations) for op in operations)
        for op in operations:
            op.wait()
        with pytest.raises(MlflowException, match="Changing param values is not allowed"):
            mlflow.log_param("a", 2, synchronous=False).wait()
        with pytest.raises(MlflowException, match="Please specify value as a valid double"):
            mlflow.log_metrics({"m": "high"}, synchronous=False).wait()
        # written before the run ends: another reader sees them
        seen = mltrail.Store(store_dir).get_run(parent.info.run_id)
        assert {r["key"] for r in seen["metrics"].to_dict("records")} == {"m", "n", "k"}
        with mlflow.start_run(nested=True) as child:
            mlflow.log_metric("x", 1.0, synchronous=False)
            mlflow.flush_async_logging()
            assert {r["key"] for r in mltrail.Store(store_dir).get_run(child.info.run_id)["metrics"]
                    .to_dict("records")} == {"x"}
    run = mlflow.get_run(parent.info.run_id)
    assert run.data.params == {"a": "1", "b": "2", "c": "3"} and run.data.metrics == {"m": 1.5, "n": 2.0, "k": 3.0}
    assert {"t": "x", "u": "y"}.items() <= run.data.tags.items()
    assert mlflow.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    assert mlflow.get_parent_run(parent.info.run_id) is None


def test_an_experiment_exists_from_its_creation_with_its_tags_before_any_run(store_dir: Path) -> None:
    exp_id = mlflow.create_experiment("churn", tags={"team": "growth"})
    found = mlflow.get_experiment_by_name("churn")  # (was None until the first run)
    assert found is not None and found.experiment_id == exp_id == derived_id("churn") and found.tags == {"team": "growth"}
    assert mlflow.get_experiment(exp_id).name == "churn"
    with pytest.raises(AlreadyExistsError, match=r"Experiment\(name=churn\) already exists"):
        mlflow.create_experiment("churn")
    assert mlflow.search_runs(experiment_ids=[exp_id]).empty
    mlflow.set_experiment("fresh")  # as MLflow's: made by set_experiment, tagged before a run
    mlflow.set_experiment_tag("stage", "dev")
    mlflow.set_experiment_tags({"owner": "ana", "stage": "prod"})
    assert mlflow.get_experiment_by_name("fresh").tags == {"stage": "prod", "owner": "ana"}
    # one store, one set of experiments: what MLflow's clients see there (the catalog, its IDs)
    records = mltrail.Store(store_dir).tracking.catalog.records()
    assert records["churn"].tags == {"team": "growth"} and records["fresh"].tags == {"stage": "prod", "owner": "ana"}
    assert mlflow.get_experiment(records["churn"].experiment_id).name == "churn"  # the ID MLflow's clients know
    with mlflow.start_run(experiment_id=records["fresh"].experiment_id) as run:
        mlflow.log_metric("m", 1.0)
    assert run.info.experiment_id == records["fresh"].experiment_id
    assert len(mlflow.search_runs(experiment_names=["fresh"])) == 1


def test_experiment_ids_are_the_ones_mlflow_s_own_client_reads_in_the_same_store(store_dir: Path) -> None:
    made = mlflow.create_experiment("churn", tags={"team": "growth"})
    with mlflow.start_run(experiment_id=made) as in_churn:
        mlflow.log_metric("m", 1.0)
    with mlflow.start_run() as in_default:
        assert in_default.info.experiment_id == "0" == mlflow.tracking.fluent._get_experiment_id()
    mlflow.set_experiment("later")
    with mlflow.start_run() as in_later:
        pass
    shim = {"churn": made, "Default": in_default.info.experiment_id, "later": in_later.info.experiment_id,
            in_churn.info.run_id: mlflow.get_run(in_churn.info.run_id).info.experiment_id}
    frame = mlflow.search_runs(search_all_experiments=True)
    shim |= dict(zip(frame["run_id"], frame["experiment_id"], strict=True))
    done = run_python(f"""
        import json, mlflow
        mlflow.set_tracking_uri("mltrail:{store_dir}")
        ids = {{e.name: e.experiment_id for e in mlflow.search_experiments()}}
        runs = mlflow.search_runs(search_all_experiments=True)
        print(json.dumps(ids | dict(zip(runs["run_id"], runs["experiment_id"]))))
        """, store_dir.parent)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == shim
    assert len(shim) == 6 and len(set(shim.values())) == 3


def test_a_new_run_goes_where_mlflow_s_environment_variables_say(
        store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fluent = mlflow.tracking.fluent
    assert fluent._get_experiment_id_from_env() is None and fluent._get_experiment_id() == "0"
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")  # made when first named, as MLflow does
    assert fluent._get_experiment_id_from_env() == derived_id("from-env") == fluent._get_experiment_id()
    assert mlflow.get_experiment_by_name("from-env") is not None
    with mlflow.start_run() as run:
        assert run.info.experiment_id == derived_id("from-env")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "12")
    with pytest.raises(MlflowException, match="value `12` does not match the experiment id `[0-9]+` for experiment "
                                              "name `from-env`"):
        mlflow.start_run()
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    with pytest.raises(InvalidInputError, match="MLFLOW_EXPERIMENT_ID environment variable value `12` does not exist"):
        fluent._get_experiment_id()
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", mlflow.create_experiment("by-id"))
    with mlflow.start_run() as run:
        assert run.info.experiment_id == derived_id("by-id")
    mlflow.set_experiment("chosen")  # set_experiment wins over the environment, as in MLflow
    assert fluent._get_experiment_id() == derived_id("chosen")
    assert sorted(mlflow.search_runs(experiment_names=["from-env", "by-id"])["experiment_id"]) == sorted(
        [derived_id("from-env"), derived_id("by-id")])


def test_get_run_is_the_client_s_get_run_as_in_mlflow(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(mlflow.MlflowClient, "get_run", lambda self, run_id: seen.append(run_id) or "read")
    assert mlflow.get_run("abc") == "read" and seen == ["abc"]


def test_the_client_reads_runs_and_experiments_as_mlflow_s_does(store_dir: Path) -> None:
    client = mlflow.MlflowClient()
    assert mlflow.tracking.MlflowClient is mlflow.MlflowClient
    exp_id = client.create_experiment("churn", tags={"team": "growth"})
    client.set_experiment_tag(exp_id, "stage", "dev")
    assert client.get_experiment(exp_id).tags == {"team": "growth", "stage": "dev"}
    assert client.get_experiment_by_name("churn").experiment_id == exp_id
    assert client.get_experiment_by_name("nope") is None
    with mlflow.start_run(experiment_id=exp_id) as parent:
        for step, value in [(2, 0.5), (0, 0.9), (1, 0.7)]:
            mlflow.log_metric("loss", value, step=step, timestamp=1_790_000_000_000 + step)
        mlflow.log_metric("loss", 0.4, step=3, timestamp=1_789_999_999_999)  # a later step, an earlier time
        mlflow.log_param("lr", 0.1)
        mlflow.set_tag("note", "seen at once")
        assert client.get_run(parent.info.run_id).data.tags["note"] == "seen at once"  # the active run, buffered
        mlflow.delete_tag("note")
        with pytest.raises(NotFoundError, match="No tag with name: note in run"):
            mlflow.delete_tag("note")
        with mlflow.start_run(nested=True) as child:
            pass
    history = client.get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [  # MLflow's order: by time, then step
        (3, 0.4, 1_789_999_999_999), (0, 0.9, 1_790_000_000_000), (1, 0.7, 1_790_000_000_001),
        (2, 0.5, 1_790_000_000_002)]
    assert client.get_metric_history(parent.info.run_id, "none") == []
    with pytest.raises(NotFoundError):
        client.get_metric_history("01NOSUCHRUN0000000000000000", "loss")
    assert client.get_run(parent.info.run_id).data.params == {"lr": "0.1"}
    assert client.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    found = client.search_runs([exp_id], "params.lr = '0.1'")
    assert [r.info.run_id for r in found] == [parent.info.run_id]
    with pytest.raises(mlflow.UnsupportedCallError, match="MlflowClient does not support create_model_version"):
        client.create_model_version("m", "runs:/x/model")
    with pytest.raises(MlflowException, match="reads the store set_tracking_uri names"):
        mlflow.MlflowClient(str(store_dir.parent / "elsewhere"))
    assert mlflow.MlflowClient(str(store_dir)).get_run(child.info.run_id).info.run_id == child.info.run_id
    same = mlflow.MlflowClient(f"file:{store_dir}/../{store_dir.name}")  # another spelling of the same folder
    assert same.get_experiment(exp_id).tags == {"team": "growth", "stage": "dev"}


def test_each_call_of_the_shim_answers_with_mlflow_s_error_class() -> None:
    """A call added later without the decorator would raise mltrail's errors only."""
    import inspect

    calls = [getattr(mlflow, name) for name in mlflow.__all__ if inspect.isfunction(getattr(mlflow, name))]
    calls += [mlflow.sklearn.log_model, mlflow.sklearn.load_model, mlflow.sklearn.autolog, mlflow.ActiveRun.__exit__]
    assert len(calls) > 30
    unwrapped = [call.__qualname__ for call in calls if not hasattr(call, "__wrapped__")]
    assert unwrapped == []


def test_mlflow_s_own_exception_api_works_on_ours() -> None:
    error = MlflowException("bad value", error_code="INVALID_PARAMETER_VALUE", field="x")
    assert (error.message, error.error_code) == ("bad value", "INVALID_PARAMETER_VALUE")
    assert json.loads(error.serialize_as_json()) == {"error_code": "INVALID_PARAMETER_VALUE",
                                                     "message": "bad value", "field": "x"}
    assert MlflowException("x").error_code == "INTERNAL_ERROR"
    assert MlflowException("x", error_code="NO_SUCH_CODE").error_code == "INTERNAL_ERROR"  # as MLflow's
    assert MlflowException.invalid_parameter_value("y").error_code == "INVALID_PARAMETER_VALUE"


# -- MLflow's file rules -----------------------------------------------------------------

def test_log_dict_writes_yaml_for_yaml_names_and_json_for_any_other(store_dir: Path) -> None:
    config = {"model": {"depth": 3, "layers": [64, 32]}, "name": "churn"}
    with mlflow.start_run() as run:
        for name in ("c.yaml", "c.yml", "c.json", "c.txt", "c"):
            mlflow.log_dict(config, name)
        mlflow.log_dict({"when": pd.Timestamp("2026-01-02")}, "odd.json")  # JSON has no type: its str, as MLflow
        with pytest.raises(MlflowException, match="YAML cannot hold"):
            mlflow.log_dict({"when": object()}, "odd.yaml")
    store = mltrail.Store(store_dir)
    text = {name: store.artifact_path(run.info.run_id, name).read_text() for name in ("c.yaml", "c.yml", "c.json", "c.txt", "c")}
    assert text["c.yaml"] == text["c.yml"] == "model:\n  depth: 3\n  layers:\n  - 64\n  - 32\nname: churn\n"
    assert yaml.safe_load(text["c.yaml"]) == config
    assert text["c.json"] == text["c.txt"] == text["c"] == json.dumps(config, indent=2)
    assert json.loads(store.artifact_path(run.info.run_id, "odd.json").read_text()) == {"when": "2026-01-02 00:00:00"}


def test_log_table_writes_mlflow_s_json_table_appends_to_it_and_load_table_reads_it_back(store_dir: Path) -> None:
    mlflow.set_experiment("eval")
    with mlflow.start_run() as first:
        mlflow.log_table(pd.DataFrame({"q": ["a", "b"], "score": [0.5, 0.25]}), "eval/answers.json")
        mlflow.log_table({"q": ["c"], "score": [1.0]}, "eval/answers.json")  # appended, as MLflow does
        mlflow.log_table({"q": "one row"}, "eval/single.json")  # a dict of scalars is one row
        with pytest.raises(MlflowException, match=r"a table is a \*\.json or a \*\.parquet"):
            mlflow.log_table({"q": ["x"]}, "eval/answers.csv")
        with pytest.raises(MlflowException, match="DataFrame or a dictionary, not list"):
            mlflow.log_table([1, 2], "eval/list.json")
    with mlflow.start_run() as second:
        mlflow.log_table({"q": ["d"], "score": [0.0]}, "eval/answers.json")
    with mlflow.start_run():
        mlflow.log_param("no table", 1)
    store = mltrail.Store(store_dir)
    written = json.loads(store.artifact_path(first.info.run_id, "eval/answers.json").read_text())
    assert written == {"columns": ["q", "score"], "data": [["a", 0.5], ["b", 0.25], ["c", 1.0]]}
    assert json.loads(mlflow.get_run(first.info.run_id).data.tags["mlflow.loggedArtifacts"]) == [
        {"path": "eval/answers.json", "type": "table"}, {"path": "eval/single.json", "type": "table"}]
    table = mlflow.load_table("eval/answers.json", extra_columns=["run_id"])
    assert sorted(zip(table["q"], table["run_id"])) == [
        ("a", first.info.run_id), ("b", first.info.run_id), ("c", first.info.run_id), ("d", second.info.run_id)]
    only = mlflow.load_table("eval/answers.json", run_ids=[second.info.run_id])
    assert only.to_dict("list") == {"q": ["d"], "score": [0.0]}
    assert list(mlflow.load_table("eval/single.json")["q"]) == ["one row"]
    with pytest.raises(MlflowException) as missing:
        mlflow.load_table("eval/nothing.json")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST" and "eval/nothing.json" in str(missing.value)


def test_get_artifact_uri_names_the_active_run_s_artifacts(store_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("f")
    assert mlflow.active_run() is None
    root = mlflow.get_artifact_uri()  # as MLflow: without a run, one is started
    run = mlflow.active_run()
    assert run is not None and root == f"runs:/{run.info.run_id}" == run.info.artifact_uri
    mlflow.log_artifact(tmp_path / "f.txt", "features")
    uri = mlflow.get_artifact_uri("features/f.txt")
    assert uri == f"runs:/{run.info.run_id}/features/f.txt"
    mlflow.end_run()
    run_id, path = uri.removeprefix("runs:/").split("/", 1)
    assert mltrail.Store(store_dir).artifact_path(run_id, path).read_text() == "f"


def test_a_resumed_run_keeps_its_tags_and_takes_the_ones_start_run_gives(store_dir: Path) -> None:
    with mlflow.start_run(run_name="first", tags={"team": "growth"}) as run:
        mlflow.set_tag("stage", "dev")
    with mlflow.start_run(run.info.run_id, tags={"attempt": 2, "stage": "prod"}, description="resumed",
                          run_name="second") as resumed:
        assert {"team": "growth", "attempt": "2", "stage": "prod"}.items() <= resumed.data.tags.items()
        assert resumed.info.run_name == "second"
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert {"team": "growth", "attempt": "2", "stage": "prod", "mlflow.note.content": "resumed",
            "mlflow.runName": "second"}.items() <= tags.items()
    with pytest.raises(MlflowException, match="Description is already set via the tag mlflow.note.content"):
        mlflow.start_run(run.info.run_id, tags={"mlflow.note.content": "a"}, description="b")
    with pytest.raises(MlflowException, match="Invalid experiment id"):
        mlflow.start_run(experiment_id=["a", "b"])


# -- the `import mlflow.sklearn` trap -------------------------------------------------------

def _shadow_script(tmp_path: Path, body: str) -> tuple[str, list[dict[str, object]]]:
    """Run ``body`` as a script file in a fresh process; its stderr and the shadow warnings it got."""
    script = tmp_path / "train.py"
    script.write_text("import json, sys, warnings\n"
                      "warnings.simplefilter('always')\n"
                      "_caught = warnings.catch_warnings(record=True)\n"
                      "caught = _caught.__enter__()\n"
                      + body +
                      "\nshadow = [{'file': w.filename, 'line': w.lineno, 'message': str(w.message)}\n"
                      "          for w in caught if w.category.__name__ == 'MlflowShadowWarning']\n"
                      "print(json.dumps(shadow))\n")
    done = run_python(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')", cwd=tmp_path,
                      env={"PYTHONPATH": str(Path(mltrail.__file__).parents[1]), "MLFLOW_TRACKING_URI": ""},
                      timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr, [{**w, "file": Path(str(w["file"])).name} for w in json.loads(done.stdout.splitlines()[-1])]


@pytest.mark.slow
def test_importing_real_mlflow_beside_the_shim_warns_once_where_it_was_imported(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    _, warned = _shadow_script(tmp_path, """\
import mltrail
assert not any(type(f).__name__ == '_MlflowWatcher' for f in sys.meta_path), 'import mltrail installs nothing'
import mltrail.mlflow as mlflow
import importlib.util
assert importlib.util.find_spec('mlflow') is not None  # a probe imports nothing: no warning
assert 'mlflow' not in sys.modules
import mlflow.sklearn  # line 11 of the script
import mlflow.data
assert mlflow.__name__ == 'mlflow' and mlflow.__loader__.__class__.__name__ == 'SourceFileLoader'
import mltrail.mlflow as again
""")
    assert [(w["file"], w["line"]) for w in warned] == [("train.py", 11)]
    message = str(warned[0]["message"])
    assert "real MLflow package (mlflow) was imported" in message and "go to MLflow's store, not mltrail" in message
    assert "MLFLOW_TRACKING_URI=mltrail:<folder>" in message


@pytest.mark.slow
def test_the_shim_imported_after_real_mlflow_warns_at_once(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    _, warned = _shadow_script(tmp_path, "import mlflow\nimport mltrail.mlflow\nimport mlflow.sklearn\n")
    assert [(w["file"], w["line"]) for w in warned] == [("train.py", 6)]


@pytest.mark.slow
def test_the_warning_never_breaks_the_import_of_mlflow_even_when_warnings_are_errors(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    stderr, warned = _shadow_script(tmp_path, """\
import mltrail.mlflow
warnings.simplefilter('error', mltrail.mlflow.MlflowShadowWarning)
import mlflow.sklearn
print(mlflow.sklearn.__name__)
""")
    assert warned == []
    assert "real MLflow package (mlflow) was imported" in stderr  # logged instead: the import went on


# -- MLflow's checks and words, the client's writes ------------------------------------

def test_what_mlflow_s_client_refuses_is_refused_in_its_words_and_nothing_is_written(
        store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from unittest import mock

    client = mlflow.MlflowClient()
    for name, words in [(None, "Invalid experiment name: 'None'"), ("", "Invalid experiment name: ''"),
                        (123, "Invalid experiment name: 123. Expects a string.")]:
        with pytest.raises(MlflowException, match=re.escape(words)):
            mlflow.create_experiment(name)
    with pytest.raises(InvalidInputError, match="Must specify exactly one: experiment_id or experiment_name"):
        mlflow.set_experiment()
    bad_batches = {
        "Duplicate parameter keys have been submitted: ['a']": {"params": [_Entity("a", "1"), _Entity("a", "2")]},
        "Invalid value \"../up\" for parameter 'metrics[0].name' supplied": {"metrics": [mlflow.Metric("../up", 1.0, 3, 0)]},
        "Invalid value \"x\" for parameter 'metrics[1].value' supplied": {
            "metrics": [mlflow.Metric("ok", 1.0, 3, 0), mlflow.Metric("ok", "x", 3, 0)]},
        "Invalid value \"t\" for parameter 'metrics[0].timestamp' supplied": {"metrics": [mlflow.Metric("ok", 1.0, "t", 0)]},
        "Invalid value \"/abs\" for parameter 'tags[0].key' supplied": {"tags": [_Entity("/abs", "v")]},
    }
    with mlflow.start_run() as run:
        for words, batch in bad_batches.items():
            with pytest.raises(MlflowException, match=re.escape(words)) as refused:
                client.log_batch(run.info.run_id, **batch)
            assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
        with pytest.raises(mltrail.errors.InvalidMetricValueError, match="Invalid value \"apple\" for parameter 'value'"):
            mlflow.log_metric("m", "apple")
        assert mlflow.get_run(run.info.run_id).data.metrics == {}  # a refused batch wrote nothing of itself
        assert mlflow.get_run(run.info.run_id).data.params == {}
        client.log_batch(run.info.run_id, metrics=[mlflow.Metric("loss", 0.5, 1_790_000_000_000, 3)],
                         params=[_Entity("lr", 0.1)], tags=[_Entity("team", "growth")])
        with mock.patch("time.time", return_value=123.0):  # one time for one call, in ms, as MLflow
            mlflow.log_metrics({"a": 1.0, "b": 2.0}, step=7)
            client.log_metric(run.info.run_id, "c", 3.0)
    read = client.get_run(run.info.run_id)
    assert (read.data.params, read.data.tags["team"]) == ({"lr": "0.1"}, "growth")
    assert {(m.key, m.value, m.timestamp, m.step) for m in read.data._metric_objs} == {
        ("loss", 0.5, 1_790_000_000_000, 3), ("a", 1.0, 123_000, 7), ("b", 2.0, 123_000, 7), ("c", 3.0, 123_000, 0)}
    assert [(m.value, m.step) for m in client.get_metric_history(run.info.run_id, "loss")] == [(0.5, 3)]
    with pytest.raises(NotFoundError):
        client.get_metric_history("0" * 26, "loss")


class _Entity:
    """What MLflow's Param and RunTag are to log_batch: a key and a value."""

    def __init__(self, key: object, value: object) -> None:
        self.key, self.value = key, value


def test_runs_and_experiments_are_deleted_and_restored_through_the_client_as_in_mlflow(
        store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        assert mlflow.active_run() == run and len({run, mlflow.active_run()}) == 1
    client.set_tag(run.info.run_id, "reviewed", "yes")  # a tag on a run that has ended: an edit
    assert mlflow.get_run(run.info.run_id).data.tags["reviewed"] == "yes"
    client.delete_run(run.info.run_id)
    with pytest.raises(MlflowException, match="because it is in the deleted state"):
        mlflow.start_run(run_id=run.info.run_id)
    client.restore_run(run.info.run_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)  # resumed from the environment, then used up
    with mlflow.start_run() as resumed:
        with mlflow.start_run(nested=True) as child:
            pass
    assert resumed.info.run_id == run.info.run_id != child.info.run_id and "MLFLOW_RUN_ID" not in os.environ
    assert mlflow.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == run.info.run_id
    dead = mlflow.create_experiment("dead")
    client.delete_experiment(dead)
    with pytest.raises(MlflowException, match="Cannot set a deleted experiment 'dead'"):
        mlflow.set_experiment("dead")
    with pytest.raises(MlflowException, match=re.escape("Experiment(name=dead) already exists. (deleted")):
        mlflow.create_experiment("dead")
    client.restore_experiment(dead)
    assert mlflow.set_experiment(experiment_id=dead).name == "dead"


def test_download_artifacts_copies_a_run_s_artifacts_out_under_their_names(store_dir: Path, tmp_path: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("a", "dir/a.txt")
        mlflow.log_text("b", "dir/sub/b.txt")
        mlflow.log_text("c", "c.txt")
    run_id = run.info.run_id
    one = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dir/a.txt"))
    assert (one.name, one.read_text()) == ("a.txt", "a")
    folder = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dir", dst_path=str(tmp_path / "out")))
    assert folder == tmp_path / "out" / "dir"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.txt")) == ["a.txt", "sub/b.txt"]
    assert Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/c.txt")).read_text() == "c"
    with pytest.raises(NotFoundError, match="has no artifact 'dir/a'"):  # a name, not a prefix of one
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dir/a")


def test_a_table_s_image_column_is_logged_as_images_and_a_run_that_ended_takes_more(store_dir: Path) -> None:
    from PIL import Image as PILImage

    pixels = np.array([[0, 128, 255], [255, 128, 0]], dtype=np.uint8)
    table = {"prompt": ["a", "b"], "picture": [mlflow.Image(pixels), PILImage.fromarray(pixels).convert("RGB")]}
    with mlflow.start_run() as run:
        mlflow.log_table(table, "eval/results.json")
        with pytest.raises(ValueError, match="Column `picture` contains a mix of images and non-images"):
            mlflow.log_table({"picture": [mlflow.Image(pixels), "text"]}, "mixed.json")
    run_id = run.info.run_id
    mlflow.log_table(table, "eval/results.json", run_id=run_id)  # after the run ended, as MLflow allows
    mlflow.log_params({"late": 1}, run_id=run_id)
    read = mlflow.get_run(run_id)
    assert read.info.status == "FINISHED" and read.data.params == {"late": "1"}
    frame = pd.read_json(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="eval/results.json"),
                         orient="split")
    assert len(frame) == 4 and {cell["type"] for cell in frame["picture"]} == {"image"}
    cell = frame["picture"][0]
    assert cell["filepath"].startswith("table_images/eval/results/") and cell["compressed_filepath"].endswith(".webp")
    again = PILImage.open(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=cell["filepath"]))
    assert (np.array(again) == pixels).all()  # the same pixels back
    assert mlflow.Image(pixels.tolist()).size == (3, 2) and mlflow.Image(pixels).to_list() == pixels.tolist()
    with pytest.raises(InvalidInputError, match="mlflow.Image: integer pixels must be within 0 and 255"):
        mlflow.Image([[300]])
    with mlflow.start_run():  # a run another process writes is not written into: one writer a run
        with mlflow.start_run(nested=True) as live:
            pass
        elsewhere = mltrail.Store(store_dir).start_run(run_id=live.info.run_id)
        with pytest.raises(InvalidInputError, match="is RUNNING, not this process's active run"):
            mlflow.log_params({"x": 1}, run_id=live.info.run_id)
        elsewhere.end()
