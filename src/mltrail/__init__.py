"""mltrail: experiments, A/B tests, models and features as plain files in git.

>>> import mltrail
>>> store = mltrail.Store("mltrail_runs")                    # doctest: +SKIP
>>> with store.start_run(experiment="churn") as run:         # doctest: +SKIP
...     run.log_params({"C": 1.0}, group="model")
...     run.log_metric("f1", 0.81, step=1)
>>> store.search_runs(filter="metrics.f1 > 0.8")             # doctest: +SKIP
>>> mltrail.ab.sample_size_conversion(baseline=0.10, mde=0.01).control
14745

Everything a user needs is here and in :mod:`mltrail.ab`; the parts of a store are
``store.ab`` (:class:`AbRegistry`), ``store.registry`` (:class:`ModelRegistry`) and
``store.features`` (:class:`FeatureStore`).
"""

import importlib as _importlib
import typing as _typing

# What logging a run needs is imported now; every other part on first use (PEP 562
# ``__getattr__`` below), so that a training script's ``import mltrail`` loads neither
# statsmodels, scipy, DuckDB nor the server (benchmarks/bench_import.py measures it).
from .errors import (
    AlreadyExistsError,
    AmbiguousRunError,
    BusyError,
    FilterSyntaxError,
    InvalidInputError,
    InvalidKeyError,
    InvalidMetricValueError,
    MltrailError,
    NotFoundError,
    NotOnServerError,
    ParamChangedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RunStateError,
    RunStopRequested,
    SchemaVersionError,
    SkippedLinesWarning,
    StoreCorruptError,
    UntrustedTypesError,
    UpstreamError,
    UpstreamTimeoutError,
    WrongStateError,
)
from .fluent import (
    active_run,
    end_run,
    load_model,
    log_artifact,
    log_dataset,
    log_dict,
    log_figure,
    log_image,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_table,
    log_text,
    search_runs,
    set_tag,
    set_tags,
    start_run,
)
from .store import Store
from .tracking.run import Run

if _typing.TYPE_CHECKING:  # the lazily exported names, for type checkers and editors
    from . import ab, lightgbm, sklearn, xgboost
    from .ab.analysis import Results
    from .ab.experiment import AbRegistry, Experiment, Phase
    from .compaction.compact import CompactionResult
    from .features.store import FeatureStore
    from .integrations import autolog
    from .registry.models import ModelRegistry, ModelVersion
    from .storage.ab_events import ExperimentSpec

# name -> (module, attribute; None: the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "AbRegistry": (".ab.experiment", "AbRegistry"),
    "CompactionResult": (".compaction.compact", "CompactionResult"),
    "Experiment": (".ab.experiment", "Experiment"),
    "ExperimentSpec": (".storage.ab_events", "ExperimentSpec"),
    "FeatureStore": (".features.store", "FeatureStore"),
    "ModelRegistry": (".registry.models", "ModelRegistry"),
    "ModelVersion": (".registry.models", "ModelVersion"),
    "Phase": (".ab.experiment", "Phase"),
    "Results": (".ab.analysis", "Results"),
    "ab": (".ab", None),
    "autolog": (".integrations", "autolog"),
    "lightgbm": (".lightgbm", None),
    # not in ``__all__``: Lightning is an extra (``pip install 'mltrail[lightning]'``) and
    # importing it imports torch
    "lightning": (".lightning", None),
    "sklearn": (".sklearn", None),
    "xgboost": (".xgboost", None),
}

__version__ = "0.1.0"

__all__ = sorted([
    "AbRegistry",
    "AlreadyExistsError",
    "AmbiguousRunError",
    "BusyError",
    "CompactionResult",
    "Experiment",
    "ExperimentSpec",
    "FeatureStore",
    "FilterSyntaxError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidMetricValueError",
    "MltrailError",
    "ModelRegistry",
    "ModelVersion",
    "NotFoundError",
    "NotOnServerError",
    "ParamChangedError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Phase",
    "Results",
    "Run",
    "RunStateError",
    "RunStopRequested",
    "SchemaVersionError",
    "SkippedLinesWarning",
    "Store",
    "StoreCorruptError",
    "UntrustedTypesError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "WrongStateError",
    "__version__",
    "ab",
    "active_run",
    "autolog",
    "end_run",
    "lightgbm",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "search_runs",
    "set_tag",
    "set_tags",
    "sklearn",
    "start_run",
    "xgboost",
])


def __getattr__(name: str) -> object:
    """The parts a script that only logs runs does not need, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'mltrail' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    # import_module, not `from . import`: that would call this again
    module = _importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
