"""LightGBM: a training callback, and ``mltrail.lightgbm.autolog()`` that adds it to every
``lightgbm.train`` (the scikit-learn wrappers ``LGBMClassifier``... train through it).

The callback logs each iteration's evaluation results as ``<data>-<metric>``
(``valid_0-binary_logloss``) at step = iteration; at the end the booster is logged as
``model.txt`` (LightGBM's own format) with the feature importance (gain) as
``feature_importance.json``, and the best iteration when early stopping found one.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..store import Store
from ..tracking.run import Run
from .session import Settings, configure, flat_params, patch_boosting

SETTINGS = Settings()


def callback(run: Run | None = None) -> Any:
    """A LightGBM callback logging into ``run`` (else the active run)."""
    from .session import active_run

    def log_evaluation(env: Any) -> None:
        target = run or active_run()
        if target is None:
            raise RuntimeError("the mltrail LightGBM callback needs a run: start one, or pass run=")
        values = {f"{data}-{metric}": float(value) for data, metric, value, *_ in env.evaluation_result_list or []}
        if values:
            target.log_metrics(values, step=env.iteration)

    log_evaluation.order = 20  # type: ignore[attr-defined]  # after LightGBM's own evaluation callbacks
    return log_evaluation


def log_booster(run: Run, booster: Any) -> None:
    """The trained booster as ``model.txt``, its gain importance and best iteration."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.txt"
        booster.save_model(str(path))
        run.log_artifact(path)
    names = booster.feature_name()
    gains = booster.feature_importance(importance_type="gain")
    run.log_dict({name: float(gain) for name, gain in zip(names, gains)}, "feature_importance.json")
    if getattr(booster, "best_iteration", 0) > 0:
        run.log_metric("best_iteration", float(booster.best_iteration))


def autolog(store: Store | str | Path | None = None, experiment: str | None = None, *,
            log_models: bool = True, disable: bool = False) -> None:
    """Log every ``lightgbm.train`` (and so every ``LGBMClassifier.fit``...)."""
    import lightgbm
    import lightgbm.engine
    import lightgbm.sklearn

    if not configure(SETTINGS, store, experiment, disable, log_models=log_models):
        return
    patch_boosting(SETTINGS, "lightgbm", (lightgbm, lightgbm.engine, lightgbm.sklearn), lightgbm.sklearn,
                   lightgbm.sklearn.LGBMModel, _log_train)


def _log_train(run: Run, arguments: inspect.BoundArguments, train: Callable[[], Any]) -> Any:
    given = arguments.arguments
    run.log_params(flat_params(dict(given["params"] or {})), group="model")
    given["callbacks"] = [*(given["callbacks"] or []), callback(run)]
    booster = train()
    if SETTINGS.options["log_models"]:
        log_booster(run, booster)
    return booster
