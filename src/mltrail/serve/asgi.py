"""Plain ASGI framing for the services' hot paths: read a bounded body, answer JSON.

Both services answer their traffic-carrying call (the router's predict and feedback, the
model service's predict) on bare ASGI in front of a FastAPI app that serves everything
else: per request, FastAPI's middleware stack and dependency solving cost as much as the
route's own work (py-spy showed where; the router's CPU time from /proc under wrk went
from ~830 to ~370-490 us a request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None past ``limit`` bytes (a chunked body declares no length)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(send: Send, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def too_large(send: Send, limit: int) -> None:
    await send_json(send, 413, {"detail": f"body over {limit} bytes"})


def run_server(app: Any, host: str, port: int, graceful_seconds: float = 10, loop: str = "asyncio") -> None:
    """Serve ``app`` with uvicorn until SIGTERM or SIGINT (then finish in-flight requests).

    Choices, each measured with wrk at 64 connections on a 2-core machine:
    - ``loop``: the router runs uvloop, the model service the standard asyncio loop. In
      interleaved runs the router under uvloop used 381-391 us of CPU a request paced at
      ~1,000 req/s against 429-471 under asyncio (p50 2.1-2.2 ms against 2.4-3.0), and
      flat out served 3,531-4,091 req/s (p99 31-34 ms) against 2,661-3,383 (p99 34-42).
      A saturated server of short requests, which the model service is when called
      directly, can be served unfairly under uvloop (a trivial 0.4 ms-a-request app: p99
      500 ms under uvloop, 33 ms under asyncio; the model service's own p99 varied 7-30 ms
      under uvloop against 10-13 ms under asyncio). Without uvloop (Windows) it is asyncio;
    - ``gc.freeze()`` once the app is built: the heap then holds pandas, pyarrow and the
      model, and each full collection walked it for ~80 ms, twice in 8 s of load.
    """
    import gc
    import importlib.util

    import uvicorn

    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        loop = "asyncio"
    gc.collect()
    gc.freeze()  # what exists now lives as long as the process: never scan it again
    uvicorn.run(app, host=host, port=port, log_level="warning", loop=loop, http="httptools",
                timeout_graceful_shutdown=graceful_seconds)
