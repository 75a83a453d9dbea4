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

from . import ab, lightgbm, sklearn, xgboost  # modules of their own: `import mltrail.sklearn` works
from .ab.analysis import Results
from .ab.experiment import AbRegistry, Experiment, Phase
from .compaction.compact import CompactionResult
from .errors import (
    AlreadyExistsError,
    BusyError,
    FilterSyntaxError,
    InvalidInputError,
    InvalidKeyError,
    InvalidMetricValueError,
    MltrailError,
    NotFoundError,
    ParamChangedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RunStateError,
    RunStopRequested,
    SchemaVersionError,
    SkippedLinesWarning,
    StoreCorruptError,
    UpstreamError,
    UpstreamTimeoutError,
    WrongStateError,
)
from .features.store import FeatureStore
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
from .integrations import autolog
from .registry.models import ModelRegistry, ModelVersion
from .storage.ab_events import ExperimentSpec
from .store import Store
from .tracking.run import Run

__version__ = "0.1.0"

__all__ = sorted([
    "AbRegistry",
    "AlreadyExistsError",
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
    """``mltrail.lightning`` imports Lightning (and torch) only when first used; it is not
    in ``__all__``, since Lightning is an extra (``pip install 'mltrail[lightning]'``)."""
    if name == "lightning":  # import_module, not `from . import`: that would call this again
        import importlib

        return importlib.import_module(f"{__name__}.lightning")
    raise AttributeError(f"module 'mltrail' has no attribute {name!r}")
