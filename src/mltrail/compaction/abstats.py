"""The aggregation of an A/B experiment's compacted log into the sufficient statistics the
statistics use, on an engine: DuckDB, embedded (out of core past ``MLTRAIL_AB_MEMORY``),
by default; Apache Spark (:mod:`.abspark`) for logs beyond one machine. Both run the
same SQL, written here, over three views:

- ``unit_rows`` / ``phase_units``: the rows of the unit files, and one phase's units
  folded from them (the variant of the earliest exposure, crossover when served two);
- ``feedback_rows``: the feedback as logged;
- ``metric_rules``: each metric's name, whether it is binary (a unit's value is 1 if
  it had any positive feedback, else the sum of its values) and its conversion window
  (seconds after the unit's first exposure in which feedback counts; none before it);
  ``metric_inputs``: which feedback names make each metric's x (its value, a ratio's
  numerator) and y (a ratio's denominator).

For one phase they give, per variant, metric and day of first exposure, the count, sum
and sum of squares of the units' values (crossover units counted apart and left out),
joining the feedback logged while the phase ran.

With several unit files, DuckDB looks the small files' units up in the big one (a join
on the few), so that an analysis after a little more traffic does not fold every unit
again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from .ablog import FOLD_UNITS, AbLog, connect

ENGINES = ("duckdb", "spark")
# x is a unit's value (a ratio's numerator); y a ratio's denominator (0 for other metrics)
DAILY_COLUMNS = ["variant", "metric", "day", "n", "sum", "sum_sq", "sum_y", "sum_y_sq", "sum_xy"]
# Statistics already computed, by what they were computed from: the log's folder and
# generation, and each Parquet file's identity (a derived folder deleted and compacted
# again, by a dashboard's process or after a checkout, starts again at generation 1 with
# other files)
_cache: dict[tuple, PhaseStatistics] = {}
_CACHE_ENTRIES = 64


@dataclass(frozen=True)
class MetricRule:
    """How a metric's per-unit value is made from its feedback."""

    name: str
    binary: bool  # 1 if the unit had any positive feedback, else the sum of its values
    window: float | None = None  # seconds after the unit's first exposure that count (None: all)
    # the feedback names its value is made of: (name,), or a ratio's (numerator, denominator)
    inputs: tuple[str, ...] = ()

    @property
    def feedback(self) -> tuple[str, ...]:
        return self.inputs or (self.name,)


@dataclass
class PhaseStatistics:
    """What the statistics need of one phase."""

    daily: pd.DataFrame  # variant, metric, day (UTC), n, sum, sum_sq: units without crossover
    units: dict[str, int]  # units per variant, crossover units left out
    crossover_units: int


def phase_statistics(log: AbLog, phase: int, phase_starts: Sequence[float], metrics: Sequence[MetricRule],
                     engine: str = "duckdb") -> PhaseStatistics:
    """The sufficient statistics of ``phase`` (1-based; ``phase_starts``: when each phase
    began), on ``engine``, cached per compacted generation."""
    if engine not in ENGINES:
        from ..errors import InvalidInputError
        raise InvalidInputError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    key = (str(log.folder), log.generation, _identities(log), phase, tuple(phase_starts), tuple(metrics), engine)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    if engine == "spark":
        from .abspark import spark_statistics
        result = spark_statistics(log, phase, phase_starts, metrics)
    else:
        with connect(log.folder) as con:
            if not _duckdb_views(con, log, phase, metrics):
                result = statistics_of([], pd.DataFrame(columns=DAILY_COLUMNS))
            else:
                result = statistics_of(con.execute(COUNTS_SQL).fetchall(),
                                       con.execute(daily_sql(phase, phase_starts, metrics)).df())
    if len(_cache) >= _CACHE_ENTRIES:
        _cache.clear()
    _cache[key] = result
    return result


def _identities(log: AbLog) -> tuple[tuple[str, int, int, int] | tuple[str], ...]:
    """(path, inode, size, mtime) of each file the statistics read: a few ``stat`` calls."""
    found: list[tuple[str, int, int, int] | tuple[str]] = []
    for path in [*log.unit_files, *log.feedback_files, *log.attribute_files]:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            found.append((str(path),))
            continue
        found.append((str(path), info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(found)


def segment_statistics(log: AbLog, phase: int, phase_starts: Sequence[float], metrics: Sequence[MetricRule],
                       dimension: str, engine: str = "duckdb") -> dict[str, PhaseStatistics]:
    """:func:`phase_statistics` per value of ``dimension`` (an exposure attribute: the
    unit's first exposure's value; units without it are ``(none)``)."""
    if engine not in ENGINES:
        from ..errors import InvalidInputError
        raise InvalidInputError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "spark":
        from .abspark import spark_segments
        return spark_segments(log, phase, phase_starts, metrics, dimension)
    with connect(log.folder) as con:
        if not _duckdb_views(con, log, phase, metrics):
            return {}
        attributes = [str(path) for path in log.attribute_files if path.exists()]
        con.execute("CREATE TEMP VIEW attribute_rows AS " + (
            f"SELECT * FROM read_parquet({_list(attributes)})" if attributes else
            "SELECT NULL::BIGINT AS phase, NULL::VARCHAR AS unit, NULL::VARCHAR AS key, NULL::VARCHAR AS value, "
            "NULL::DOUBLE AS ts WHERE false"))
        con.execute(f"CREATE TEMP TABLE unit_segments AS {unit_segments_sql(phase, dimension)}")
        return split_segments(con.execute(SEGMENT_COUNTS_SQL).fetchall(),
                              con.execute(daily_sql(phase, phase_starts, metrics, segmented=True)).df())


def dimensions(log: AbLog) -> list[str]:
    """The attribute names the exposures carried (what results can be read by), sorted."""
    files = [str(path) for path in log.attribute_files if path.exists()]
    if not files:
        return []
    with connect(log.folder) as con:
        return [row[0] for row in con.execute(f"SELECT DISTINCT key FROM read_parquet({_list(files)}) ORDER BY key")
                .fetchall()]


def split_segments(counts: Sequence[Sequence[Any]], daily: pd.DataFrame) -> dict[str, PhaseStatistics]:
    """Segmented answers (``segment`` first in both) as PhaseStatistics per segment."""
    segments = sorted({str(row[0]) for row in counts})
    return {segment: statistics_of([row[1:] for row in counts if str(row[0]) == segment],
                                   daily[daily["segment"] == segment].drop(columns="segment"))
            for segment in segments}


def unit_values(log: AbLog, phase: int, phase_starts: Sequence[float], metric: MetricRule,
                engine: str = "duckdb") -> pd.DataFrame:
    """Each unit's value of ``metric`` in ``phase`` (crossover units left out): ``unit,
    variant, value`` (CUPED needs them one by one)."""
    if engine == "spark":
        from .abspark import spark_unit_values
        return spark_unit_values(log, phase, phase_starts, metric)
    with connect(log.folder) as con:
        if not _duckdb_views(con, log, phase, [metric]):
            return pd.DataFrame({"unit": [], "variant": [], "value": []})
        return con.execute(unit_values_sql(phase, phase_starts, [metric])).df()


# -- the SQL both engines run -----------------------------------------------------------

COUNTS_SQL = "SELECT variant, crossover, count(*) AS n FROM phase_units GROUP BY variant, crossover"


def phase_units_sql(phase: int) -> str:
    """One phase's units folded from ``unit_rows``."""
    return FOLD_UNITS.replace("FROM rows", f"FROM (SELECT * FROM unit_rows WHERE phase = {int(phase)}) r")


def feedback_sql(phase: int, phase_starts: Sequence[float], metrics: Sequence[MetricRule]) -> str:
    """Per unit and metric, the sums x (the metric's feedback, a ratio's numerator) and y
    (a ratio's denominator) of the feedback logged while ``phase`` ran (a time before
    phase 1 is phase 1's, as the phases' starts say) and, for a metric with a conversion
    window, within it after the unit's first exposure. The join with the units is made
    only when some metric has a window."""
    bounds = []
    if phase > 1:
        bounds.append(f"fb.ts >= {_number(phase_starts[phase - 1])}")
    if phase < len(phase_starts):
        bounds.append(f"fb.ts < {_number(phase_starts[phase])}")
    joins = "JOIN metric_inputs i ON i.feedback = fb.metric"
    if any(metric.window is not None for metric in metrics):
        joins += " JOIN metric_rules m ON m.metric = i.metric LEFT JOIN phase_units w ON w.unit = fb.unit"
        bounds.append("(m.window_seconds IS NULL OR (fb.ts >= w.first_ts AND fb.ts < w.first_ts + m.window_seconds))")
    where = f"WHERE {' AND '.join(bounds)}" if bounds else ""
    return f"""SELECT fb.unit, i.metric, sum(CASE WHEN i.role = 'x' THEN fb.value END) AS x,
                      sum(CASE WHEN i.role = 'y' THEN fb.value END) AS y
               FROM feedback_rows fb {joins} {where} GROUP BY fb.unit, i.metric"""


_VALUES = """CASE WHEN m.is_binary THEN CAST(coalesce(f.x, 0) > 0 AS DOUBLE) ELSE coalesce(f.x, 0) END AS x,
             coalesce(f.y, 0) AS y"""


def daily_sql(phase: int, phase_starts: Sequence[float], metrics: Sequence[MetricRule],
              segmented: bool = False) -> str:
    """The daily statistics; ``segmented``: also per value of the dimension that the
    ``unit_segments`` view gives each unit (``segment`` first)."""
    segment = "u.segment, " if segmented else ""
    return f"""
        WITH f AS ({feedback_sql(phase, phase_starts, metrics)}),
             v AS (SELECT {segment}u.variant, m.metric, floor(u.first_ts / 86400) * 86400 AS day, {_VALUES}
                   FROM {_SEGMENTED_UNITS if segmented else "phase_units"} u CROSS JOIN metric_rules m
                   LEFT JOIN f ON f.unit = u.unit AND f.metric = m.metric
                   WHERE NOT u.crossover)
        SELECT {segment.replace("u.", "")}variant, metric, day, count(*) AS n, sum(x) AS sum, sum(x * x) AS sum_sq,
               sum(y) AS sum_y, sum(y * y) AS sum_y_sq, sum(x * y) AS sum_xy
        FROM v GROUP BY {segment.replace("u.", "")}variant, metric, day"""


NO_SEGMENT = "(none)"  # the segment of a unit whose first exposure did not carry the dimension
_SEGMENTED_UNITS = f"""(SELECT pu.*, coalesce(s.segment, '{NO_SEGMENT}') AS segment
                       FROM phase_units pu LEFT JOIN unit_segments s ON s.unit = pu.unit)"""
SEGMENT_COUNTS_SQL = f"""SELECT segment, variant, crossover, count(*) AS n FROM {_SEGMENTED_UNITS} u
                         GROUP BY segment, variant, crossover"""


def unit_segments_sql(phase: int, dimension: str) -> str:
    """Each unit's value of ``dimension`` at its first exposure in ``phase`` that had it."""
    return (f"SELECT unit, min_by(value, ts) AS segment FROM attribute_rows "
            f"WHERE phase = {int(phase)} AND key = '{_text(dimension)}' GROUP BY unit")


def unit_values_sql(phase: int, phase_starts: Sequence[float], metrics: Sequence[MetricRule]) -> str:
    """Each unit's value of the one metric in ``metric_rules``."""
    return f"""
        WITH f AS ({feedback_sql(phase, phase_starts, metrics)})
        SELECT u.unit, u.variant, x AS value FROM (
            SELECT u.unit, u.variant, {_VALUES}
            FROM phase_units u CROSS JOIN metric_rules m LEFT JOIN f ON f.unit = u.unit AND f.metric = m.metric
            WHERE NOT u.crossover) u"""


def metric_rows(metrics: Sequence[MetricRule]) -> list[tuple[str, bool, float | None]]:
    return [(m.name, m.binary, m.window) for m in metrics]


def input_rows(metrics: Sequence[MetricRule]) -> list[tuple[str, str, str]]:
    """``metric_inputs``: (metric, feedback name, role x or y)."""
    return [(m.name, name, "xy"[i]) for m in metrics for i, name in enumerate(m.feedback)]


def statistics_of(counts: Sequence[Sequence[Any]], daily: pd.DataFrame) -> PhaseStatistics:
    """An engine's answers (``variant, crossover, n`` rows and the daily table) as
    PhaseStatistics: typed and ordered the same whichever engine gave them."""
    daily = daily[DAILY_COLUMNS].copy() if len(daily) else pd.DataFrame(columns=DAILY_COLUMNS)
    daily["day"] = pd.to_datetime(daily["day"].astype("float64"), unit="s", utc=True)
    daily = daily.astype({"variant": str, "metric": str, "n": "int64",  # (str: as Arrow gives it)
                          **{c: "float64" for c in DAILY_COLUMNS[4:]}})
    units: dict[str, int] = {}
    crossover = 0
    for variant, is_crossover, count in counts:
        if is_crossover:
            crossover += int(count)
        else:
            units[variant] = units.get(variant, 0) + int(count)
    return PhaseStatistics(daily.sort_values(["metric", "variant", "day"]).reset_index(drop=True), units, crossover)


# -- DuckDB ---------------------------------------------------------------------------------

def _duckdb_views(con: duckdb.DuckDBPyConnection, log: AbLog, phase: int, metrics: Sequence[MetricRule]) -> bool:
    """The three views on DuckDB; False when no unit was exposed yet."""
    files = [str(path) for path in log.unit_files if path.exists()]
    if not files:
        return False
    feedback = [str(path) for path in log.feedback_files if path.exists()]
    con.execute("CREATE TEMP VIEW feedback_rows AS " + (
        f"SELECT * FROM read_parquet({_list(feedback)})" if feedback else
        "SELECT NULL::VARCHAR AS unit, NULL::VARCHAR AS metric, NULL::DOUBLE AS value, NULL::DOUBLE AS ts WHERE false"))
    con.execute("CREATE TEMP TABLE metric_rules (metric VARCHAR, is_binary BOOLEAN, window_seconds DOUBLE)")
    con.execute("CREATE TEMP TABLE metric_inputs (metric VARCHAR, feedback VARCHAR, role VARCHAR)")
    if metrics:
        con.executemany("INSERT INTO metric_rules VALUES (?, ?, ?)", metric_rows(metrics))
        con.executemany("INSERT INTO metric_inputs VALUES (?, ?, ?)", input_rows(metrics))
    big = f"(SELECT * FROM read_parquet('{_text(files[0])}') WHERE phase = {int(phase)})"
    if len(files) == 1:
        con.execute(f"CREATE TEMP VIEW phase_units AS {big}")
        return True
    # the few units the small files hold, folded with their rows in the big one; the rest
    # of the big one as it is
    con.execute(f"CREATE TEMP TABLE recent AS SELECT * FROM read_parquet({_list(files[1:])}) WHERE phase = {int(phase)}")
    rows = f"FROM (SELECT * FROM recent UNION ALL SELECT b.* FROM {big} b SEMI JOIN recent r ON r.unit = b.unit)"
    con.execute(f"CREATE TEMP TABLE touched AS {FOLD_UNITS.replace('FROM rows', rows)}")
    con.execute(f"""CREATE TEMP VIEW phase_units AS
        SELECT b.* FROM {big} b ANTI JOIN touched t ON t.unit = b.unit UNION ALL SELECT * FROM touched""")
    return True


def _list(files: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{_text(f)}'" for f in files) + "]"


def _text(text: str) -> str:
    return text.replace("'", "''")


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else "0"
