"""Frames to Arrow on every pyarrow pyproject allows (pyarrow before 26 read time
zone-aware columns through Series.values, which pandas 3.1 deprecates: a warning each
time, a 500 from a server under -W error; checked here under this suite's -W error)."""

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa

from mltrail.query.frames import frame_to_arrow


def test_time_zone_aware_columns_cross_with_their_zone_missing_values_and_place():
    frame = pd.DataFrame({
        "run_id": ["a", "b", "c"],
        "start_time": pd.to_datetime([1_700_000_000_123, None, 1_700_000_000_000], unit="ms", utc=True),
        "value": [1.0, np.nan, 3.0],
        "paris": pd.to_datetime(["2026-11-28 10:00", "2026-11-28 11:00", None]).tz_localize("Europe/Paris"),
    })
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = frame_to_arrow(frame)
    assert table.column_names == ["run_id", "start_time", "value", "paris"]
    assert str(table.schema.field("paris").type.tz) == "Europe/Paris"
    back = table.to_pandas()
    pd.testing.assert_series_equal(back["start_time"], frame["start_time"], check_dtype=False)
    assert back["paris"][0] == frame["paris"][0] and pd.isna(back["paris"][2]) and pd.isna(back["start_time"][1])
    assert back["start_time"].dt.tz is not None


def test_a_frame_without_one_is_what_from_pandas_gives():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    assert frame_to_arrow(frame).equals(pa.Table.from_pandas(frame, preserve_index=False))
