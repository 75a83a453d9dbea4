"""The body of an answer that mixes tables and values (a run's details, an A/B result):
a JSON header, then each DataFrame as an Arrow IPC stream, so columns keep their types
(timestamps, nullable integers) and nothing is pickled. The layout is

    <8-byte little-endian header length> <header JSON> <stream 1> <stream 2> ...

where the header is ``{"values": {...}, "frames": [[name, length], ...]}``. NaN and
infinities, which JSON lacks, travel as ``{"float": "nan"}``.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Mapping
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from ..errors import UpstreamError
from ..query.cells import json_ready
from ..query.frames import frame_to_arrow

_LENGTH = struct.Struct("<Q")


def frame_bytes(frame: pd.DataFrame) -> bytes:
    """A DataFrame as an Arrow IPC stream. A column of text that holds no value yet (a
    dataset's MLflow fields, on a store no MLflow client wrote) goes as text, not as Arrow's
    null type, so it reads back as the store's own read gives it (None on pandas 2)."""
    table = frame_to_arrow(frame)
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type) and frame[field.name].dtype == object and frame[field.name].map(
                lambda v: v is None).all():
            table = table.set_column(i, pa.field(field.name, pa.string()), pa.nulls(len(table), pa.string()))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_frame(data: bytes) -> pd.DataFrame:
    with pa.ipc.open_stream(io.BytesIO(data)) as reader:
        table = reader.read_all()
    frame = table.to_pandas()
    for field in table.schema:  # a column of only missing values, as pandas itself marks them: NaN
        if pa.types.is_null(field.type) and field.name in frame:
            frame[field.name] = pd.Series(float("nan"), index=frame.index, dtype=object)
    return frame


def pack(parts: Mapping[str, Any]) -> bytes:
    """DataFrames and JSON-able values (numpy scalars and timestamps included) as one body."""
    values, frames = {}, []
    for name, value in parts.items():
        if isinstance(value, pd.DataFrame):
            frames.append((name, frame_bytes(value)))
        else:
            values[name] = _marked(value)
    header = orjson.dumps({"values": values, "frames": [[name, len(data)] for name, data in frames]},
                          default=json_ready, option=orjson.OPT_SERIALIZE_NUMPY)
    return b"".join([_LENGTH.pack(len(header)), header, *(data for _, data in frames)])


def unpack(data: bytes) -> dict[str, Any]:
    """What :func:`pack` packed."""
    try:
        (length,) = _LENGTH.unpack_from(data)
        header = orjson.loads(data[_LENGTH.size:_LENGTH.size + length])
        parts = {name: _unmarked(value) for name, value in header["values"].items()}
        offset = _LENGTH.size + length
        for name, size in header["frames"]:
            parts[name] = read_frame(data[offset:offset + size])
            offset += size
    except (struct.error, orjson.JSONDecodeError, KeyError, ValueError, pa.ArrowInvalid) as exc:
        raise UpstreamError(f"the server's answer could not be read: {exc}") from None
    return parts


def _marked(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": str(value)}
    if isinstance(value, Mapping):
        return {str(k): _marked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_marked(v) for v in value]
    return value


def _unmarked(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"float"}:
            return float(value["float"])
        return {k: _unmarked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    return value
