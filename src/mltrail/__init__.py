"""mltrail: experiment tracking as plain files in git, append-only events read through Parquet.

>>> import mltrail
>>> store = mltrail.Store("mltrail_runs")                    # doctest: +SKIP
>>> with store.start_run(experiment="churn") as run:         # doctest: +SKIP
...     run.log_params({"C": 1.0}, group="model")
...     run.log_metric("f1", 0.81, step=1)
>>> store.search_runs(filter="metrics.f1 > 0.8")             # doctest: +SKIP
"""

from .compaction.compact import CompactionResult
from .errors import (
    FilterSyntaxError,
    InvalidInputError,
    InvalidKeyError,
    InvalidMetricValueError,
    MltrailError,
    NotFoundError,
    ParamChangedError,
    RunStateError,
    SchemaVersionError,
    SkippedLinesWarning,
    StoreCorruptError,
)
from .tracking.fluent import (
    active_run,
    end_run,
    log_artifact,
    log_dataset,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    search_runs,
    set_tag,
    set_tags,
    start_run,
)
from .registry.uris import load_model
from .tracking.run import Run
from .tracking.store import Store

__version__ = "0.1.0"

__all__ = sorted([
    "CompactionResult",
    "FilterSyntaxError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidMetricValueError",
    "MltrailError",
    "NotFoundError",
    "ParamChangedError",
    "Run",
    "RunStateError",
    "SchemaVersionError",
    "SkippedLinesWarning",
    "Store",
    "StoreCorruptError",
    "__version__",
    "active_run",
    "end_run",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "load_model",
    "search_runs",
    "set_tag",
    "set_tags",
    "start_run",
])
