"""What every route of the server shares: bounded request bodies, JSON bodies validated
by pydantic (422 naming the field), and answers in Arrow IPC or :mod:`mltrail.remote.wire`."""

from __future__ import annotations

import struct
from typing import Any

import pandas as pd
import pyarrow as pa
from fastapi import Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from ..errors import InvalidInputError, PayloadTooLargeError
from ..remote import wire

MAX_BODY = 64 << 20
ARROW = "application/vnd.apache.arrow.stream"


async def read_body(request: Request) -> bytes:
    """The request body; PayloadTooLargeError (413) once it passes the app's limit,
    read no further."""
    limit = request.app.state.max_body
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"a request body is at most {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"a request body is at most {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def parsed(request: Request, adapter: TypeAdapter[Any], what: str) -> Any:
    """A JSON request body validated by ``adapter``; InvalidInputError (422) names the field."""
    body = await read_body(request)
    try:
        return adapter.validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the body"
        raise InvalidInputError(f"{what}: {where}: {first['msg']}") from None


def json_body(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """A route's ``openapi_extra``: its JSON body's schema in the server's OpenAPI, so that
    clients and a schema-driven fuzzer (tests/server/test_fuzz.py) know what it takes. The
    body itself is read by :func:`parsed`, which bounds its size first."""
    schema = adapter.json_schema()
    definitions = schema.pop("$defs", {})

    def inlined(node: Any) -> Any:  # "#/$defs/X" would resolve against the OpenAPI document
        if isinstance(node, dict):
            if "$ref" in node:
                return inlined(definitions[node["$ref"].rsplit("/", 1)[-1]])
            # (a discriminator's mapping names $defs too; each variant's `type` const says it)
            return {key: inlined(value) for key, value in node.items() if key != "discriminator"}
        return [inlined(value) for value in node] if isinstance(node, list) else node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inlined(schema)}}}}


def arrow(frame: pd.DataFrame) -> Response:
    """A DataFrame as an Arrow IPC stream: columns, not JSON rows."""
    return Response(wire.frame_bytes(frame), media_type=ARROW)


def packed(parts: dict[str, Any]) -> Response:
    """Tables and values in one answer (:func:`mltrail.remote.wire.pack`)."""
    return Response(wire.pack(parts), media_type="application/octet-stream")


def frame_of(body: bytes, what: str, limit: int) -> pd.DataFrame:
    """A DataFrame a client sent as an Arrow IPC stream, refused (413) before it is decoded
    when it would take more than ``limit`` bytes: a few KB of zstd-compressed zeros
    declare hundreds of MB, and decoding is what allocates them."""
    try:
        declared = sum(_decoded_size(message) for message in pa.ipc.MessageReader.open_stream(pa.py_buffer(body)))
    except (pa.ArrowException, OSError, ValueError, struct.error) as exc:
        raise InvalidInputError(f"{what} is not an Arrow IPC stream: {exc}") from None
    if declared > limit:
        raise PayloadTooLargeError(f"{what} would take {declared:,} bytes decoded; a request takes at most {limit:,}")
    try:
        return wire.read_frame(body)
    except (pa.ArrowException, OSError, ValueError) as exc:  # an unreadable stream is the sender's mistake
        raise InvalidInputError(f"{what} is not an Arrow IPC stream: {exc}") from None


# The size a record batch message declares, read from its flatbuffer metadata (Arrow's
# format/Message.fbs). pyarrow decodes a batch whole, decompressing as it goes, and
# exposes no declared sizes before: these few reads are the check it lacks. Each read is
# bounds-checked; metadata that points outside itself is not a stream we take.
_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH = 1, 2, 3


def _decoded_size(message: pa.ipc.Message) -> int:
    """Bytes a message's batch takes decoded: its buffers at their uncompressed lengths
    (a compressed buffer starts with that length), and at least 8 per row and column
    (a column of nulls has no buffer, but pandas gives each row a slot)."""
    meta = message.metadata.to_pybytes()
    root = _u32(meta, 0)
    kind_at = _field(meta, root, 1)
    kind = meta[kind_at] if kind_at is not None else 0
    header_at = _field(meta, root, 2)
    if kind == _SCHEMA or header_at is None:
        return len(meta)
    header = _child(meta, header_at)
    if kind == _DICTIONARY_BATCH:  # its data is a record batch
        data_at = _field(meta, header, 1)
        if data_at is None:
            return len(meta)
        header = _child(meta, data_at)
    elif kind != _RECORD_BATCH:
        raise ValueError(f"an Arrow IPC message of type {kind} is not a table's")
    rows_at, nodes_at, buffers_at = (_field(meta, header, i) for i in range(3))
    rows = _unpack("<q", meta, rows_at)[0] if rows_at is not None else 0
    columns = _u32(meta, _child(meta, nodes_at)) if nodes_at is not None else 0
    compressed = _field(meta, header, 3) is not None
    total = 0
    if buffers_at is not None:
        vector = _child(meta, buffers_at)
        for i in range(_u32(meta, vector)):
            offset, length = _unpack("<qq", meta, vector + 4 + 16 * i)
            if compressed and length >= 8:
                (uncompressed,) = _unpack("<q", message.body.slice(offset, 8).to_pybytes(), 0)
                total += length - 8 if uncompressed == -1 else uncompressed
            else:
                total += length
    if rows < 0 or total < 0:
        raise ValueError("a negative length")
    return max(total, 8 * rows * max(columns, 1))


def _unpack(fmt: str, data: bytes, at: int | None) -> tuple[int, ...]:
    if at is None or not 0 <= at <= len(data) - struct.calcsize(fmt):
        raise ValueError("metadata that points outside itself")
    return struct.unpack_from(fmt, data, at)


def _u32(data: bytes, at: int) -> int:
    return _unpack("<I", data, at)[0]


def _field(meta: bytes, table: int, index: int) -> int | None:
    """Where field ``index`` of the flatbuffer table at ``table`` is (None: absent)."""
    vtable = table - _unpack("<i", meta, table)[0]
    size = _unpack("<H", meta, vtable)[0]
    if 4 + 2 * index + 2 > size:
        return None
    offset = _unpack("<H", meta, vtable + 4 + 2 * index)[0]
    return table + offset if offset else None


def _child(meta: bytes, at: int) -> int:
    """The table an offset field at ``at`` points to."""
    return at + _u32(meta, at)
