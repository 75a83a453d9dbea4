"""``import mltrail.optuna``: Optuna studies as runs (each trial a child run of the study's
run), described in :mod:`mltrail.integrations.optuna`.

    from mltrail.optuna import callback, load_study

This module only names the integration's public calls; importing it does not import
Optuna (``load_study()`` does; the callback is called with Optuna's objects).
"""

from .integrations.optuna import MltrailCallback, callback, load_study

__all__ = ["MltrailCallback", "callback", "load_study"]
