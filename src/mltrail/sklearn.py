"""``import mltrail.sklearn``, as MLflow users write ``import mlflow.sklearn``: scikit-learn
autologging, described in :mod:`mltrail.integrations.sklearn`.

    import mltrail.sklearn
    mltrail.sklearn.autolog()

This module only names the integration's public calls; importing it does not import
scikit-learn (``autolog()`` does).
"""

from .integrations.sklearn import autolog

__all__ = ["autolog"]
