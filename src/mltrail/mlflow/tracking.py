"""``mlflow.tracking``, as MLflow's: where scripts find ``MlflowClient``
(``mlflow.tracking.MlflowClient()``)."""

from __future__ import annotations

from . import MlflowClient

__all__ = ["MlflowClient"]
