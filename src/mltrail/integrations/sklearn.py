"""scikit-learn autologging: ``mltrail.sklearn.autolog()``.

Each outermost ``fit`` of an estimator logs, into the active run or a run of its own:
its params (group ``model``; a pipeline's or a search's nested params as ``step__param``),
training metrics (MLflow's names: ``training_accuracy_score``, ``training_f1_score``...
for a classifier, ``training_mean_squared_error``, ``training_r2_score``... for a
regressor, and ``training_score``), the fitted model as ``model.pkl`` (``load_model``
reads it back), and the training data's hash, shape and columns as the dataset
``training``. A search (``GridSearchCV``, ``RandomizedSearchCV``...) also logs its best
params (``best_<param>``, as MLflow does) and score (``best_cv_score``), its ``cv_results.parquet``, and one child run per candidate with the
candidate's params and cross-validated scores. Fits made inside a fit (the candidates of
a search, the steps of a pipeline) are not logged again.
"""

from __future__ import annotations

import logging
import pickle
import tempfile
from pathlib import Path
from typing import Any

from ..errors import MltrailError
from ..store import Store
from ..tracking.run import Run
from .session import Settings, configure, flat_params, outermost, patch, training_run

logger = logging.getLogger(__name__)

SETTINGS = Settings()
_FIT_METHODS = ("fit", "fit_transform", "fit_predict")


def autolog(store: Store | str | Path | None = None, experiment: str | None = None, *,
            log_models: bool = True, max_tuning_runs: int | None = None, disable: bool = False) -> None:
    """Log every scikit-learn ``fit`` (see the module's description). ``max_tuning_runs``:
    child runs for at most this many of a search's best candidates (all by default);
    ``disable=True`` puts scikit-learn back as it was."""
    if not configure(SETTINGS, store, experiment, disable, log_models=log_models, max_tuning_runs=max_tuning_runs):
        return
    from sklearn.utils import all_estimators

    for _, cls in all_estimators():
        for method in _FIT_METHODS:
            if method in vars(cls):
                patch(SETTINGS, cls, method, _logged_fit)
    for cls in _searches():
        patch(SETTINGS, cls, "fit", _logged_fit)


def _searches() -> list[type]:
    """The hyperparameter searches (not in all_estimators: they need an estimator)."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    found: list[type] = [GridSearchCV, RandomizedSearchCV]
    try:
        from sklearn.experimental import enable_halving_search_cv  # noqa: F401
        from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV
        found += [HalvingGridSearchCV, HalvingRandomSearchCV]
    except ImportError:
        pass
    base = found[0].__mro__[1]  # BaseSearchCV defines fit for all of them
    return [base] if "fit" in vars(base) else found


def _logged_fit(original: Any) -> Any:
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        with outermost() as first:
            if not first:
                return original(self, *args, **kwargs)
            # the data as the fit was given it (LabelEncoder.fit takes y alone: passed on as it came)
            X = args[0] if args else kwargs.get("X")
            y = args[1] if len(args) > 1 else kwargs.get("y")
            with training_run(SETTINGS, name=type(self).__name__) as run:
                _safely(lambda: _before(run, self, X, y))
                result = original(self, *args, **kwargs)
                _safely(lambda: _after(run, self, X, y))
                return result
    return fit


def _safely(step: Any) -> None:
    """Autologging never stops the training it logs: a failure to log is a logged warning
    (not a ``warnings`` one, which ``-W error`` or pytest's ``filterwarnings = error``
    would raise into the fit)."""
    try:
        step()
    except (MltrailError, ValueError, TypeError, OSError) as exc:
        logger.warning("mltrail autologging could not log: %s", exc)


def _before(run: Run, estimator: Any, X: Any, y: Any) -> None:
    run.log_params(flat_params(estimator.get_params(deep=True)), group="model")
    run.set_tags({"estimator_name": type(estimator).__name__,
                  "estimator_class": f"{type(estimator).__module__}.{type(estimator).__qualname__}"})
    if X is not None:
        run.log_dataset(_frame(X, y), name="training", context="training")


def _after(run: Run, estimator: Any, X: Any, y: Any) -> None:
    if X is not None and y is not None:
        run.log_metrics(training_metrics(estimator, X, y))
    if hasattr(estimator, "cv_results_"):
        _log_search(run, estimator)
    if SETTINGS.options.get("log_models", True):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.pkl"
            path.write_bytes(pickle.dumps(estimator))
            run.log_artifact(path)


def _frame(X: Any, y: Any) -> Any:
    """X with y as a last column ``target``, as one table to hash."""
    import pandas as pd

    frame = X.copy() if isinstance(X, pd.DataFrame) else pd.DataFrame(_dense(X))
    frame.columns = [str(c) for c in frame.columns]
    if y is not None:
        frame["target" if "target" not in frame.columns else "__target__"] = list(_dense(y))
    return frame


def _dense(data: Any) -> Any:
    return data.toarray() if hasattr(data, "toarray") else data


def training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    """MLflow's training metrics for a classifier or a regressor, and its ``score``."""
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    values: dict[str, float] = {}
    if hasattr(estimator, "score"):
        values["training_score"] = float(estimator.score(X, y))
    if not hasattr(estimator, "predict"):
        return values
    if is_classifier(estimator):
        predicted = estimator.predict(X)
        values.update({
            "training_accuracy_score": metrics.accuracy_score(y, predicted),
            "training_precision_score": metrics.precision_score(y, predicted, average="weighted", zero_division=0),
            "training_recall_score": metrics.recall_score(y, predicted, average="weighted", zero_division=0),
            "training_f1_score": metrics.f1_score(y, predicted, average="weighted", zero_division=0),
        })
        if hasattr(estimator, "predict_proba"):
            proba = estimator.predict_proba(X)
            values["training_log_loss"] = metrics.log_loss(y, proba, labels=estimator.classes_)
            if proba.shape[1] == 2:
                values["training_roc_auc"] = metrics.roc_auc_score(y, proba[:, 1])
    elif is_regressor(estimator):
        predicted = estimator.predict(X)
        mse = metrics.mean_squared_error(y, predicted)
        values.update({
            "training_mean_squared_error": mse, "training_root_mean_squared_error": mse ** 0.5,
            "training_mean_absolute_error": metrics.mean_absolute_error(y, predicted),
            "training_r2_score": metrics.r2_score(y, predicted),
        })
    return {key: float(value) for key, value in values.items()}


def _log_search(run: Run, search: Any) -> None:
    """A search's best params and score, its cv_results_ table, and a child run per
    candidate (its params and cross-validated scores)."""
    import pandas as pd

    if hasattr(search, "best_params_"):
        run.log_params({f"best_{k}": v for k, v in flat_params(search.best_params_).items()}, group="best")
    if hasattr(search, "best_score_"):
        run.log_metric("best_cv_score", float(search.best_score_))
    results = pd.DataFrame(search.cv_results_)
    run.log_table(results.drop(columns="params").astype(
        {c: str for c in results.columns if c.startswith("param_")}), "cv_results.parquet")
    order = results.sort_values("rank_test_score", kind="stable").index if "rank_test_score" in results else results.index
    limit = SETTINGS.options.get("max_tuning_runs")
    scores = [c for c in results.columns if c.startswith(("mean_", "std_", "rank_", "split")) and
              pd.api.types.is_numeric_dtype(results[c])]
    for i in list(order)[:limit]:
        row = results.loc[i]
        with run.tracker.start_run(run.experiment, parent=run.id, name=f"{run.name}-candidate-{i}",
                                   log_git=False, log_command=False, log_system=False,
                                   log_packages=False) as child:
            child.log_params(flat_params(row["params"]), group="model")
            child.log_metrics({c: float(row[c]) for c in scores if row[c] == row[c]})
