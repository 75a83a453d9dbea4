"""One cell of a derived table, as a value or as text.

Tables come back from pandas with three markers of "never logged": ``None``, ``NaN``
(a missing string reads back as NaN under pandas 3, and NaN is truthy, so
``row["group"] or ""`` is a float) and ``NaT``. Every front end (CLI tables, JSON, the
dashboard) turns cells into values and text here, so a store with optional fields
missing renders as blanks everywhere instead of crashing one table at a time.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd


def is_missing(value: Any) -> bool:
    """True for None, NaN, NaT and pd.NA; lists, arrays and dicts are present values."""
    if value is None:
        return True
    if isinstance(value, (str, bytes, bool, int, list, tuple, dict)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays: pd.isna answers element-wise
        return False


def present(value: Any) -> Any:
    """The value, or None when it is missing."""
    return None if is_missing(value) else value


_TICKS_A_MS = {"ms": 1, "us": 1000, "ns": 1_000_000}


def millis(value: Any) -> int | None:
    """A time (a pandas Timestamp or a datetime, seconds as a number, or missing) in the
    milliseconds since 1970 MLflow's entities carry. A Timestamp is read in its own unit:
    nanoseconds overflow past the year 2262, and the tables keep times to the year 3000."""
    if is_missing(value):
        return None
    if isinstance(value, datetime):  # (pd.Timestamp is one)
        stamp = pd.Timestamp(value)
        ticks = int(stamp.asm8.view("int64"))
        return ticks * 1000 if stamp.unit == "s" else ticks // _TICKS_A_MS[stamp.unit]
    return round(float(value) * 1_000_000) // 1000  # to the microsecond first, as the tables keep it


def millis_column(series: pd.Series) -> list[int | None]:
    """:func:`millis` of each time in a column, computed on the whole column at once (a
    Timestamp a row cost 25 ms for 1,000 runs)."""
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        return [millis(value) for value in series.tolist()]
    times = series.dt.tz_convert(None) if isinstance(series.dtype, pd.DatetimeTZDtype) else series
    found = (times.dt.as_unit("us").to_numpy().view("int64") // 1000).tolist()
    return [None if gone else value for value, gone in zip(found, series.isna().tolist(), strict=True)]


def cell_text(value: Any, missing: str = "") -> str:
    """A cell as text: missing as ``missing``, numbers with 6 significant digits (NaN and
    inf of a logged metric are values and are shown), times to the second."""
    if is_missing(value):
        return missing
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (pd.Timestamp, datetime)):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def json_ready(value: Any) -> Any:
    """A JSON-ready value: times as ISO strings, NaN as null, ±inf as text."""
    if isinstance(value, pd.DataFrame):
        return records(value)
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime)):
        return None if value is pd.NaT else value.isoformat()
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy scalars and arrays
        return json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if is_missing(value):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as JSON-ready dicts, leaving out the cells that are missing."""
    return [{k: json_ready(v) for k, v in row.items() if not is_missing(v)}
            for row in frame.to_dict("records")]
