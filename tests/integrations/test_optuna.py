"""An Optuna study as runs (mltrail.optuna): a real study (TPE, MedianPruner) tuning an
SGD classifier epoch by epoch; its trials' child runs equal ``study.trials``, pruned ones
end KILLED at the step they were pruned, and the study comes back from the store."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mltrail
import mltrail.optuna
from mltrail.integrations.optuna import DISTRIBUTIONS_TAG, PRUNED_STEP_TAG

optuna = pytest.importorskip("optuna")
TRIALS = 24


def objective(trial: optuna.Trial) -> float:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(x / 16, y, random_state=0)
    model = SGDClassifier(alpha=trial.suggest_float("alpha", 1e-6, 1e-1, log=True),
                          loss=trial.suggest_categorical("loss", ["hinge", "log_loss"]),
                          eta0=trial.suggest_float("eta0", 1e-4, 1.0, log=True), learning_rate="constant",
                          random_state=trial.suggest_int("seed", 0, 3))
    error = 1.0
    for epoch in range(8):
        model.partial_fit(x_train, y_train, classes=np.unique(y))
        error = 1 - model.score(x_valid, y_valid)
        trial.report(error, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return error


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = mltrail.Store(tmp_path_factory.mktemp("optuna") / "store")
    study = optuna.create_study(study_name="digits-sgd", direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=1),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2))
    with mltrail.optuna.callback(store, "tuning") as tracking:
        study.optimize(objective, n_trials=TRIALS, callbacks=[tracking])
    return store, study


def trial_runs(store):
    runs = store.search_runs("tuning", filter="tags.`optuna.role` = 'trial'", view="all")
    return runs.assign(number=runs["tags.optuna.trial_number"].astype(int)).sort_values("number").reset_index(drop=True)


@pytest.mark.slow
def test_each_trial_is_a_child_run_equal_to_optuna_s_trial(tuned) -> None:
    store, study = tuned
    [parent] = store.search_runs("tuning", filter="tags.`optuna.role` = 'study'")["run_id"]
    runs = trial_runs(store)
    assert len(runs) == len(study.trials) == TRIALS
    assert set(runs["parent_run_id"]) == {parent}
    states = {t.state.name for t in study.trials}
    assert "PRUNED" in states and "COMPLETE" in states  # the pruner did prune (a real study, not a stub)
    history = store.metric_history(list(runs["run_id"]), ["intermediate_value"])
    for trial, run in zip(study.trials, runs.to_dict("records")):
        assert run["number"] == trial.number and run["run_name"] == f"trial-{trial.number}"
        assert run["params.alpha"] is not None and float(run["params.alpha"]) == pytest.approx(trial.params["alpha"])
        assert run["params.loss"] == trial.params["loss"] and int(run["params.seed"]) == trial.params["seed"]
        points = history[history["run_id"] == run["run_id"]].sort_values("step")
        assert dict(zip(points["step"], points["value"])) == pytest.approx(trial.intermediate_values)
        if trial.state.name == "COMPLETE":
            assert run["status"] == "FINISHED" and run["metrics.value"] == pytest.approx(trial.value)
        else:
            assert trial.state.name == "PRUNED" and run["status"] == "KILLED"
            assert int(run[f"tags.{PRUNED_STEP_TAG}"]) == trial.last_step < 7
            assert store.get_run(run["run_id"])["run"]["error"] == f"pruned at step {trial.last_step}"
        assert set(json.loads(run[f"tags.{DISTRIBUTIONS_TAG}"])) == {"alpha", "loss", "eta0", "seed"}


@pytest.mark.slow
def test_the_study_run_holds_the_optimization_history_and_ends(tuned) -> None:
    store, study = tuned
    [parent] = store.search_runs("tuning", filter="tags.`optuna.role` = 'study'").to_dict("records")
    assert parent["status"] == "FINISHED" and parent["run_name"] == "digits-sgd"
    best = store.metric_history([parent["run_id"]], ["best_value"]).sort_values("step")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert list(best["step"]) == [t.number for t in complete]
    assert list(best["value"]) == pytest.approx(list(np.minimum.accumulate([t.value for t in complete])))
    assert parent["metrics.best_value"] == pytest.approx(study.best_value)


@pytest.mark.slow
def test_the_study_comes_back_from_the_store_for_optuna_s_importances(tuned) -> None:
    store, study = tuned
    [parent] = store.search_runs("tuning", filter="tags.`optuna.role` = 'study'")["run_id"]
    back = mltrail.optuna.load_study(store, parent)
    assert [(t.number, t.state, t.params, t.values, t.intermediate_values) for t in back.trials] == \
        [(t.number, t.state, t.params, t.values, t.intermediate_values) for t in study.trials]
    assert back.best_value == study.best_value and back.direction == study.direction
    importances = optuna.importance.get_param_importances(
        back, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    assert importances == optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))


def test_a_failed_trial_ends_failed_and_a_multi_objective_study_logs_each_value(store) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def two(trial):
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            raise ValueError("diverged")
        return x, 1 - x

    study = optuna.create_study(directions=["minimize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=0))
    tracking = mltrail.optuna.callback(store, "pareto", metric_names=["cost", "quality"])
    study.optimize(two, n_trials=3, callbacks=[tracking], catch=(ValueError,))
    tracking.end()
    runs = trial_runs_of(store, "pareto")
    assert list(runs["status"]) == ["FINISHED", "FAILED", "FINISHED"]
    assert runs.loc[0, "metrics.cost"] == pytest.approx(study.trials[0].values[0])
    assert runs.loc[2, "metrics.quality"] == pytest.approx(study.trials[2].values[1])
    [parent] = store.search_runs("pareto", filter="tags.`optuna.role` = 'study'").to_dict("records")
    assert parent["status"] == "FINISHED" and "metrics.best_value" not in parent  # no single best of two
    with pytest.raises(mltrail.InvalidInputError, match="names 1 objectives; the study has 2"):
        mltrail.optuna.callback(store, "pareto", metric_names=["cost"])(study, study.trials[0])


def trial_runs_of(store, experiment):
    runs = store.search_runs(experiment, filter="tags.`optuna.role` = 'trial'", view="all")
    return runs.assign(number=runs["tags.optuna.trial_number"].astype(int)).sort_values("number").reset_index(drop=True)


def test_a_study_with_a_child_run_that_is_no_trial_or_a_trial_without_its_tags_loads_the_rest(store) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    tracking = mltrail.optuna.callback(store, "odd")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3, callbacks=[tracking])
    with store.start_run("odd", parent=tracking.study_run.id, name="a note", log_git=False, log_packages=False,
                         log_system=False):
        pass  # a child run of the study's run that no trial made
    tracking.end()
    second = trial_runs_of(store, "odd")["run_id"][1]
    store.delete_tag(second, "optuna.distributions")  # edited by hand
    with pytest.warns(UserWarning, match=f"run {second} .* is left out"):
        back = mltrail.optuna.load_study(store, tracking.study_run.id)
    assert [t.params for t in back.trials] == [study.trials[0].params, study.trials[2].params]
