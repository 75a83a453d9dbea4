"""Module-level conveniences on "the current run" of the default store, as in MLflow.

``mltrail.start_run()`` starts a run on ``mltrail.Store()`` (the root from
``$MLTRAIL_DIR`` or ``./mltrail_runs``) and makes it current; ``mltrail.log_metric``
and friends act on the current run; ``mltrail.end_run()`` or leaving the ``with``
block ends it. The Run object is the real API; these only delegate to it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import resolve_store_root
from .errors import RunStateError
from .store import Store
from .tracking.run import Run, run_end_hooks

if TYPE_CHECKING:  # pandas is imported by the calls that return a DataFrame, not by `import mltrail`
    import pandas as pd

_stack: list[Run] = []
# one Store per root and MLTRAIL_* settings: a Store reads some settings when it is made
# (the crash timeout, a server's token), so a changed setting makes a new one, never a
# Store that acts on the old
_stores: dict[tuple[Path, tuple[tuple[str, str], ...]], Store] = {}
_lock = threading.Lock()


def default_store() -> Store:
    """The store at the resolved default root (one Store object per root and settings)."""
    root = resolve_store_root()
    key = (root, tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("MLTRAIL_"))))
    with _lock:
        if key not in _stores:
            _stores[key] = Store(root)
        return _stores[key]


def start_run(experiment: str = "Default", **kwargs: Any) -> Run:
    """Start a run on the default store and make it the current run."""
    run = default_store().start_run(experiment, **kwargs)
    _stack.append(run)
    return run


def push_run(run: Run) -> None:
    """Make a run started elsewhere (``mltrail.mlflow.start_run``) the current run."""
    _stack.append(run)


def active_run() -> Run | None:
    return _stack[-1] if _stack else None


def _current() -> Run:
    if not _stack:
        raise RunStateError("no active run: call mltrail.start_run() first")
    return _stack[-1]


def forget_run(run: Run) -> None:
    if run in _stack:
        _stack.remove(run)


def end_run(status: str = "FINISHED") -> None:
    """End the current run (FINISHED unless told otherwise)."""
    _current().end(status)


def log_metric(key: str, value: float, step: int | None = None, *, best: bool = False) -> None:
    _current().log_metric(key, value, step, best=best)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _current().log_metrics(metrics, step)


def log_param(key: str, value: Any, group: str | None = None) -> None:
    _current().log_param(key, value, group)


def log_params(params: Mapping[str, Any], group: str | None = None) -> None:
    _current().log_params(params, group)


def set_tag(key: str, value: Any) -> None:
    _current().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _current().set_tags(tags)


def log_artifact(local_path: str, name: str | None = None) -> list[str]:
    return _current().log_artifact(local_path, name)


def log_dataset(path: str, name: str | None = None, context: str | None = None) -> None:
    _current().log_dataset(path, name, context)


def log_dict(obj: Any, name: str) -> str:
    return _current().log_dict(obj, name)


def log_text(text: str, name: str) -> str:
    return _current().log_text(text, name)


def log_table(frame: pd.DataFrame, name: str) -> str:
    return _current().log_table(frame, name)


def log_image(image: Any, name: str) -> str:
    return _current().log_image(image, name)


def log_figure(figure: Any, name: str) -> str:
    return _current().log_figure(figure, name)


def search_runs(experiment: str | Sequence[str] | None = None, filter: str | None = None,
                order_by: Sequence[str] | str | None = None,
                max_results: int | None = None) -> pd.DataFrame:
    """Search the default store's runs; see :meth:`Store.search_runs`."""
    return default_store().search_runs(experiment, filter, order_by, max_results)


def load_model(uri: str, store: Store | None = None) -> Any:
    """Unpickle the model a URI names (``models:/churn@production``, ``models:/churn/3``,
    ``runs:/RUN/model.pkl``), its hash verified first, from ``store`` or the default
    store. Unpickling runs code from the file: load only from a store you trust."""
    return (store or default_store()).load_model(uri)


run_end_hooks.append(forget_run)  # an ended run is no longer "the current run"
