"""The metric history summed into buckets of steps, for charts of many runs.

A grouped chart of 1,000 runs x 10,000 steps averages 10 million points into a few
hundred buckets of steps. Reading those points took about a second a chart; these sums
take a fifth of it. Beside each part file of the metric history, compaction writes
one of its sums: per run and key, the part's finite points summed into buckets of
``2**level`` steps (bucket ``step >> level``, aligned at step 0), the level the smallest
that keeps that run's span of steps in the part within :data:`BUCKETS` buckets.

Buckets of every level are aligned at 0, so a bucket of level ``l`` lies inside the
bucket ``bucket >> (L - l)`` of any coarser level ``L``: summing sums re-buckets them
exactly, whichever parts and levels a run's points were written in (a live run's points
arrive over many compactions). A chart asking for at most :data:`BUCKETS` buckets of x
over a span that holds every part's span needs a level no finer than any part's, so its
means are those of the points themselves (``query.grouped`` computes both ways; a test
holds them equal).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

BUCKETS = 1_024  # a run's buckets a key in one part, at most
FOLDER = "metric_buckets"
HISTORY_FOLDER = "metrics"

# per run and key of the part: its span of finite steps, the level that fits it in BUCKETS
# (log2 estimates it from the span; aligned buckets may need one level more), its sums.
# Spans are computed in DOUBLE: hi - lo overflows BIGINT for steps at int64's ends.
_SUMS = f"""COPY (
WITH spans AS (
    SELECT run_id, key, min(step) AS lo, max(step) AS hi,
        CAST(greatest(0, ceil(log2((max(step)::DOUBLE - min(step)::DOUBLE + 1) / {BUCKETS}))) AS INTEGER) AS guess
    FROM read_parquet($part) WHERE isfinite(value) GROUP BY ALL),
levels AS (
    SELECT run_id, key,
        CAST(CASE WHEN (hi >> guess) - (lo >> guess) < {BUCKETS} THEN guess ELSE guess + 1 END AS TINYINT) AS level
    FROM spans)
SELECT m.run_id, m.key, l.level, m.step >> l.level AS bucket, count(*) AS n,
    min(m.step) AS step_min, max(m.step) AS step_max, sum(m.step::DOUBLE) AS step_sum, sum(m.value) AS value_sum
FROM read_parquet($part) AS m JOIN levels AS l ON m.run_id = l.run_id AND m.key = l.key
WHERE isfinite(m.value)
GROUP BY ALL ORDER BY m.run_id, m.key, bucket
) TO '{{out}}' (FORMAT parquet, COMPRESSION zstd)"""


def rel_of(history_rel: str) -> str:
    """The sums' file beside a part file of the metric history (same partition and name)."""
    folder, rest = history_rel.split("/", 1)
    if folder != HISTORY_FOLDER:
        raise ValueError(f"not a part file of the metric history: {history_rel!r}")
    return f"{FOLDER}/{rest}"


def write_sums(tables_dir: Path, history_rel: str) -> str:
    """Sum one part file of the metric history into its buckets' file; returns its path
    (relative to ``tables_dir``; listed in no manifest yet)."""
    rel = rel_of(history_rel)
    out = tables_dir / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    # (COPY takes no parameter for its target; the path is the compaction's own)
    sql = _SUMS.replace("{out}", str(out).replace("'", "''"))
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(sql, {"part": str(tables_dir / history_rel)})
    return rel
