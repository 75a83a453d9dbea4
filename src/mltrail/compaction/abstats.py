"""The aggregation of an A/B experiment's compacted log into the sufficient statistics the
statistics use, on an engine: DuckDB, embedded (out of core past ``MLTRAIL_AB_MEMORY``).

For one phase: its units (their exposure rows folded: the variant of the earliest
exposure, crossover when served two), the feedback logged while the phase ran, joined
per unit and metric, and then per variant, metric and day of first exposure the count,
sum and sum of squares of the units' values (a binary metric's value is 1 for a unit
with any positive feedback). Crossover units are counted apart and left out.

Unit files (see :mod:`.ablog`) are folded here when there are several: the small ones'
units are looked up in the big one (a join on the few), so that an analysis after a
little more traffic does not fold every unit again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from .ablog import FOLD_UNITS, AbLog, connect

_cache: dict[tuple, PhaseStatistics] = {}
_CACHE_ENTRIES = 64


@dataclass(frozen=True)
class MetricRule:
    """How a metric's per-unit value is made from its feedback."""

    name: str
    binary: bool  # 1 if the unit had any positive feedback, else the sum of its values


@dataclass
class PhaseStatistics:
    """What the statistics need of one phase."""

    daily: pd.DataFrame  # variant, metric, day (UTC), n, sum, sum_sq: units without crossover
    units: dict[str, int]  # units per variant, crossover units left out
    crossover_units: int


def phase_statistics(log: AbLog, phase: int, phase_starts: Sequence[float],
                     metrics: Sequence[MetricRule]) -> PhaseStatistics:
    """The sufficient statistics of ``phase`` (1-based; ``phase_starts``: when each phase
    began), cached per compacted generation."""
    key = (str(log.folder), log.generation, phase, tuple(phase_starts), tuple(metrics))
    cached = _cache.get(key)
    if cached is not None:
        return cached
    with connect(log.folder) as con:
        if not _units_view(con, log, phase):
            result = PhaseStatistics(pd.DataFrame(columns=["variant", "metric", "day", "n", "sum", "sum_sq"]), {}, 0)
        else:
            counts = con.execute("SELECT variant, crossover, count(*) FROM phase_units GROUP BY ALL").fetchall()
            daily = con.execute(_daily_sql(log, phase, phase_starts, metrics)).df() if metrics else pd.DataFrame(
                columns=["variant", "metric", "day", "n", "sum", "sum_sq"])
            daily["day"] = pd.to_datetime(daily["day"].astype("float64"), unit="s", utc=True)
            daily = daily.astype({"n": "int64", "sum": "float64", "sum_sq": "float64"})
            units: dict[str, int] = {}
            for variant, crossover, count in counts:
                if not crossover:
                    units[variant] = units.get(variant, 0) + int(count)
            result = PhaseStatistics(daily.sort_values(["metric", "variant", "day"]).reset_index(drop=True), units,
                                     sum(int(count) for _, crossover, count in counts if crossover))
    if len(_cache) >= _CACHE_ENTRIES:
        _cache.clear()
    _cache[key] = result
    return result


def unit_values(log: AbLog, phase: int, phase_starts: Sequence[float], metric: MetricRule) -> pd.DataFrame:
    """Each unit's value of ``metric`` in ``phase`` (crossover units left out): ``unit,
    variant, value`` (CUPED needs them one by one)."""
    with connect(log.folder) as con:
        if not _units_view(con, log, phase):
            return pd.DataFrame({"unit": [], "variant": [], "value": []})
        return con.execute(f"""
            SELECT u.unit, u.variant, {_value(metric)} AS value
            FROM phase_units u LEFT JOIN ({_feedback_sql(log, phase, phase_starts, [metric])}) f
              ON f.unit = u.unit AND f.metric = '{_text(metric.name)}'
            WHERE NOT u.crossover""").df()


def _units_view(con: duckdb.DuckDBPyConnection, log: AbLog, phase: int) -> bool:
    """``phase_units``: the phase's units folded from every unit file; False when none."""
    files = [str(path) for path in log.unit_files if path.exists()]
    if not files:
        return False
    big = f"(SELECT * FROM read_parquet('{_text(files[0])}') WHERE phase = {int(phase)})"
    if len(files) == 1:
        con.execute(f"CREATE TEMP VIEW phase_units AS {big}")
        return True
    small = "read_parquet([" + ", ".join(f"'{_text(f)}'" for f in files[1:]) + f"]) WHERE phase = {int(phase)}"
    # the few units the small files hold, folded with their rows in the big one; the rest
    # of the big one as it is
    con.execute(f"CREATE TEMP TABLE recent AS SELECT * FROM {small}")
    rows = f"FROM (SELECT * FROM recent UNION ALL SELECT b.* FROM {big} b SEMI JOIN recent r ON r.unit = b.unit)"
    con.execute(f"CREATE TEMP TABLE touched AS {FOLD_UNITS.replace('FROM rows', rows)}")
    con.execute(f"""CREATE TEMP VIEW phase_units AS
        SELECT b.* FROM {big} b ANTI JOIN touched t ON t.unit = b.unit UNION ALL SELECT * FROM touched""")
    return True


def _feedback_sql(log: AbLog, phase: int, phase_starts: Sequence[float], metrics: Sequence[MetricRule]) -> str:
    """Per unit and metric, the sum of the feedback logged while ``phase`` ran (a time
    before phase 1 is phase 1's, as the phases' starts say)."""
    files = [str(path) for path in log.feedback_files if path.exists()]
    if not files:
        return "SELECT NULL::VARCHAR AS unit, NULL::VARCHAR AS metric, NULL::DOUBLE AS total WHERE false"
    bounds = []
    if phase > 1:
        bounds.append(f"ts >= {_number(phase_starts[phase - 1])}")
    if phase < len(phase_starts):
        bounds.append(f"ts < {_number(phase_starts[phase])}")
    names = ", ".join(f"'{_text(m.name)}'" for m in metrics)
    where = " AND ".join([f"metric IN ({names})", *bounds])
    listed = "[" + ", ".join(f"'{_text(f)}'" for f in files) + "]"
    return f"SELECT unit, metric, sum(value) AS total FROM read_parquet({listed}) WHERE {where} GROUP BY unit, metric"


def _daily_sql(log: AbLog, phase: int, phase_starts: Sequence[float], metrics: Sequence[MetricRule]) -> str:
    rules = ", ".join(f"('{_text(m.name)}', {str(m.binary).lower()})" for m in metrics)
    return f"""
        WITH f AS ({_feedback_sql(log, phase, phase_starts, metrics)}),
             m(metric, is_binary) AS (VALUES {rules}),
             v AS (SELECT u.variant, m.metric, floor(u.first_ts / 86400) * 86400 AS day,
                          CASE WHEN m.is_binary THEN CAST(coalesce(f.total, 0) > 0 AS DOUBLE)
                               ELSE coalesce(f.total, 0) END AS value
                   FROM phase_units u CROSS JOIN m LEFT JOIN f ON f.unit = u.unit AND f.metric = m.metric
                   WHERE NOT u.crossover)
        SELECT variant, metric, day, count(*) AS n, sum(value) AS sum, sum(value * value) AS sum_sq
        FROM v GROUP BY variant, metric, day"""


def _value(metric: MetricRule) -> str:
    total = "coalesce(f.total, 0)"
    return f"CAST({total} > 0 AS DOUBLE)" if metric.binary else total


def _text(text: str) -> str:
    return text.replace("'", "''")


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else "0"
