"""Many runs' curves drawn as a few: per group of runs, the mean at each x with a band.

Aim's and W&B's way to read a sweep of seeds or folds: runs grouped by a param or a tag
(the caller's labels), each group one line (the mean over its runs) and one band (their
standard deviation, their min and max, or a 95% confidence interval of the mean).

Where the points are, not in the page: DuckDB keeps the points of the chosen runs and
keys and averages each run's points in each of at most ``points`` buckets of x (buckets of
``2**level`` steps aligned at step 0, so every step is its own bucket while a metric has no
more steps than that). It reads the bucket sums compaction keeps beside the metric history
(:mod:`mltrail.compaction.buckets`: a fifth of the points' bytes, and exact), or the points
themselves where there are none (a store not compacted since they were kept, a part whose
sums are lost, x by time, more than 1,024 buckets). Only those per-run buckets come back (runs x points rows at most, not
runs x steps), to be smoothed per run (the exponential moving average of the Compare page,
on the buckets as TensorBoard smooths the points it samples) and aggregated per group: a
chart of 1,000 runs x 10,000 steps in 5 groups is 5 x 313 rows.

Non-finite values (a NaN loss, an infinite one) are left out of the aggregates: one would
make its group's mean NaN from there on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ..compaction.buckets import BUCKETS as SUM_BUCKETS
from ..compaction.buckets import FOLDER as SUMS_FOLDER
from ..compaction.buckets import levels, rel_of
from ..compaction.manifest import Manifest
from ..errors import InvalidInputError

Band = Literal["std", "minmax", "ci"]
XAxis = Literal["step", "time"]
BANDS: tuple[Band, ...] = ("std", "minmax", "ci")
X_AXES: tuple[XAxis, ...] = ("step", "time")
COLUMNS = ["key", "group", "x", "mean", "low", "high", "runs"]
MAX_POINTS = 5_000  # buckets a curve may ask for: more is more than a chart's pixels

# The chosen runs' finite points of the asked keys, read once to find each key's span of x
# (its buckets' width) and once to average each run's points in each bucket: a span computed
# in the same query made DuckDB hold every point between the two (a third slower).
_CHOSEN = """FROM read_parquet($files) AS m JOIN chosen AS r ON m.run_id = r.run_id
    WHERE m.key IN (SELECT unnest($keys)) AND isfinite(m.value)"""
# steps: buckets of 2**level steps aligned at step 0 (bucket = step >> level), the level the
# smallest that fits the key's span in `points` buckets: a metric with no more steps than
# points keeps each step apart, and the bucket sums compaction keeps re-bucket exactly
_STEP_SPANS = f"SELECT m.key, min(m.step) AS lo, max(m.step) AS hi {_CHOSEN} GROUP BY m.key"
_STEP_BUCKETS = f"""SELECT m.key, r.run, r.grp, m.step >> s.level AS bucket, avg(m.step) AS x, avg(m.value) AS value
    {_CHOSEN.replace("WHERE", "JOIN spans AS s ON m.key = s.key WHERE")} GROUP BY ALL"""
# ... or from those sums (compaction.buckets: finite points only, each at a level no coarser
# than the chart's), a fifth of the reading; a part without them (its file lost) gives its
# points as sums of one point at level 0
_SUM_ROWS = "SELECT run_id, key, level, bucket, n, step_min, step_max, step_sum, value_sum FROM read_parquet($sums)"
_POINT_ROWS = """SELECT run_id, key, 0 AS level, step AS bucket, 1 AS n, step AS step_min, step AS step_max,
    step::DOUBLE AS step_sum, value AS value_sum FROM read_parquet($parts) WHERE isfinite(value)"""
_SUMS = """FROM ({rows}) AS b JOIN chosen AS r ON b.run_id = r.run_id
    WHERE b.key IN (SELECT unnest($keys))"""
_SUM_SPANS = f"SELECT b.key, min(b.step_min) AS lo, max(b.step_max) AS hi {_SUMS} GROUP BY b.key"
_SUM_BUCKETS = f"""SELECT b.key, r.run, r.grp, b.bucket >> (s.level - b.level) AS bucket,
    sum(b.step_sum) / sum(b.n) AS x, sum(b.value_sum) / sum(b.n) AS value
    {_SUMS.replace("WHERE", "JOIN spans AS s ON b.key = s.key WHERE")} GROUP BY ALL"""
# seconds since the run's first point of the key: points equal buckets of the longest run's span
_TIME_SPANS = f"""SELECT key, 0 AS low, greatest(max(seconds), 1e-9) / $points AS width FROM (
    SELECT m.key, (max(epoch_ms(m.timestamp)) - min(epoch_ms(m.timestamp))) / 1000 AS seconds
    {_CHOSEN} GROUP BY m.key, r.run) GROUP BY key"""
_TIME_BUCKETS = f"""WITH points AS (
    SELECT r.run, r.grp, m.key, m.value, (epoch_ms(m.timestamp)
        - min(epoch_ms(m.timestamp)) OVER (PARTITION BY r.run, m.key)) / 1000 AS x
    {_CHOSEN})
SELECT p.key, p.run, p.grp, least($points - 1, floor(p.x / s.width)) AS bucket, avg(p.x) AS x, avg(p.value) AS value
FROM points AS p JOIN spans AS s ON p.key = s.key GROUP BY ALL"""
# each group's statistics over its runs' buckets (unless each run is smoothed first, in pandas)
_GROUP_STATS = """SELECT key, grp, bucket, avg(x) AS x, avg(value) AS mean, stddev_samp(value) AS sd,
    min(value) AS low, max(value) AS high, count(*) AS runs
FROM ({buckets}) GROUP BY ALL ORDER BY key, grp, bucket"""
STATS = ["x", "mean", "sd", "low", "high", "runs"]


def grouped_history(tables_dir: Path, manifest: Manifest, groups: Mapping[str, str], keys: Sequence[str],
                    x: XAxis = "step", band: Band = "std", smoothing: float = 0.0,
                    points: int = 500) -> pd.DataFrame:
    """Per key and group of runs (``groups``: run ID -> its group's label), the mean of its
    runs' values at each x and the band around it: ``key, group, x, mean, low, high, runs``
    (``runs``: how many runs have a point there), ordered by key, group and x."""
    check_options(x, band, smoothing, points)
    history = manifest.tables.get("metrics", [])
    if not history or not groups or not keys:
        return pd.DataFrame(columns=COLUMNS)
    labels = list(dict.fromkeys(groups.values()))
    number = {label: i for i, label in enumerate(labels)}
    chosen = pa.table({"run_id": pa.array(list(groups), pa.string()),
                       "run": pa.array(range(len(groups)), pa.int32()),
                       "grp": pa.array([number[label] for label in groups.values()], pa.int32())})
    sums = set(manifest.tables.get(SUMS_FOLDER, []))
    summed = [rel_of(part) for part in history if rel_of(part) in sums]
    unsummed = [part for part in history if rel_of(part) not in sums]
    if x == "time":
        spans_sql, buckets_sql, files = _TIME_SPANS, _TIME_BUCKETS, history
    elif points <= SUM_BUCKETS and summed:
        rows = " UNION ALL ".join([_SUM_ROWS] + ([_POINT_ROWS] if unsummed else []))
        spans_sql, buckets_sql, files = _SUM_SPANS.format(rows=rows), _SUM_BUCKETS.format(rows=rows), []
    else:
        spans_sql, buckets_sql, files = _STEP_SPANS, _STEP_BUCKETS, history
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        con.register("chosen", chosen)
        given = {"files": [str(tables_dir / rel) for rel in files], "keys": list(keys), "points": points,
                 "sums": [str(tables_dir / rel) for rel in summed],
                 "parts": [str(tables_dir / rel) for rel in unsummed]}
        spans = con.execute(spans_sql, _used(given, spans_sql)).df()
        if x == "step":
            spans["level"] = levels(spans["lo"].to_numpy(np.int64), spans["hi"].to_numpy(np.int64), points)
        con.register("spans", spans)
        if smoothing:
            buckets = con.execute(buckets_sql, _used(given, buckets_sql)).df()
            stats = _smoothed_stats(buckets, smoothing)
        else:
            stats_sql = _GROUP_STATS.format(buckets=buckets_sql)
            stats = con.execute(stats_sql, _used(given, stats_sql)).df()
    if stats.empty:
        return pd.DataFrame(columns=COLUMNS)
    if band == "std":
        spread = stats["sd"].fillna(0.0)
        stats["low"], stats["high"] = stats["mean"] - spread, stats["mean"] + spread
    elif band == "ci":
        # Student's t quantile (scipy: statsmodels' dependency), from scipy.special: scipy.stats
        # takes 1.5 s to import, which a report's first chart would wait for
        from scipy.special import stdtrit

        degrees = (stats["runs"] - 1).clip(lower=1)
        half = stdtrit(degrees, 0.975) * stats["sd"].fillna(0.0) / np.sqrt(stats["runs"])
        stats["low"], stats["high"] = stats["mean"] - half, stats["mean"] + half
    stats["group"] = [labels[i] for i in stats["grp"]]
    return stats[COLUMNS].reset_index(drop=True)


def _smoothed_stats(buckets: pd.DataFrame, weight: float) -> pd.DataFrame:
    """The group statistics of each run's buckets smoothed first (sorted by run along x)."""
    if buckets.empty:
        return pd.DataFrame(columns=["key", "grp", "bucket", *STATS])
    buckets = buckets.sort_values(["key", "run", "bucket"], kind="stable")
    buckets["value"] = _smoothed(buckets, weight)
    return buckets.groupby(["key", "grp", "bucket"], sort=True).agg(
        x=("x", "mean"), mean=("value", "mean"), sd=("value", "std"), low=("value", "min"), high=("value", "max"),
        runs=("value", "size")).reset_index()


def _used(parameters: dict[str, object], sql: str) -> dict[str, object]:
    """The parameters a query names (DuckDB refuses one it does not)."""
    return {name: value for name, value in parameters.items() if f"${name}" in sql}


def _smoothed(buckets: pd.DataFrame, weight: float) -> np.ndarray:
    """Each run's values (sorted by key, run and bucket) as a debiased exponential moving
    average: the Compare page's smoothing (pandas' ``ewm(alpha=1 - weight, adjust=True)``),
    stepped through the buckets for all runs at once (a pandas ``transform`` a run took
    2.5 s for 5,000 curves)."""
    keys, runs = buckets["key"].to_numpy(), buckets["run"].to_numpy()
    starts = np.ones(len(buckets), dtype=bool)
    starts[1:] = (keys[1:] != keys[:-1]) | (runs[1:] != runs[:-1])
    curve = np.cumsum(starts) - 1  # each row's curve (a run's key)
    first = np.flatnonzero(starts)
    position = np.arange(len(buckets)) - first[curve]  # its place along its curve
    grid = np.zeros((len(first), int(position.max()) + 1))
    grid[curve, position] = buckets["value"].to_numpy()
    numerator, denominator = np.zeros(len(first)), np.zeros(len(first))
    for column in range(grid.shape[1]):  # (cells past a curve's end are computed, never read)
        numerator = grid[:, column] + weight * numerator
        denominator = 1.0 + weight * denominator
        grid[:, column] = numerator / denominator
    return grid[curve, position]


def check_options(x: str, band: str, smoothing: float, points: int) -> None:
    """Refuse what :func:`grouped_history` cannot draw, naming what it can."""
    if x not in X_AXES:
        raise InvalidInputError(f"x must be one of {', '.join(X_AXES)}, not {x!r}")
    if band not in BANDS:
        raise InvalidInputError(f"band must be one of {', '.join(BANDS)}, not {band!r}")
    if not 0 <= smoothing < 1:
        raise InvalidInputError(f"smoothing must be in [0, 1), not {smoothing}")
    if not 1 <= points <= MAX_POINTS:
        raise InvalidInputError(f"points must be from 1 to {MAX_POINTS:,}, not {points}")
