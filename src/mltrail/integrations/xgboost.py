"""XGBoost: a training callback, and ``mltrail.xgboost.autolog()`` that adds it to every
``xgboost.train`` (the scikit-learn wrappers ``XGBClassifier``... train through it).

The callback logs each round's evaluation metrics as ``<data>-<metric>`` (``validation_0-logloss``,
``eval-rmse``) at step = round (under ``xgboost.cv``, the folds' mean, and their standard
deviation as ``<data>-<metric>-std``, and no model), marks the best round when early stopping names one, and
at the end logs the booster as ``model.json`` (XGBoost's own format) and the feature
importance (gain; a linear booster's weights) as ``feature_importance.json``. ``autolog`` also logs the training
params (group ``model``) and the number of rounds.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..store import Store
from ..tracking.run import Run
from .session import Settings, configure, flat_params, patch_boosting

SETTINGS = Settings()


def callback(run: Run | None = None, log_model: bool = True) -> Any:
    """An ``xgboost.callback.TrainingCallback`` logging into ``run`` (else the active run)."""
    import xgboost

    from .session import active_run

    class MltrailCallback(xgboost.callback.TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.run = run

        def before_training(self, model: Any) -> Any:
            self.run = self.run or active_run()
            if self.run is None:
                raise RuntimeError("the mltrail XGBoost callback needs a run: start one, or pass run=")
            return model

        def after_iteration(self, model: Any, epoch: int,
                            evals_log: dict[str, dict[str, list[float] | list[tuple[float, float]]]]) -> bool:
            metrics: dict[str, float] = {}
            for data, by_metric in evals_log.items():
                for metric, values in by_metric.items():
                    if not values:
                        continue
                    last = values[-1]
                    if isinstance(last, tuple):  # xgboost.cv: (mean, std) over the folds
                        metrics[f"{data}-{metric}"], metrics[f"{data}-{metric}-std"] = map(float, last)
                    else:
                        metrics[f"{data}-{metric}"] = float(last)
            self._run().log_metrics(metrics, step=epoch)
            return False  # never asks training to stop

        def _run(self) -> Run:
            assert self.run is not None  # (before_training found one, or raised)
            return self.run

        def after_training(self, model: Any) -> Any:
            if not isinstance(model, xgboost.Booster):  # xgboost.cv's folds: no one model to log
                return model
            run = self._run()
            best = getattr(model, "best_iteration", None)
            attributes = model.attributes()
            if best is not None and "best_iteration" in attributes:
                run.log_metric("best_iteration", float(best))
            if log_model:
                with tempfile.TemporaryDirectory() as folder:
                    path = Path(folder) / "model.json"
                    model.save_model(str(path))
                    run.log_artifact(path)
                importance = model.get_score(importance_type="weight" if _is_linear(model) else "gain")
                if importance:
                    run.log_dict({k: [float(x) for x in v] if isinstance(v, list) else float(v)
                                  for k, v in importance.items()}, "feature_importance.json")
            return model

    return MltrailCallback()


def _is_linear(booster: Any) -> bool:
    """Whether ``booster`` is a linear one, which defines only its weights as importance
    (a list a feature with several classes), no gain."""
    config = json.loads(booster.save_config())
    return bool(config["learner"]["gradient_booster"]["name"] == "gblinear")


def autolog(store: Store | str | Path | None = None, experiment: str | None = None, *,
            log_models: bool = True, disable: bool = False) -> None:
    """Log every ``xgboost.train`` (and so every ``XGBClassifier.fit``...)."""
    import xgboost
    import xgboost.sklearn
    import xgboost.training

    if not configure(SETTINGS, store, experiment, disable, log_models=log_models):
        return
    patch_boosting(SETTINGS, "xgboost", (xgboost, xgboost.training, xgboost.sklearn), xgboost.sklearn,
                   xgboost.sklearn.XGBModel, _log_train)


def _log_train(run: Run, arguments: inspect.BoundArguments, train: Callable[[], Any]) -> Any:
    given = arguments.arguments
    run.log_params({**flat_params(dict(given["params"] or {})), "num_boost_round": given["num_boost_round"]},
                   group="model")
    given["callbacks"] = [*(given["callbacks"] or []), callback(run, log_model=SETTINGS.options["log_models"])]
    return train()
