"""pandas frames as Arrow tables, the same way on every pyarrow pyproject allows.

pyarrow before 26 reads a time zone-aware column through ``Series.values``, which pandas
3.1 deprecates: every conversion of a frame holding one (a search answer's start and end
times, a user's logged table) warned, and a server under ``-W error`` answered 500.
Those columns are converted here, from their UTC values, before pyarrow sees the rest.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa


def frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    """``pa.Table.from_pandas(frame, preserve_index=False)``, time zone-aware columns included."""
    aware = [i for i, dtype in enumerate(frame.dtypes) if isinstance(dtype, pd.DatetimeTZDtype)]
    if not aware:
        return pa.Table.from_pandas(frame, preserve_index=False)
    table = pa.Table.from_pandas(frame.drop(columns=frame.columns[aware]), preserve_index=False)
    for position in aware:
        column = frame.iloc[:, position]
        utc = column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        array = pa.array(utc, type=pa.timestamp(column.dt.unit, tz=str(column.dt.tz)), from_pandas=True)
        table = table.add_column(position, str(frame.columns[position]), array)
    return table
