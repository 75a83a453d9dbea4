"""LightGBM: a training callback, and ``mltrail.lightgbm.autolog()`` that adds it to every
``lightgbm.train`` (the scikit-learn wrappers ``LGBMClassifier``... train through it).

The callback logs each iteration's evaluation results as ``<data>-<metric>``
(``valid_0-binary_logloss``) at step = iteration; at the end the booster is logged as
``model.txt`` (LightGBM's own format) with the feature importance (gain) as
``feature_importance.json``, and the best iteration when early stopping found one.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from ..store import Store
from ..tracking.run import Run
from .session import Settings, flat_params, handed_over, outermost, patch, training_run, unpatch, wrapper_fit, wrappers

SETTINGS = Settings()
LIBRARY = "lightgbm"


def _run(handed: Run | None) -> Any:
    """The run of a train: the one its wrapper handed over, else the active or a new one."""
    return contextlib.nullcontext(handed) if handed is not None else training_run(SETTINGS, name=LIBRARY)


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

    unpatch(SETTINGS)
    if disable:
        return
    SETTINGS.store, SETTINGS.experiment, SETTINGS.options = store, experiment, {"log_models": log_models}
    for owner in (lightgbm, lightgbm.engine, lightgbm.sklearn):
        if hasattr(owner, "train"):
            patch(SETTINGS, owner, "train", _logged_train)
    for cls in wrappers(lightgbm.sklearn, lightgbm.sklearn.LGBMModel):
        patch(SETTINGS, cls, "fit", wrapper_fit(SETTINGS, LIBRARY))


def _logged_train(original: Any) -> Any:
    def train(params: dict[str, Any], train_set: Any, *args: Any, **kwargs: Any) -> Any:
        with outermost() as first:
            handed = None if first else handed_over(LIBRARY)
            if not first and handed is None:
                return original(params, train_set, *args, **kwargs)
            with _run(handed) as run:
                run.log_params(flat_params(dict(params)), group="model")
                callbacks = list(kwargs.pop("callbacks", None) or [])
                callbacks.append(callback(run))
                booster = original(params, train_set, *args, callbacks=callbacks, **kwargs)
                if SETTINGS.options.get("log_models", True):
                    log_booster(run, booster)
                return booster
    return train
