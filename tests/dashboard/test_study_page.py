"""The Study page: an Optuna study logged with mltrail.optuna, drawn from its runs on a
folder and through a server: the history's points are the trials' values, the best trial
is Optuna's, the importances are Optuna's own."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

import mltrail
import mltrail.optuna
from mltrail.dashboard.text import md
from tests.dashboard.test_compare_truth import _rows
from tests.factories import APP, rendered_page, serving_store

optuna = pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def studied(tmp_path_factory):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = mltrail.Store(tmp_path_factory.mktemp("study") / "store")

    def objective(trial):
        x, y = trial.suggest_float("x", -4, 4), trial.suggest_int("y", 0, 3)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        for step in range(4):
            trial.report((x - 1) ** 2 + y + step / 10, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return (x - 1) ** 2 + y + (0.5 if kind == "b" else 0.0)

    study = optuna.create_study(study_name="quadratic", sampler=optuna.samplers.TPESampler(seed=3),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
    with mltrail.optuna.callback(store, "tuning") as tracking:
        study.optimize(objective, n_trials=20, callbacks=[tracking])
    return store, study


def _chart(at, title):
    return next(c for c in at.get("vega_lite_chart") if title in str(json.loads(c.proto.spec).get("title")))


def _check(at, study):
    assert not at.exception, [e.value for e in at.exception]
    history = _rows(_chart(at, "Optimization history"))
    values = {r["trial"]: r["value"] for r in history if r.get("value") is not None and "state" in r}
    assert values == pytest.approx({t.number: t.value for t in study.trials if t.value is not None})
    texts = " ".join(str(m.value) for m in at.markdown)
    assert md(f"trial-{study.best_trial.number}") in texts and f"{study.best_value:.6g}" in texts
    importance = {r["param"]: r["importance"] for r in _rows(_chart(at, "Parameter importances"))}
    expected = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    assert importance == pytest.approx(dict(expected))
    assert any("20 trials" in c.value for c in at.caption)


@pytest.mark.slow
def test_the_study_page_on_a_folder(studied, monkeypatch):
    store, study = studied
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    _check(rendered_page("study.py"), study)


@pytest.mark.slow
def test_the_study_page_through_a_server(studied, monkeypatch, tmp_path):
    store, study = studied
    with serving_store(store.root, token="s3cret") as url:
        monkeypatch.setenv("MLTRAIL_DIR", url)
        monkeypatch.setenv("MLTRAIL_TOKEN", "s3cret")
        monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))
        _check(rendered_page("study.py"), study)


@pytest.mark.slow
def test_a_study_s_run_and_its_trials_link_to_the_study_page(studied, monkeypatch):
    store, study = studied
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    [parent] = store.search_runs("tuning", filter="tags.`optuna.role` = 'study'")["run_id"]
    trial = store.search_runs("tuning", filter=f"attributes.parent_run_id = '{parent}'", view="all")["run_id"][0]
    for run_id in (parent, trial):
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        at.query_params["run"] = run_id  # (after the Runs page's first render, which rewrites the address)
        at.switch_page("run.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.selectbox(key="run_choice").value == run_id
        links = {link.label: link.proto.query_string for link in at.get("page_link")}
        assert links.get("Open its Optuna study") == f"run={parent}", (run_id, links)
