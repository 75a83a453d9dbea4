"""What every route of the server shares: bounded request bodies, JSON bodies validated
by pydantic (422 naming the field), and answers in Arrow IPC or :mod:`mltrail.remote.wire`."""

from __future__ import annotations

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


def arrow(frame: pd.DataFrame) -> Response:
    """A DataFrame as an Arrow IPC stream: columns, not JSON rows."""
    return Response(wire.frame_bytes(frame), media_type=ARROW)


def packed(parts: dict[str, Any]) -> Response:
    """Tables and values in one answer (:func:`mltrail.remote.wire.pack`)."""
    return Response(wire.pack(parts), media_type="application/octet-stream")


def frame_of(body: bytes, what: str) -> pd.DataFrame:
    """A DataFrame a client sent as an Arrow IPC stream."""
    try:
        return wire.read_frame(body)
    except (pa.ArrowException, OSError, ValueError) as exc:  # an unreadable stream is the sender's mistake
        raise InvalidInputError(f"{what} is not an Arrow IPC stream: {exc}") from None
