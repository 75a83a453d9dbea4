"""The metric history summed into buckets of steps, for charts of many runs.

A grouped chart of 1,000 runs x 10,000 steps averages 10 million points into a few
hundred buckets of steps. Reading those points took about a second a chart; these sums
take a fifth of it. Beside each part file of the metric history, compaction writes a file
of its sums: per run and key, the points (finite ones) of each batch it wrote summed into
buckets of ``2**level`` steps (bucket ``step >> level``, aligned at step 0), the level the
smallest that keeps that run's span of steps in the batch within :data:`BUCKETS` buckets.

Buckets of every level are aligned at 0, so a bucket of level ``l`` lies inside the
bucket ``bucket >> (L - l)`` of any coarser level ``L``: summing sums re-buckets them
exactly, whichever parts, batches and levels a run's points were written in (a live run's
points arrive over many compactions). A chart asking for at most :data:`BUCKETS` buckets
of x over a span that holds every batch's span needs a level no finer than any batch's, so
its means are those of the points themselves (``query.grouped`` computes both ways; a test
holds them equal). Computed in Arrow a batch at a time, as the points are written: no
more memory than the batch, and no query engine started for a live refresh's few points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import schemas

BUCKETS = 1_024  # a run's buckets a key in one batch, at most
FOLDER = "metric_buckets"
HISTORY_FOLDER = "metrics"
SCHEMA = schemas.METRIC_BUCKETS


def rel_of(history_rel: str) -> str:
    """The sums' file beside a part file of the metric history (same partition and name)."""
    folder, rest = history_rel.split("/", 1)
    if folder != HISTORY_FOLDER:
        raise ValueError(f"not a part file of the metric history: {history_rel!r}")
    return f"{FOLDER}/{rest}"


def levels(lo: np.ndarray, hi: np.ndarray, buckets: int) -> np.ndarray:
    """Per span ``lo..hi`` of int64 steps, the smallest level whose buckets of ``2**level``
    steps aligned at 0 hold it in at most ``buckets`` buckets (level 63 at most: -1 and 0 are
    as far as int64's steps shift, two buckets for a span both sides of 0)."""
    level = np.zeros(len(lo), dtype=np.int64)
    while True:
        # (as unsigned: hi >> l is at least lo >> l, and their difference can pass int64's end)
        width = np.right_shift(hi, level).view(np.uint64) - np.right_shift(lo, level).view(np.uint64)
        wider = (width >= buckets) & (level < 63)
        if not wider.any():
            return level
        level[wider] += 1


def sums_of(points: pa.Table) -> pa.Table:
    """A batch of points (``run_id, key, step, value``, any order) as its bucket sums.

    In NumPy over integer codes (a join and a group-by of Arrow's on the strings took twice
    the batch's memory): each point's curve (run and key), the curve's level, then the
    point's bucket within its curve's at most BUCKETS, summed with ``bincount``."""
    value = points["value"].to_numpy()
    finite = np.isfinite(value)
    if not finite.any():
        return SCHEMA.empty_table()
    runs = pc.dictionary_encode(points["run_id"]).combine_chunks()
    keys = pc.dictionary_encode(points["key"]).combine_chunks()
    step = points["step"].to_numpy()[finite]
    value = value[finite]
    pair = (runs.indices.to_numpy().astype(np.int64) * len(keys.dictionary)
            + keys.indices.to_numpy().astype(np.int64))[finite]
    pairs, curve = np.unique(pair, return_inverse=True)
    lo = np.full(len(pairs), np.iinfo(np.int64).max)
    hi = np.full(len(pairs), np.iinfo(np.int64).min)
    np.minimum.at(lo, curve, step)
    np.maximum.at(hi, curve, step)
    level = levels(lo, hi, BUCKETS)
    bucket = np.right_shift(step, level[curve])
    first = np.right_shift(lo, level)  # each curve's first bucket: a point's is first + [0, BUCKETS)
    cells, cell = np.unique(curve * BUCKETS + (bucket - first[curve]), return_inverse=True)
    of_curve = cells // BUCKETS
    step_min = np.full(len(cells), np.iinfo(np.int64).max)
    step_max = np.full(len(cells), np.iinfo(np.int64).min)
    np.minimum.at(step_min, cell, step)
    np.maximum.at(step_max, cell, step)
    pair_of_cell = pairs[of_curve]
    return pa.table({
        "run_id": runs.dictionary.take(pa.array(pair_of_cell // len(keys.dictionary))),
        "key": keys.dictionary.take(pa.array(pair_of_cell % len(keys.dictionary))),
        "level": pa.array(level[of_curve], pa.int8()),
        "bucket": pa.array(first[of_curve] + cells % BUCKETS, pa.int64()),
        "n": pa.array(np.bincount(cell, minlength=len(cells)), pa.int64()),
        "step_min": pa.array(step_min, pa.int64()), "step_max": pa.array(step_max, pa.int64()),
        # (steps past 2**53 rounded, as any sum of doubles rounds them)
        "step_sum": pa.array(np.bincount(cell, weights=step.astype(np.float64), minlength=len(cells))),
        "value_sum": pa.array(np.bincount(cell, weights=value, minlength=len(cells))),
    }, schema=SCHEMA)


def write_sums(tables_dir: Path, history_rel: str) -> str:
    """Sum a part file of the metric history written before (a merge, a store compacted
    before the sums were kept), a row group at a time; returns the sums' path (relative to
    ``tables_dir``; listed in no manifest yet)."""
    rel = rel_of(history_rel)
    out = tables_dir / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(out, SCHEMA, compression="zstd") as writer:
        source = pq.ParquetFile(tables_dir / history_rel)
        for group in range(source.num_row_groups):
            writer.write_table(sums_of(source.read_row_group(group, columns=["run_id", "key", "step", "value"])))
    return rel
