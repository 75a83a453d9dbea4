"""What every autologging integration shares: where its runs go, the run a training call
logs into, patching a library's functions so that it can be undone, and a guard so that
the fits a fit makes (a search's candidates, a pipeline's steps) are not logged twice.

A training call logs into the run already active (``with store.start_run()`` or
``mltrail.start_run()``), as MLflow does; without one it starts a run of its own in the
configured store and experiment and ends it when the call returns (FAILED if it raised).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import Store
from ..tracking.run import Run, innermost_run

_local = threading.local()


@dataclass
class Settings:
    """One integration's autologging: on or off, and where its runs go."""

    store: Store | str | Path | None = None
    experiment: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    patches: list[tuple[Any, str, Any]] = field(default_factory=list)  # (owner, name, original)

    def target(self) -> Store:
        from .. import fluent  # the fluent layer's default store, only when no store was given

        if self.store is None:
            return fluent.default_store()
        return self.store if not isinstance(self.store, (str, Path)) else Store(self.store)


def active_run() -> Run | None:
    """The run a training call logs into: the fluent API's current run, else the innermost
    ``with`` block's."""
    from .. import fluent

    return fluent.active_run() or innermost_run()


def patch(settings: Settings, owner: Any, name: str, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Replace ``owner.name`` by ``wrapper(original)``, remembering the original."""
    original = getattr(owner, name)
    if getattr(original, "__mltrail_patched__", False):
        return
    patched = functools.wraps(original)(wrapper(original))
    patched.__mltrail_patched__ = True  # type: ignore[attr-defined]  # (a mark on a function object)
    setattr(owner, name, patched)
    settings.patches.append((owner, name, original))


def configure(settings: Settings, store: Store | str | Path | None, experiment: str | None, disable: bool,
              **options: Any) -> bool:
    """Undo an integration's patches, then, unless ``disable``, record where its runs go
    (True: the caller patches again)."""
    unpatch(settings)
    if disable:
        return False
    settings.store, settings.experiment, settings.options = store, experiment, options
    return True


def unpatch(settings: Settings) -> None:
    """Put back every function ``settings`` replaced, newest first."""
    for owner, name, original in reversed(settings.patches):
        setattr(owner, name, original)
    settings.patches.clear()


@contextlib.contextmanager
def outermost() -> Iterator[bool]:
    """True for the outermost patched training call of this thread, False inside one."""
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    try:
        yield depth == 0
    finally:
        _local.depth = depth


@contextlib.contextmanager
def handing_over(library: str, run: Run) -> Iterator[None]:
    """Inside a library's scikit-learn wrapper (``LGBMClassifier.fit``), which is the
    outermost call: its own ``train``, nested, logs into the wrapper's run."""
    _local.handover = (library, run)
    try:
        yield
    finally:
        _local.handover = None


def handed_over(library: str) -> Run | None:
    """The run a library's wrapper handed to its nested ``train``, once."""
    handover = getattr(_local, "handover", None)
    if handover is None or handover[0] != library:
        return None
    _local.handover = None
    return handover[1]


def patch_boosting(settings: Settings, library: str, train_owners: tuple[Any, ...], wrapper_module: Any,
                   wrapper_base: type,
                   log_train: Callable[[Run, inspect.BoundArguments, Callable[[], Any]], Any]) -> None:
    """Patch a boosting library: its ``train`` wherever it is bound, and its scikit-learn
    wrappers' ``fit`` (which train through it). ``log_train(run, arguments, train)`` logs
    around one training: it adds its callback to the call's ``arguments``, calls
    ``train()`` and returns the trained model."""
    def wrap_train(original: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(original)

        def train(*args: Any, **kwargs: Any) -> Any:
            with outermost() as first:
                handed = None if first else handed_over(library)
                if not first and handed is None:
                    return original(*args, **kwargs)
                with contextlib.nullcontext(handed) if handed is not None else training_run(settings, library) as run:
                    arguments = signature.bind(*args, **kwargs)
                    arguments.apply_defaults()
                    return log_train(run, arguments, lambda: original(*arguments.args, **arguments.kwargs))
        return train

    for owner in train_owners:
        if hasattr(owner, "train"):
            patch(settings, owner, "train", wrap_train)
    for cls in wrappers(wrapper_module, wrapper_base):
        patch(settings, cls, "fit", wrapper_fit(settings, library))


def wrapper_fit(settings: Settings, library: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A patch for a library's scikit-learn wrapper ``fit``: the outermost call opens the
    run (so the label encoding it does first is not a run of its own) and hands it to
    the library's ``train``."""
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
            with outermost() as first:
                if not first:
                    return original(self, *args, **kwargs)
                with training_run(settings, name=type(self).__name__) as run, handing_over(library, run):
                    return original(self, *args, **kwargs)
        return fit
    return wrap


def wrappers(module: Any, base: type) -> list[type]:
    """The scikit-learn wrapper classes of a library that define their own ``fit``."""
    return [cls for cls in vars(module).values()
            if isinstance(cls, type) and issubclass(cls, base) and "fit" in vars(cls)]


@contextlib.contextmanager
def training_run(settings: Settings, name: str | None = None) -> Iterator[Run]:
    """The active run, or a new one in the configured store and experiment that ends
    with the block (FAILED with the error if it raised)."""
    run = active_run()
    if run is not None:
        yield run
        return
    store = settings.target()
    with store.start_run(settings.experiment or "Default", name=name) as started:
        yield started


def flat_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested hyperparameters as ``a.b`` keys with short text values (an estimator as its
    class name: its own params are logged beside it)."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{name}."))
        else:
            text = type(value).__name__ if hasattr(value, "get_params") else str(value)
            flat[name] = text if len(text) <= 500 else text[:497] + "..."
    return flat
