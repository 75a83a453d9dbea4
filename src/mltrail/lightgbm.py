"""``import mltrail.lightgbm``, as MLflow users write ``import mlflow.lightgbm``: LightGBM's
autologging and training callback, described in :mod:`mltrail.integrations.lightgbm`.

    from mltrail.lightgbm import autolog, callback

This module only names the integration's public calls; importing it does not import
LightGBM (``autolog()`` does).
"""

from .integrations.lightgbm import autolog, callback

__all__ = ["autolog", "callback"]
