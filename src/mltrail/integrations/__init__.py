"""Autologging: one call and the libraries users train with log into mltrail, as
MLflow's ``autolog`` does.

``mltrail.autolog()`` turns on every integration whose library is installed:
:mod:`~mltrail.integrations.sklearn` (every ``fit``; a search's candidates as child
runs), :mod:`~mltrail.integrations.xgboost` and :mod:`~mltrail.integrations.lightgbm`
(their ``train``, which their scikit-learn wrappers use too). PyTorch Lightning takes a
logger: ``Trainer(logger=mltrail.lightning.MltrailLogger())`` (:mod:`.lightning`; it is
imported on first use, since importing Lightning imports torch).

A training call logs into the active run, or into a run of its own; a library not
installed is passed over; ``disable=True`` puts every library back as it was.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..store import Store
from . import lightgbm, sklearn, xgboost

INTEGRATIONS = {"sklearn": sklearn, "xgboost": xgboost, "lightgbm": lightgbm}


def autolog(store: Store | str | Path | None = None, experiment: str | None = None, *,
            log_models: bool = True, disable: bool = False, exclude: tuple[str, ...] = ()) -> list[str]:
    """Turn autologging on (or off) for every installed library but those in
    ``exclude``; the names of the libraries it is now on for."""
    unknown = set(exclude) - set(INTEGRATIONS)
    if unknown:
        from ..errors import InvalidInputError
        raise InvalidInputError(f"autolog knows {', '.join(INTEGRATIONS)}, not {', '.join(sorted(unknown))}")
    enabled = []
    for name, module in INTEGRATIONS.items():
        if name in exclude or importlib.util.find_spec(name) is None:
            continue
        module.autolog(store, experiment, log_models=log_models, disable=disable)
        if not disable:
            enabled.append(name)
    return enabled
