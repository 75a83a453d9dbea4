"""The point-in-time join, vectorised (pandas ``merge_asof``; no loop over rows).

For each entity row (keys k, time T) the candidates are the view's rows with keys k and
``T - ttl <= event_ts <= T`` (no lower bound without a ttl); the one chosen has the
greatest ``event_ts``, ties broken by the greatest ``created_ts`` (then by the later row
in the file). With ``as_known_then`` a candidate must also have ``created_ts <= T``.

One algorithm serves both rules. A row becomes *available* at ``event_ts``, or with
``as_known_then`` at ``max(event_ts, created_ts)`` (when both conditions hold). Each
row gets its rank in the (event_ts, created_ts, position) order; per key, in order of
availability, a running maximum of that rank says which row is the best one known so
far. An as-of join on availability then picks, for each entity row, the best row
available at T; the ttl is checked on that row's event_ts afterwards (it is the
greatest event_ts available, so if it is too old, every candidate is).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def point_in_time(entity_keys: pd.DataFrame, entity_times: np.ndarray, view_keys: pd.DataFrame,
                  event_times: np.ndarray, created_times: np.ndarray | None, ttl_ns: int | None,
                  as_known_then: bool = False) -> np.ndarray:
    """For each entity row, the position of the chosen view row, or -1 for none.

    ``entity_times``, ``event_times`` and ``created_times`` are int64 nanoseconds since
    the epoch (UTC); the key frames have the same column names in the same order.
    """
    keys = list(entity_keys.columns)
    count = len(view_keys)
    positions = np.arange(count, dtype=np.int64)
    created = event_times if created_times is None else created_times
    rank = np.empty(count, dtype=np.int64)
    rank[np.lexsort((positions, created, event_times))] = positions  # best = highest rank
    by_rank = np.empty(count, dtype=np.int64)
    by_rank[rank] = positions
    available = np.maximum(event_times, created) if as_known_then else event_times

    right = view_keys.reset_index(drop=True).assign(_available=available, _rank=rank)
    right = right.sort_values([*keys, "_available", "_rank"], kind="stable")
    right["_best"] = right.groupby(keys, sort=False, dropna=False)["_rank"].cummax()
    right = right.drop_duplicates([*keys, "_available"], keep="last")  # the best at each moment
    right = right.sort_values("_available", kind="stable")[[*keys, "_available", "_best"]]

    left = entity_keys.reset_index(drop=True).assign(_time=entity_times, _row=np.arange(len(entity_keys)))
    left = left.sort_values("_time", kind="stable")
    joined = pd.merge_asof(left, right, left_on="_time", right_on="_available", by=keys,
                           direction="backward", allow_exact_matches=True)
    chosen = np.full(len(entity_keys), -1, dtype=np.int64)
    found = joined["_best"].notna().to_numpy()
    rows = joined["_row"].to_numpy()[found]
    picked = by_rank[joined["_best"].to_numpy()[found].astype(np.int64)]
    if ttl_ns is not None:
        fresh = event_times[picked] >= joined["_time"].to_numpy()[found] - ttl_ns
        rows, picked = rows[fresh], picked[fresh]
    chosen[rows] = picked
    return chosen


def take(values: pd.Series, chosen: np.ndarray, kind: str) -> pd.Series:
    """The chosen rows of a feature column, null where nothing was chosen, typed by kind."""
    dtype = {"float": "float64", "int": "Int64", "string": "string", "bool": "boolean"}[kind]
    source = values.astype(dtype).reset_index(drop=True)
    result = source.iloc[np.where(chosen >= 0, chosen, 0)].reset_index(drop=True) if len(source) else \
        pd.Series([None] * len(chosen), dtype=dtype)
    return result.mask(pd.Series(chosen < 0), pd.NA if dtype != "float64" else np.nan)


def to_utc_ns(values: pd.Series | Sequence, what: str) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch; naive ones are UTC."""
    stamps = pd.to_datetime(pd.Series(values), utc=True, errors="raise")
    if stamps.isna().any():
        raise ValueError(f"{what} has missing timestamps")
    return stamps.dt.as_unit("ns").astype("int64").to_numpy()
