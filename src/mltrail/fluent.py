"""Module-level conveniences on "the current run" of the default store, as in MLflow.

``mltrail.start_run()`` starts a run on ``mltrail.Store()`` (the root from
``$MLTRAIL_DIR`` or ``./mltrail_runs``) and makes it current; ``mltrail.log_metric``
and friends act on the current run; ``mltrail.end_run()`` or leaving the ``with``
block ends it. The Run object is the real API; these only delegate to it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate

from .config import resolve_store_root
from .contract import P, R, function_like
from .errors import RunStateError
from .store import Store
from .tracking.run import Run, run_end_hooks
from .tracking.tracker import Tracker

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


@function_like(Tracker.start_run)
def start_run(*args: Any, **options: Any) -> Run:
    """Start a run on the default store and make it the current run (the options:
    :meth:`mltrail.tracking.tracker.Tracker.start_run`)."""
    run = default_store().start_run(*args, **options)
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


def _on_current_run(method: Callable[Concatenate[Run, P], R]) -> Callable[P, R]:
    """``method`` of :class:`Run` as a module-level function acting on the current run,
    with the method's own parameters and docstring (one declaration: see
    :func:`mltrail.contract.function_like`)."""
    @function_like(method)
    def call(*args: Any, **kwargs: Any) -> R:
        return method(_current(), *args, **kwargs)

    call.__name__ = call.__qualname__ = method.__name__
    call.__doc__ = f"On the current run: {method.__doc__ or ''}"
    return call


log_metric = _on_current_run(Run.log_metric)
log_metrics = _on_current_run(Run.log_metrics)
log_param = _on_current_run(Run.log_param)
log_params = _on_current_run(Run.log_params)
set_tag = _on_current_run(Run.set_tag)
set_tags = _on_current_run(Run.set_tags)
log_artifact = _on_current_run(Run.log_artifact)
log_dataset = _on_current_run(Run.log_dataset)
log_dict = _on_current_run(Run.log_dict)
log_text = _on_current_run(Run.log_text)
log_table = _on_current_run(Run.log_table)
log_image = _on_current_run(Run.log_image)
log_figure = _on_current_run(Run.log_figure)


@function_like(Store.search_runs)
def search_runs(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """Search the default store's runs (the options: :meth:`mltrail.Store.search_runs`)."""
    return default_store().search_runs(*args, **kwargs)


def load_model(uri: str, store: Store | None = None) -> Any:
    """The model a URI names (``models:/churn@production``, ``models:/churn/3``,
    ``runs:/RUN/model.pkl``, an MLflow model's folder ``runs:/RUN/model``), its hash verified
    first, from ``store`` or the default store. Unpickling runs code from the file: load
    only from a store you trust."""
    return (store or default_store()).load_model(uri)


run_end_hooks.append(forget_run)  # an ended run is no longer "the current run"
