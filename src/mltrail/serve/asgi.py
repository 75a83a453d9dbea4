"""Plain ASGI framing for the services' hot paths: read a bounded body, answer JSON.

Both services answer their traffic-carrying call (the router's predict and feedback, the
model service's predict) on bare ASGI in front of a FastAPI app that serves everything
else: per request, FastAPI's middleware stack and dependency solving cost as much as the
route's own work (py-spy showed where; the router's CPU time from /proc under wrk went
from ~830 to ~370-490 us a request).
"""

from __future__ import annotations

import asyncio
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


BODY_SECONDS = 10.0  # a request body that trickles in slower than this is cut off (408)


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


async def receive_body(scope: dict[str, Any], receive: Receive, send: Send, limit: int,
                       seconds: float | None = None) -> bytes | None:
    """The body of a request, or None once it was answered: 413 past ``limit`` bytes
    (declared or read), 408 when it has not all arrived within ``seconds`` (a client
    trickling bytes would otherwise hold a connection, and a file descriptor, forever)."""
    if (declared_length(scope) or 0) > limit:
        await too_large(send, limit)
        return None
    wait = BODY_SECONDS if seconds is None else seconds
    try:
        async with asyncio.timeout(wait):
            body = await read_body(receive, limit)
    except TimeoutError:
        await send_json(send, 408, {"detail": f"the request body did not arrive within {wait:g} s"})
        return None
    if body is None:
        await too_large(send, limit)
    return body


async def send_json(send: Send, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def too_large(send: Send, limit: int) -> None:
    await send_json(send, 413, {"detail": f"body over {limit} bytes"})


def run_server(app: Any, host: str, port: int, graceful_seconds: int = 10, loop: str = "asyncio",
               on_exit: Callable[[], None] | None = None) -> None:
    """Serve ``app`` with uvicorn until SIGTERM or SIGINT (then finish in-flight requests;
    ``on_exit`` is told first, for calls the app holds open to end now).

    Two choices, each measured (figures in docs/benchmarks.md): the router runs uvloop
    (less CPU a request than asyncio), the model service the standard asyncio loop
    (uvloop served a saturated server of short requests unfairly: a high p99); without
    uvloop (Windows) it is asyncio. And ``gc.freeze()`` once the app is built: the heap
    then holds pandas, pyarrow and the model, which full collections would walk for
    ~80 ms each.
    """
    import gc
    import importlib.util

    import uvicorn

    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        loop = "asyncio"
    gc.collect()
    gc.freeze()  # what exists now lives as long as the process: never scan it again
    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if on_exit is not None:
                on_exit()
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=host, port=port, log_level="warning", loop=loop, http="httptools",
                          timeout_graceful_shutdown=graceful_seconds)).run()
