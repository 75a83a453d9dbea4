"""The router's client for model services: pooled keep-alive HTTP/1.1 POSTs of JSON.

The router makes one kind of call, a POST of a small JSON body to a model service it
was configured with, so the client is small: asyncio's transports carry the bytes,
httptools (llhttp, the parser uvicorn's server side already uses) parses the answers,
and this module owns only the pool and the request head. General clients cost the
router most of its time: httpx's pool ran a ``select`` on every pooled connection for
every request (229 req/s at 64 connections), and aiohttp's request machinery (headers,
cookies, tracing hooks, response objects) took ~250 us of CPU a request against ~65 us
here (the same POSTs to the same local service, one process each, CPU time per request),
which decided whether the router's added latency stayed under 2 ms at 1,000 req/s on
two cores (``benchmarks/bench_router.py``).

Each origin keeps its idle connections; a request takes one (or opens one), a complete
answer that allows keep-alive gives it back. A connection the service closed while idle
is found out on use: the request is sent once more on a new connection if no byte of
an answer had come (a prediction is safe to ask twice). Faults become two exceptions
that name nothing but the cause; the router names the variant: :class:`UpstreamTimeout`
(no complete answer within the per-request timeout, connecting included) and
:class:`UpstreamUnreachable` (refused, reset, closed mid-answer, not HTTP, an answer over
``max_answer_bytes``). Informational answers (1xx) before the real one are skipped.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from ..errors import UpstreamError, UpstreamTimeoutError


class UpstreamTimeout(UpstreamTimeoutError):
    """The model service did not answer within the timeout."""


class UpstreamUnreachable(UpstreamError):
    """The model service could not be reached, dropped the connection, or spoke no HTTP."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


class _Dropped(Exception):
    """The connection ended before a whole answer; ``answered`` if any of it had come."""

    def __init__(self, cause: str, answered: bool) -> None:
        super().__init__(cause)
        self.answered = answered


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, parses its answer, says if reusable."""

    def __init__(self, max_answer_bytes: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Reply] | None = None
        self.body: list[bytes] = []
        self.size = 0
        self.max_answer_bytes = max_answer_bytes
        self.answered = False  # a byte of the current answer has arrived
        self.framed = False  # its head gave a length or chunking; else it ends when the connection does
        self.headed = False  # its head has been read
        self.reusable = True

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # (a connection's is an asyncio.Transport)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: this connection cannot be trusted
            self.close()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(_Dropped(f"not an HTTP answer ({exc})", answered=True))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self.transport = None
        if exc is None and self.headed and not self.framed and self.waiter is not None:
            self.on_message_complete()  # an answer delimited by closing the connection (RFC 9112 6.3)
            return
        self._fail(_Dropped(type(exc).__name__ if exc else "ServerDisconnected", self.answered))

    # -- httptools callbacks -------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headed = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_answer_bytes:  # a model service gone wrong must not fill the router's memory
            self._fail(_Dropped(f"an answer over {self.max_answer_bytes:,} bytes", answered=True))
            self.close()
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.parser.get_status_code() < 200:  # informational (103 Early Hints): the answer follows
            self.body = []
            self.size = 0
            self.framed = self.headed = False
            return
        waiter, self.waiter = self.waiter, None
        self.reusable = self.reusable and self.parser.should_keep_alive()
        reply = Reply(self.parser.get_status_code(), b"".join(self.body))
        self.body = []
        self.size = 0
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    # -- the client's side -------------------------------------------------------------

    @property
    def open(self) -> bool:
        return self.reusable and self.transport is not None and not self.transport.is_closing()

    def send(self, request: bytes) -> asyncio.Future[Reply]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.answered = self.framed = self.headed = False
        self.transport.write(request)
        return self.waiter

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


@dataclass(frozen=True)
class _Target:
    """What a URL comes to: where to connect, and the request head up to the length."""

    origin: tuple[str, int, bool]  # host, port, TLS
    head: bytes

    @classmethod
    def of(cls, url: str) -> _Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamUnreachable(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = (f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                "Content-Type: application/json\r\nContent-Length: ").encode("latin-1")
        return cls((parts.hostname, port, tls), head)


class Upstream:
    """POSTs JSON to model services over pooled keep-alive connections.

    ``timeout`` bounds each call, connecting included; at most ``max_connections``
    calls are in flight at once (the rest wait their turn within their timeout); an
    answer longer than ``max_answer_bytes`` is refused (UpstreamUnreachable).
    """

    def __init__(self, timeout: float = 2.0, max_connections: int = 256, max_answer_bytes: int = 8 << 20) -> None:
        self.timeout = timeout
        self.max_connections = max_connections
        self.max_answer_bytes = max_answer_bytes
        self._idle: dict[tuple[str, int, bool], deque[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._slots: asyncio.Semaphore | None = None
        self._tls: ssl.SSLContext | None = None

    async def open(self) -> None:
        self._slots = asyncio.Semaphore(self.max_connections)

    async def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._slots = None

    async def post(self, url: str, body: bytes) -> Reply:
        """POST ``body`` (JSON bytes) to ``url``; the status and body of the answer."""
        if self._slots is None:
            raise RuntimeError("Upstream.open() was not awaited")
        target = self._targets.get(url) or self._targets.setdefault(url, _Target.of(url))
        request = b"%s%d\r\n\r\n%s" % (target.head, len(body), body)
        try:
            async with asyncio.timeout(self.timeout), self._slots:
                return await self._exchange(target.origin, request)
        except TimeoutError:
            raise UpstreamTimeout(f"no answer within {self.timeout:g} s") from None

    async def _exchange(self, origin: tuple[str, int, bool], request: bytes) -> Reply:
        idle = self._idle.setdefault(origin, deque())
        while True:
            reused = False
            while idle and not reused:
                connection = idle.pop()  # the most recently used: the least likely to be timed out
                reused = connection.open
            if not reused:
                connection = await self._connect(origin)
            try:
                reply = await connection.send(request)
            except _Dropped as exc:
                if reused and not exc.answered:  # closed while idle, before this request: once more
                    continue
                raise UpstreamUnreachable(f"{exc} (the service closed the connection)") from None
            except BaseException:  # timed out or cancelled mid-answer: the connection is spoilt
                connection.close()
                raise
            if connection.open:
                idle.append(connection)
            return reply

    async def _connect(self, origin: tuple[str, int, bool]) -> _Connection:
        host, port, tls = origin
        if tls and self._tls is None:
            self._tls = ssl.create_default_context()
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                lambda: _Connection(self.max_answer_bytes), host, port, ssl=self._tls if tls else None)
        except OSError as exc:
            raise UpstreamUnreachable(f"{type(exc).__name__}: cannot connect to {host}:{port}") from None
        return connection
