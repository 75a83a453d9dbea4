"""search_runs and metric_history: pandas views of the derived tables."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from ..compaction.manifest import Manifest
from ..errors import InvalidInputError
from ..storage.naming import IMPORTED_ID_TAG
from .filter import DATASET_FIELDS, evaluate, parse_filter, parse_order_by, uses_datasets
from .tables import read_table

BASE_COLUMNS = ["run_id", "experiment", "run_name", "status", "start_time", "end_time", "parent_run_id"]
PARENT_TAG = "tags.mltrail.parent_run_id"  # (tracking.run.PARENT_TAG, as a column)
_PREFIXED = ("params.", "metrics.", "tags.")
VIEWS = ("active", "deleted", "all")  # which runs search_runs shows (MLflow's run_view_type)


class RunIndex:
    """The wide run frame (one row per run, prefixed columns), cached per table generation.

    Each table's part is kept while the manifest lists the same file for it, so a
    compaction that only added metric points rebuilds the metrics pivot alone.
    """

    def __init__(self, tables_dir: Path) -> None:
        self.tables_dir = tables_dir
        self._generation = -1
        self._frame: pd.DataFrame | None = None
        self._columns: dict[str, set[str]] = {}
        self._parts: dict[str, tuple[tuple[str, ...], Any]] = {}

    def frame(self, manifest: Manifest) -> pd.DataFrame:
        self._refresh(manifest)
        assert self._frame is not None
        return self._frame

    def columns(self, manifest: Manifest) -> dict[str, set[str]]:
        """Per experiment, the prefixed columns some run of it logged (NaN included)."""
        self._refresh(manifest)
        return self._columns

    def datasets(self, manifest: Manifest) -> pd.DataFrame:
        """Per run (the index), ``datasets.name``, ``datasets.digest`` and ``datasets.context``:
        a tuple of its datasets' values each, for a filter on them. Read only when a filter
        names a dataset, and kept while the datasets table is the same."""
        return self._part(manifest, "datasets", _dataset_columns)

    def _refresh(self, manifest: Manifest) -> None:
        if self._frame is None or manifest.generation != self._generation:
            self._frame, self._columns = self._build(manifest)
            self._generation = manifest.generation

    def _part(self, manifest: Manifest, name: str, make: Any) -> Any:
        files = tuple(manifest.tables.get(name, []))
        cached = self._parts.get(name)
        if cached is None or cached[0] != files:
            cached = self._parts[name] = (files, make(read_table(self.tables_dir, name, manifest).to_pandas()))
        return cached[1]

    def _build(self, manifest: Manifest) -> tuple[pd.DataFrame, dict[str, set[str]]]:
        runs = self._part(manifest, "runs", lambda t: t.set_index("run_id", drop=False))
        experiment_of = runs["experiment"]
        parts = [runs]
        columns: dict[str, set[str]] = {}
        for name, prefix in (("params", "params."), ("latest_metrics", "metrics."), ("tags", "tags.")):
            wide, logged = self._part(manifest, name, lambda t, p=prefix: _pivot(t, p))
            if wide is not None:
                parts.append(wide)
                where = pd.DataFrame({"experiment": experiment_of.reindex(logged["run_id"]).to_numpy(),
                                      "column": logged["column"].to_numpy()}).drop_duplicates()
                for experiment, group in where.groupby("experiment"):
                    columns.setdefault(str(experiment), set()).update(group["column"])
        frame = pd.concat(parts, axis=1, join="outer") if len(parts) > 1 else runs.copy()
        frame = frame.loc[runs.index]
        frame.index.name = None
        return frame, columns


def _pivot(long: pd.DataFrame, prefix: str) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """Long (run_id, key, value) rows as one column per key, and which run logged which."""
    logged = pd.DataFrame({"run_id": long["run_id"], "column": prefix + long["key"]})
    if long.empty:
        return None, logged
    wide = long.pivot(index="run_id", columns="key", values="value")
    wide = wide[sorted(wide.columns)]
    wide.columns = [prefix + str(c) for c in wide.columns]
    return wide, logged


def _dataset_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """A run's datasets as tuples by field. A dataset MLflow's client logged (the plugin, an
    import) has MLflow's digest; one mltrail logged is digested by its sha256."""
    digests = []
    for sha256, mlflow in zip(rows["sha256"], rows["mlflow"]):
        digest = orjson.loads(mlflow).get("digest") if isinstance(mlflow, str) else None
        digests.append(digest if isinstance(digest, str) else sha256)
    fields = pd.DataFrame({"run_id": rows["run_id"], "name": rows["name"], "digest": digests,
                           "context": rows["context"].astype(object).where(rows["context"].notna(), None)})
    grouped = fields.groupby("run_id", sort=False)
    return pd.DataFrame({f"datasets.{field}": grouped[field].agg(tuple) for field in DATASET_FIELDS})


def derive_status(frame: pd.DataFrame, crash_after: float, now: float | None = None) -> pd.Series:
    """The status column, with RUNNING runs whose heartbeat stopped read as CRASHED."""
    now = time.time() if now is None else now
    cutoff = pd.Timestamp(now - crash_after, unit="s", tz="UTC")
    crashed = (frame["status"] == "RUNNING") & (frame["last_seen"] < cutoff)
    return frame["status"].where(~crashed, "CRASHED")


def search_runs(frame: pd.DataFrame, logged: dict[str, set[str]], *,
                experiment: str | Sequence[str] | None = None,
                filter: str | None = None, order_by: Sequence[str] | None = None,
                max_results: int | None = None, crash_after: float = 120.0,
                view: str = "active", datasets: Callable[[], pd.DataFrame] | None = None) -> pd.DataFrame:
    """Runs matching ``filter`` in the given experiments, as MLflow's search_runs lays them out.

    The prefixed columns are those the selected experiments logged, so a metric whose
    only value is NaN still has its column. ``view`` is ``"active"`` (deleted runs
    hidden), ``"deleted"`` or ``"all"``; the last two add a ``deleted`` column.
    ``datasets`` gives the runs' datasets (:meth:`RunIndex.datasets`), asked for only when
    the filter names one (``datasets.name = 'train'``)."""
    if view not in VIEWS:
        raise InvalidInputError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
    if isinstance(order_by, str):
        order_by = [order_by]
    if max_results is not None and max_results < 0:
        raise InvalidInputError(f"max_results must be >= 0, not {max_results}")
    deleted = frame["deleted"].fillna(False).astype(bool)
    result = frame[~deleted] if view == "active" else frame[deleted] if view == "deleted" else frame
    names = list(logged) if experiment is None else (
        [experiment] if isinstance(experiment, str) else list(experiment))
    if experiment is not None:
        result = result[result["experiment"].isin(names)]
    # typed as the IDs are (a column of nothing but missing values would cross Arrow as nulls)
    parent = result[PARENT_TAG] if PARENT_TAG in result.columns else pd.Series(
        np.nan, index=result.index).astype(result["run_id"].dtype)
    result = result.assign(status=derive_status(result, crash_after), parent_run_id=parent)
    if filter and filter.strip():
        predicate = parse_filter(filter)
        searched = result
        if datasets is not None and uses_datasets(predicate):
            searched = result.join(datasets(), how="left")
        result = result[evaluate(predicate, searched)]
    result = _sort(result, order_by or [])
    if max_results is not None:
        result = result.head(max_results)
    present = set().union(*(logged.get(name, set()) for name in names))
    extra = [c for c in result.columns if c in present]
    ordered = sorted(extra, key=lambda c: (_PREFIXED.index(c.split(".", 1)[0] + "."), c))
    base = BASE_COLUMNS if view == "active" else [*BASE_COLUMNS, "deleted"]
    if view != "active":
        result = result.assign(deleted=result["deleted"].fillna(False).astype(bool))
    return result[base + ordered].reset_index(drop=True)


def _sort(frame: pd.DataFrame, order_by: Sequence[str]) -> pd.DataFrame:
    """Sort by the clauses, then newest start first, then ID: always deterministic."""
    keys: list[pd.Series] = []
    ascending: list[bool] = []
    for clause in order_by:
        column, asc = parse_order_by(clause)
        series = frame[column.name] if column.name in frame.columns else pd.Series(np.nan, index=frame.index)
        if column.kind in ("params", "tags"):
            numbers = pd.to_numeric(series, errors="coerce")
            series = numbers if numbers.notna().sum() == series.notna().sum() else series
        keys.append(series)
        ascending.append(asc)
    # ties after the clauses: newest start first, then the run's ID, MLflow's for a run imported
    # from it (an autologged grid search starts its children in one millisecond): MLflow's order
    tag = f"tags.{IMPORTED_ID_TAG}"
    identity = frame[tag].fillna(frame["run_id"]) if tag in frame.columns else frame["run_id"]
    keys += [frame["start_time"], identity]
    ascending += [False, True]
    if frame.empty:
        return frame
    sort_frame = pd.DataFrame({f"k{i}": _sortable(k) for i, k in enumerate(keys)}, index=frame.index)
    order = sort_frame.sort_values(list(sort_frame.columns), ascending=ascending,
                                   na_position="last", kind="mergesort").index
    return frame.loc[order]


def _sortable(series: pd.Series) -> np.ndarray:
    """A sort key as a NumPy array; times as datetime64 (to_numpy() of a time zone-aware
    column makes a Timestamp object per row: 80 ms for 17,000 runs)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.to_numpy(dtype="datetime64[ns]")
    return series.to_numpy()


def _runs_and_keys(run_ids: Sequence[str] | None, keys: Sequence[str] | None) -> ds.Expression | None:
    """The filter of a table's rows by run and key (None: all of them)."""
    expr = None
    if run_ids is not None:  # (typed: an empty list would be a null array, which no string column matches)
        expr = ds.field("run_id").isin(pa.array(list(run_ids), pa.string()))
    if keys is not None:
        key_expr = ds.field("key").isin(pa.array(list(keys), pa.string()))
        expr = key_expr if expr is None else expr & key_expr
    return expr


def histograms(tables_dir: Path, manifest: Manifest, run_ids: Sequence[str] | None = None,
               keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Every histogram of the given runs and keys, by run, key and step: run_id, key, step,
    timestamp, edges, counts (arrays: bin i counts the values in [edges[i], edges[i + 1])),
    dropped (non-finite values, not binned)."""
    table = read_table(tables_dir, "histograms", manifest, filter=_runs_and_keys(run_ids, keys))
    table = table.sort_by([("run_id", "ascending"), ("key", "ascending"), ("step", "ascending"),
                           ("seq", "ascending")])
    return table.drop_columns(["seq"]).to_pandas()


def metric_history(tables_dir: Path, manifest: Manifest, run_ids: Sequence[str] | None = None,
                   keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Every logged point of the given runs and keys: run_id, key, step, value, timestamp, best,
    dataset_name, dataset_digest (the dataset a point was measured on, MLflow 3's link; None for none)."""
    table = read_table(tables_dir, "metrics", manifest, filter=_runs_and_keys(run_ids, keys))
    table = table.sort_by([("run_id", "ascending"), ("key", "ascending"), ("step", "ascending"),
                           ("seq", "ascending")])
    return table.drop_columns(["seq"]).to_pandas()

