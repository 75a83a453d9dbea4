"""Cells of derived tables as MLflow's milliseconds (query.cells.millis, millis_column)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from mltrail.query.cells import millis, millis_column

TEXTS = ["2026-12-06T11:54:41.123456", "NaT", "1969-12-31T23:59:59.999500", "2001-01-01T00:00:00"]
LATE = "2999-06-01T00:00:00.001500"  # past what nanoseconds hold; the tables keep times to the year 3000


def expected(text: str) -> int | None:
    """Milliseconds since 1970 by Python's datetime alone (floor, as MLflow's stores keep them)."""
    if text == "NaT":
        return None
    moment = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


@pytest.mark.parametrize("dtype", ["datetime64[us, UTC]", "datetime64[ns, UTC]", "datetime64[ns]", "datetime64[ms]"])
def test_a_column_of_times_and_each_time_become_milliseconds_since_1970(dtype) -> None:
    texts = TEXTS + ([] if "ns" in dtype else [LATE])
    unit = dtype[11:13].rstrip(",]")
    column = pd.Series(np.array(texts, dtype=f"datetime64[{unit}]"))
    if "UTC" in dtype:
        column = column.dt.tz_localize("UTC")
    assert str(column.dtype) == dtype
    truth = [expected(t) for t in texts]
    if unit == "ms":  # (the column itself keeps milliseconds: 999.5 ms is 999 there)
        truth[2] = expected("1969-12-31T23:59:59.999000")
    assert millis_column(column) == truth
    assert [millis(value) for value in column.tolist()] == truth


def test_missing_cells_and_seconds_as_numbers() -> None:
    assert [millis(v) for v in (None, float("nan"), pd.NaT, pd.NA)] == [None] * 4
    assert millis(1_790_000_000.1234) == 1_790_000_000_123
    assert millis(datetime(2999, 6, 1, tzinfo=timezone.utc)) == expected("2999-06-01T00:00:00")
    assert millis_column(pd.Series([1_790_000_000.1234, float("nan")])) == [1_790_000_000_123, None]
