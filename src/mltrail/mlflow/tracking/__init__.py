"""``mlflow.tracking``, as MLflow's: where scripts find ``MlflowClient``
(``mlflow.tracking.MlflowClient()``) and the fluent calls (``mlflow.tracking.fluent``)."""

from __future__ import annotations

from .. import MlflowClient
from . import fluent

__all__ = ["MlflowClient", "fluent"]
