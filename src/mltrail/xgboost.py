"""``import mltrail.xgboost``, as MLflow users write ``import mlflow.xgboost``: XGBoost's
autologging and training callback, described in :mod:`mltrail.integrations.xgboost`.

    from mltrail.xgboost import autolog, callback

This module only names the integration's public calls; importing it does not import
XGBoost (``autolog()`` and ``callback()`` do).
"""

from .integrations.xgboost import autolog, callback

__all__ = ["autolog", "callback"]
