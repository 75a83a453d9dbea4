"""The ``import mlflow.sklearn`` trap: warn when the real MLflow package is imported in a
process that uses ``mltrail.mlflow``.

A script changed to ``import mltrail.mlflow as mlflow`` that still has ``import
mlflow.sklearn`` rebinds the name ``mlflow`` to real MLflow: every ``mlflow.log_*`` after
it goes to MLflow's store, and nothing says so. :func:`watch` (called when
``mltrail.mlflow`` is imported, never by ``import mltrail``) says so, once a process, with
an :class:`MlflowShadowWarning`: at once if MLflow is already imported, else when it is,
through a ``sys.meta_path`` finder that looks only at the top-level name ``mlflow`` and
warns after MLflow's own module ran. The finder never changes what is imported nor how:
the import of MLflow cannot fail because of it.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections.abc import Sequence
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

__all__ = ["MlflowShadowWarning", "watch"]

logger = logging.getLogger(__name__)

MESSAGE = (
    "the real MLflow package (mlflow) was imported in a process that uses mltrail.mlflow: where the name "
    "`mlflow` now means MLflow (`import mlflow.sklearn` rebinds it), values logged through `mlflow.*` go to "
    "MLflow's store, not mltrail. With MLflow installed, keep `import mlflow` unchanged and set "
    "MLFLOW_TRACKING_URI=mltrail:<folder> instead: MLflow's own client then writes the mltrail store.")


class MlflowShadowWarning(UserWarning):
    """The real ``mlflow`` package was imported beside ``mltrail.mlflow`` (see :mod:`.shadow`)."""


class _Once:
    """Whether this process was warned (a warning a process, whichever way it came)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False

    def done(self) -> bool:
        return self._done

    def claim(self) -> bool:
        with self._lock:
            first, self._done = not self._done, True
            return first


_once = _Once()


def watch() -> None:
    """Warn now if MLflow is imported already, else install the finder (once)."""
    if sys.modules.get("mlflow") is not None:
        _warn()
    elif not any(isinstance(finder, _MlflowWatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MlflowWatcher())


def _warn() -> None:
    if not _once.claim():
        return
    try:
        warnings.warn(MESSAGE, MlflowShadowWarning, stacklevel=_importer_level())
    except MlflowShadowWarning:
        # warnings are errors here (python -W error, pytest's filterwarnings): an import
        # must not fail for it, so the message goes to the log instead
        logger.warning(MESSAGE)


def _importer_level() -> int:
    """The stack level, for ``warnings.warn`` in :func:`_warn`, of the code that imported:
    the user's ``import`` line, past this module's frames, importlib's and the shim's body."""
    level = 1  # _warn itself
    found: FrameType | None = sys._getframe(1)
    while found is not None and _not_the_importer(found.f_code.co_filename):
        found = found.f_back
        if found is not None and not _skipped_by_warnings(found.f_code.co_filename):
            level += 1
    return level


def _skipped_by_warnings(filename: str) -> bool:
    """A frame of importlib's bootstrap, which ``warnings.warn`` does not count in a stack level."""
    return "importlib" in filename and "_bootstrap" in filename


_SHIM = str(Path(__file__).with_name("__init__.py"))  # when MLflow was imported before the shim


def _not_the_importer(filename: str) -> bool:
    return (filename in (__file__, _SHIM) or filename.startswith("<frozen importlib")
            or Path(filename).parts[-2:] == ("importlib", "__init__.py"))


class _MlflowWatcher(MetaPathFinder):
    """Finds nothing itself: for ``mlflow``, it asks the finders after it and wraps the
    loader of the spec they found so that the warning follows MLflow's import."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != "mlflow" or _once.done():
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if isinstance(finder, _MlflowWatcher) or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _WarnAfterLoading(spec.loader)
                return spec
        return None  # MLflow is not installed: an ImportError as usual, no warning


class _WarnAfterLoading(Loader):
    """MLflow's loader, once: it runs MLflow's module, puts itself back out of the way
    (``mlflow.__loader__`` and ``__spec__.loader`` are MLflow's own again), then warns."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self._loader.exec_module(module)
        finally:
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader
        _warn()

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package...: MLflow's loader's
        return getattr(self._loader, name)
