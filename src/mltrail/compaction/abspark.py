"""The A/B aggregation on Apache Spark, for logs beyond one machine: the same SQL as on
DuckDB (:mod:`.abstats`) over the same Parquet files, giving the same sufficient
statistics (counts exactly, sums to rounding).

``exp.results(engine="spark")`` (or ``mltrail ab results KEY --engine spark``) runs it on
the active Spark session, or on a new local one (``local[*]``; under ``spark-submit``,
the session its configuration describes). Spark reads the files by their paths, so on a
cluster the store must be where every executor sees it (a shared file system).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .ablog import AbLog
from .abstats import (
    COUNTS_SQL,
    DAILY_COLUMNS,
    SEGMENT_COUNTS_SQL,
    MetricRule,
    PhaseStatistics,
    daily_sql,
    input_rows,
    metric_rows,
    phase_units_sql,
    split_segments,
    statistics_of,
    unit_segments_sql,
    unit_values_sql,
)


def session() -> Any:
    """The active Spark session, else a local one (UTC, no web UI)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    return (SparkSession.builder.appName("mltrail-ab")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "16")
            .config("spark.ui.enabled", "false")
            .getOrCreate())


def spark_statistics(log: AbLog, phase: int, phase_starts: Sequence[float],
                     metrics: Sequence[MetricRule]) -> PhaseStatistics:
    """:func:`.abstats.phase_statistics` on Spark."""
    import pandas as pd

    spark = session()
    if not _views(spark, log, phase, metrics):
        return statistics_of([], pd.DataFrame(columns=DAILY_COLUMNS))
    counts = [tuple(row) for row in spark.sql(COUNTS_SQL).collect()]
    return statistics_of(counts, _frame(spark.sql(daily_sql(phase, phase_starts, metrics))))


def spark_segments(log: AbLog, phase: int, phase_starts: Sequence[float], metrics: Sequence[MetricRule],
                   dimension: str) -> dict[str, PhaseStatistics]:
    """:func:`.abstats.segment_statistics` on Spark."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    spark = session()
    if not _views(spark, log, phase, metrics):
        return {}
    files = [str(path) for path in log.attribute_files if path.exists()]
    schema = StructType([StructField("phase", LongType()), StructField("unit", StringType()),
                         StructField("key", StringType()), StructField("value", StringType()),
                         StructField("ts", DoubleType())])
    (spark.read.parquet(*files) if files else spark.createDataFrame([], schema)).createOrReplaceTempView("attribute_rows")
    spark.sql(unit_segments_sql(phase, dimension)).createOrReplaceTempView("unit_segments")
    counts = [tuple(row) for row in spark.sql(SEGMENT_COUNTS_SQL).collect()]
    return split_segments(counts, _frame(spark.sql(daily_sql(phase, phase_starts, metrics, segmented=True))))


def spark_unit_values(log: AbLog, phase: int, phase_starts: Sequence[float], metric: MetricRule) -> Any:
    import pandas as pd

    spark = session()
    if not _views(spark, log, phase, [metric]):
        return pd.DataFrame({"unit": [], "variant": [], "value": []})
    return _frame(spark.sql(unit_values_sql(phase, phase_starts, [metric])))


def _frame(answer: Any) -> Any:
    """A Spark answer as a pandas DataFrame, through its rows (toPandas warns on pandas 3,
    which PySpark does not support yet; the answers here are small)."""
    import pandas as pd

    return pd.DataFrame([tuple(row) for row in answer.collect()], columns=answer.columns)


def _views(spark: Any, log: AbLog, phase: int, metrics: Sequence[MetricRule]) -> bool:
    """``unit_rows``, ``phase_units``, ``feedback_rows`` and ``metric_rules`` as Spark
    temporary views; False when no unit was exposed yet."""
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

    units = [str(path) for path in log.unit_files if path.exists()]
    if not units:
        return False
    spark.read.parquet(*units).createOrReplaceTempView("unit_rows")
    spark.sql(phase_units_sql(phase)).createOrReplaceTempView("phase_units")
    feedback = [str(path) for path in log.feedback_files if path.exists()]
    feedback_schema = StructType([StructField("unit", StringType()), StructField("metric", StringType()),
                                  StructField("value", DoubleType()), StructField("ts", DoubleType())])
    (spark.read.parquet(*feedback) if feedback else spark.createDataFrame([], feedback_schema)
     ).createOrReplaceTempView("feedback_rows")
    rules = StructType([StructField("metric", StringType()), StructField("is_binary", BooleanType()),
                        StructField("window_seconds", DoubleType())])
    spark.createDataFrame(metric_rows(metrics), rules).createOrReplaceTempView("metric_rules")
    inputs = StructType([StructField(name, StringType()) for name in ("metric", "feedback", "role")])
    spark.createDataFrame(input_rows(metrics), inputs).createOrReplaceTempView("metric_inputs")
    return True
