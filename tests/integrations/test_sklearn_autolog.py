"""scikit-learn autologging, proved by real training of tiny models."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mltrail


@pytest.fixture
def iris():
    return load_iris(return_X_y=True, as_frame=True)


@pytest.mark.slow
def test_a_classifier_fit_logs_params_metrics_model_and_data(store, iris):
    X, y = iris
    mltrail.sklearn.autolog(store, "iris")
    model = LogisticRegression(C=0.5, max_iter=300).fit(X, y)
    runs = store.search_runs(experiment="iris")
    assert len(runs) == 1
    run = store.get_run(runs["run_id"][0])
    assert run["run"]["run_name"] == "LogisticRegression" and run["run"]["status"] == "FINISHED"
    params = dict(zip(run["params"]["key"], run["params"]["value"]))
    assert params["C"] == "0.5" and params["max_iter"] == "300"
    assert set(run["params"]["group"]) == {"model"}
    metrics = dict(zip(run["metrics"]["key"], run["metrics"]["value"]))
    assert metrics["training_accuracy_score"] == pytest.approx(model.score(X, y))
    assert {"training_f1_score", "training_precision_score", "training_recall_score", "training_log_loss",
            "training_score"} <= set(metrics)
    assert run["tags"]["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    dataset = run["datasets"].iloc[0]
    assert (dataset["name"], dataset["rows"], dataset["context"]) == ("training", 150, "training")
    assert list(dataset["columns"]) == [*X.columns, "target"]
    loaded = store.load_model(f"runs:/{runs['run_id'][0]}/model.pkl")
    assert (loaded.predict(X) == model.predict(X)).all()


@pytest.mark.slow
def test_the_same_data_hashes_the_same_and_other_data_does_not(store, iris):
    X, y = iris
    mltrail.sklearn.autolog(store, "iris", log_models=False)
    LogisticRegression(max_iter=300).fit(X, y)
    LogisticRegression(max_iter=300, C=2.0).fit(X, y)
    LogisticRegression(max_iter=300).fit(X.iloc[:100], y.iloc[:100])
    hashes = [store.get_run(r)["datasets"]["sha256"][0]
              for r in store.search_runs(order_by=["attributes.start_time ASC"])["run_id"]]
    assert hashes[0] == hashes[1] != hashes[2]
    assert all(store.get_run(r)["artifacts"].empty for r in store.search_runs()["run_id"])


def test_a_regressor_logs_regression_metrics(store):
    X, y = load_diabetes(return_X_y=True)  # arrays, not frames
    mltrail.sklearn.autolog(store, "diabetes")
    LinearRegression().fit(X, y)
    metrics = store.search_runs().iloc[0]
    assert metrics["metrics.training_r2_score"] == pytest.approx(metrics["metrics.training_score"])
    assert metrics["metrics.training_root_mean_squared_error"] == pytest.approx(
        np.sqrt(metrics["metrics.training_mean_squared_error"]))


@pytest.mark.slow
def test_a_grid_search_is_one_parent_with_a_child_run_per_candidate(store, iris):
    X, y = iris
    mltrail.sklearn.autolog(store, "search")
    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
                          {"logisticregression__C": [0.01, 0.1, 1.0]}, cv=3).fit(X, y)
    runs = store.search_runs(experiment="search")
    parent = runs[runs["parent_run_id"].isna()]
    children = runs[runs["parent_run_id"].notna()]
    assert len(parent) == 1 and len(children) == 3  # the 9 + 1 inner fits are not runs of their own
    parent_id = parent["run_id"].iloc[0]
    assert set(children["parent_run_id"]) == {parent_id}
    assert parent["params.best_logisticregression__C"].iloc[0] == str(search.best_params_["logisticregression__C"])
    assert parent["metrics.best_cv_score"].iloc[0] == pytest.approx(search.best_score_)
    by_c = dict(zip(children["params.logisticregression__C"], children["metrics.mean_test_score"]))
    expected = dict(zip(map(str, search.cv_results_["param_logisticregression__C"]), search.cv_results_["mean_test_score"]))
    assert by_c == pytest.approx(expected)
    table = pd.read_parquet(store.artifact_path(parent_id, "cv_results.parquet"))
    assert len(table) == 3 and "mean_test_score" in table


@pytest.mark.slow
def test_max_tuning_runs_keeps_the_best_candidates(store, iris):
    X, y = iris
    mltrail.sklearn.autolog(store, "search", max_tuning_runs=1, log_models=False)
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.001, 1.0]}, cv=3).fit(X, y)
    children = store.search_runs(filter="attributes.parent_run_id != ''")
    assert children["params.C"].tolist() == [str(search.best_params_["C"])]


@pytest.mark.slow
def test_a_fit_inside_an_active_run_logs_into_it(store, iris):
    X, y = iris
    mltrail.sklearn.autolog()
    with store.start_run("mine", name="by hand") as run:
        run.log_metric("custom", 1.0)
        LogisticRegression(max_iter=300).fit(X, y)
    runs = store.search_runs()
    assert runs["run_name"].tolist() == ["by hand"] and runs["metrics.training_score"].notna().all()


def test_a_failing_fit_ends_its_run_failed_and_raises_as_before(store):
    mltrail.sklearn.autolog(store, "bad")
    with pytest.raises(ValueError):
        LogisticRegression().fit([[1.0], [2.0]], [0, 0])  # one class only
    assert store.search_runs()["status"].tolist() == ["FAILED"]


@pytest.mark.slow
def test_logging_trouble_is_a_logged_warning_and_training_goes_on_where_warnings_are_errors(store, iris, caplog):
    """The tests run with warnings as errors, as many users' do: a ``warnings.warn`` here
    stopped the fit that autologging promises never to stop."""
    X, y = iris
    mltrail.sklearn.autolog()
    with store.start_run("twice") as run:
        run.log_param("C", "already set", group="model")  # the fit's C=1.0 cannot be logged over it
        model = LogisticRegression(max_iter=300).fit(X, y)
    assert model.score(X, y) > 0.9
    said = [r for r in caplog.records if r.name == "mltrail.integrations.sklearn"]
    assert said and said[0].levelname == "WARNING" and "autologging could not log" in said[0].getMessage()


@pytest.mark.slow
def test_disable_puts_scikit_learn_back(store, iris):
    X, y = iris
    original = LogisticRegression.fit
    mltrail.sklearn.autolog(store)
    assert LogisticRegression.fit is not original
    mltrail.sklearn.autolog(disable=True)
    assert LogisticRegression.fit is original
    with warnings.catch_warnings(record=True) as caught:
        LogisticRegression(max_iter=300).fit(X, y)
    assert not [w for w in caught if "mltrail" in str(w.message)]
    assert not (store.root / "experiments").exists()


def test_autolog_turns_on_what_is_installed_and_refuses_unknown_names(store):
    assert mltrail.autolog(store, exclude=("xgboost", "lightgbm")) == ["sklearn"]
    with pytest.raises(mltrail.InvalidInputError, match="not keras"):
        mltrail.autolog(exclude=("keras",))
