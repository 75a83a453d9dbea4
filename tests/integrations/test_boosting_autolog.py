"""XGBoost and LightGBM: their callbacks and autologging, by real training of tiny models."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

import mltrail

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")


@pytest.fixture
def data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:400], y.iloc[:400], X.iloc[400:], y.iloc[400:]


def one_run(store):
    runs = store.search_runs()
    assert len(runs) == 1, runs[["run_name", "parent_run_id"]]
    return store.get_run(runs["run_id"][0]), store.metric_history(list(runs["run_id"]))


@pytest.mark.slow
def test_xgboost_train_logs_each_round_the_booster_and_its_importance(store, data):
    X, y, Xv, yv = data
    mltrail.xgboost.autolog(store, "boost")
    booster = xgboost.train({"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 2},
                            xgboost.DMatrix(X, y), num_boost_round=6,
                            evals=[(xgboost.DMatrix(Xv, yv), "eval")], verbose_eval=False)
    run, history = one_run(store)
    params = dict(zip(run["params"]["key"], run["params"]["value"]))
    assert params["max_depth"] == "2" and params["num_boost_round"] == "6"
    points = history[history["key"] == "eval-logloss"]
    assert points["step"].tolist() == list(range(6))
    assert points["value"].iloc[-1] == pytest.approx(
        float(booster.eval(xgboost.DMatrix(Xv, yv), "eval").split(":")[1]), rel=1e-5)
    saved = xgboost.Booster()
    saved.load_model(bytearray(store.artifact_path(run["run"]["run_id"], "model.json").read_bytes()))
    assert np.allclose(saved.predict(xgboost.DMatrix(Xv)), booster.predict(xgboost.DMatrix(Xv)))
    importance = json.loads(store.artifact_path(run["run"]["run_id"], "feature_importance.json").read_text())
    assert set(importance) <= set(X.columns) and importance


@pytest.mark.slow
def test_an_xgboost_classifier_fit_is_one_run_with_early_stopping_s_best_round(store, data):
    X, y, Xv, yv = data
    mltrail.autolog(store, "boost")  # scikit-learn's too: the wrapper's label encoding is no run
    model = xgboost.XGBClassifier(n_estimators=50, max_depth=2, early_stopping_rounds=3, eval_metric="logloss")
    model.fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    run, history = one_run(store)
    assert run["run"]["run_name"] == "XGBClassifier"
    best = dict(zip(run["metrics"]["key"], run["metrics"]["value"]))["best_iteration"]
    assert best == model.best_iteration
    assert history[history["key"] == "validation_0-logloss"]["step"].max() >= model.best_iteration


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The argument .eval_set. is deprecated")  # lightgbm 4.7; older ones lack eval_X
def test_lightgbm_train_and_classifier_log_each_iteration(store, data):
    X, y, Xv, yv = data
    mltrail.autolog(store, "boost")
    lightgbm.train({"objective": "binary", "verbose": -1, "num_leaves": 4}, lightgbm.Dataset(X, y),
                   num_boost_round=5, valid_sets=[lightgbm.Dataset(Xv, yv)], valid_names=["valid"])
    model = lightgbm.LGBMClassifier(n_estimators=4, num_leaves=4, verbose=-1)
    model.fit(X, y, eval_set=[(Xv, yv)])
    runs = store.search_runs(order_by=["attributes.start_time ASC"])
    assert runs["run_name"].tolist() == ["lightgbm", "LGBMClassifier"]
    history = store.metric_history(list(runs["run_id"]))
    first = history[(history["run_id"] == runs["run_id"][0]) & (history["key"] == "valid-binary_logloss")]
    assert first["step"].tolist() == [0, 1, 2, 3, 4]
    assert runs["params.num_leaves"].tolist() == ["4", "4"]
    text = store.artifact_path(runs["run_id"][1], "model.txt").read_text()
    reloaded = lightgbm.Booster(model_str=text)
    assert np.allclose(reloaded.predict(Xv), model.predict_proba(Xv)[:, 1])


@pytest.mark.slow
def test_the_callbacks_log_into_a_run_given_or_active(store, data):
    X, y, Xv, yv = data
    with store.start_run("by-hand") as run:
        xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(X, y), 3,
                      evals=[(xgboost.DMatrix(Xv, yv), "val")], verbose_eval=False,
                      callbacks=[mltrail.xgboost.callback(log_model=False)])
        lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, y), 3,
                       valid_sets=[lightgbm.Dataset(Xv, yv)], valid_names=["val"],
                       callbacks=[mltrail.lightgbm.callback(run)])
    keys = set(store.metric_history([run.id])["key"])
    assert {"val-logloss", "val-binary_logloss"} <= keys
    with pytest.raises(RuntimeError, match="needs a run"):
        xgboost.train({}, xgboost.DMatrix(X, y), 1, callbacks=[mltrail.xgboost.callback()])


def test_the_xgboost_callback_logs_a_cross_validation_s_mean_and_spread(store, data):
    # xgboost.cv hands its callbacks (mean, std) pairs over the folds, not numbers: the
    # callback took float() of the pair and the cross-validation died with a TypeError
    X, y, _, _ = data
    with store.start_run("cv") as run:
        folds = xgboost.cv({"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 2},
                           xgboost.DMatrix(X, y), num_boost_round=3, nfold=3, seed=0,
                           callbacks=[mltrail.xgboost.callback(log_model=False)])
    history = store.metric_history([run.id])
    for column in ("test-logloss-mean", "test-logloss-std", "train-logloss-mean"):
        key = column.removesuffix("-mean")
        logged = history[history["key"] == key].sort_values("step")
        assert logged["step"].tolist() == [0, 1, 2], key
        assert np.allclose(logged["value"], folds[column]), key


def test_the_xgboost_callback_logs_a_linear_booster_s_weights(store, data):
    # a linear booster defines no gain: the callback asked for it and the training ended in
    # an XGBoostError; with several classes its weights are a list a feature
    X, y, _, _ = data
    classes = (X["mean radius"] > X["mean radius"].median()).astype(int) + y
    with store.start_run("linear") as run:
        booster = xgboost.train({"booster": "gblinear", "objective": "multi:softprob", "num_class": 3},
                                xgboost.DMatrix(X, classes), 3, callbacks=[mltrail.xgboost.callback()])
    logged = json.loads(store.artifact_path(run.id, "feature_importance.json").read_text())
    expected = booster.get_score(importance_type="weight")
    assert set(logged) == set(expected) and all(len(weights) == 3 for weights in logged.values())
    assert all(np.allclose(logged[name], expected[name]) for name in expected)
