"""The HTTP calls a client makes to ``mltrail server``, over httpx. The server names the
error it raised, so a client raises the same exception a local store would.

What a :class:`Server` promises:

- One pool of keep-alive connections (one ``httpx.Client``, shared by the threads of a
  process): a job's background sender calls four times a second, and over TLS a new
  connection a call cost 2.4-3 times the client's CPU of a call on a kept one, besides each
  handshake's round trips (``benchmarks/bench_client_calls.py``, docs/benchmarks.md).
- A call never outlives its caller's deadline: inside ``with server.deadline(at):`` each
  call's timeouts (connecting, sending, waiting for the answer, waiting for a pooled
  connection) are what is left until ``at``, and no call starts once it has passed (a job's
  exit waits at most ``MLTRAIL_UPLOAD_WAIT_SECONDS``, however a server hangs).
- ``server.abort()`` breaks the calls other threads have in flight (a background sender
  stuck on a server that accepted the connection and never answers): it shuts down the
  sockets of this Server's connections, which wakes a thread blocked reading one.
- Every failure is an MltrailError: the server's error as its own type (else the type of
  its status), a connection refused, broken or timed out as UpstreamError naming the server
  and what did not happen in time.
- A download goes to its file a MiB at a time: a 2 GB model never sits in memory. What is
  sent is bounded by its callers: a blob goes in parts of at most 8 MiB
  (:mod:`mltrail.remote.blob_upload`), a run's lines in batches.
- httpx is imported with this module, when a remote store is opened: ``import mltrail``
  does not load it.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from .. import errors
from ..errors import (
    InvalidInputError,
    MltrailError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UpstreamError,
    WrongStateError,
)

ACTING_AS = "X-Mltrail-Acting-As"  # with an admin's token: act as this user (a dashboard's signed-in user)

# uvicorn (``mltrail server``) drops a connection idle for 5 s: the client lets go of it first,
# else a call could go out on a connection the server is closing at that moment
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0)

# httpx writes a request's headers and its body apart: with Nagle's algorithm the body could
# wait for the server's ACK of the headers (urllib3 sets TCP_NODELAY by default for the same reason)
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

DOWNLOAD_BLOCK = 1 << 20  # bytes a download holds in memory at a time

# the events of httpcore's "trace" extension that hand over a new connection's stream
_CONNECTED = frozenset({"connection.connect_tcp.complete", "connection.start_tls.complete"})

_WAITING_FOR = {httpx.ConnectTimeout: "connecting", httpx.WriteTimeout: "sending the request",
                httpx.ReadTimeout: "waiting for the answer", httpx.PoolTimeout: "waiting for a free connection"}


class Server:
    """One server's calls: JSON or raw answers, its errors raised as their own types.
    ``acting_as``: with an admin's token, each call is made as that user (the server
    checks their levels, and records them as who acted). ``transport``: where the requests
    go instead of the network (tests: an ``httpx.MockTransport``).

        server = Server("http://host:5050", token)
        server.call("GET", "/api/v1/whoami")["user"]
        server.close()  # (the pool is also let go when the Server is collected)
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0,
                 acting_as: str | None = None, *, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.acting_as = acting_as
        self._transport = transport
        self._local = threading.local()  # this thread's deadline
        self._client: httpx.Client | None = None  # made on the first call: a Server costs nothing until used
        self._closer: weakref.finalize[[], Server] | None = None
        self._client_lock = threading.Lock()
        self._sockets: set[socket.socket] = set()  # the sockets of this Server's connections
        self._sockets_lock = threading.Lock()

    @contextlib.contextmanager
    def deadline(self, at: float) -> Iterator[None]:
        """The calls this thread makes inside end by ``at`` (``time.monotonic()``): each
        one's timeout is what is left, and none starts once it has passed."""
        before = getattr(self._local, "deadline", None)
        self._local.deadline = at if before is None else min(before, at)
        try:
            yield
        finally:
            self._local.deadline = before

    def abort(self) -> None:
        """Break every call in flight now (each raises UpstreamError in its thread). The
        idle connections of the pool go too: the next call opens a new one."""
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # closed meanwhile: that call is over anyway
                # (socket's own shutdown, not SSLSocket's, which drops the TLS state under the reader)
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        """Let go of the pooled connections. A call after it opens a new pool."""
        with self._client_lock:
            closer, self._client, self._closer = self._closer, None, None
        if closer is not None:
            closer()

    def call(self, method: str, path: str, body: bytes | None = None, missing_ok: bool = False,
             raw: bool = False) -> Any:
        """``method`` ``path`` (with its query) on the server, ``body`` sent as bytes; the
        answer as JSON, or its bytes with ``raw``. ``missing_ok``: None for a 404."""
        try:
            with self._open(method, path, body) as reply:
                data = reply.read()
        except NotFoundError:
            if missing_ok:
                return None
            raise
        return data if raw else orjson.loads(data)

    def download(self, path: str, target: Path) -> str:
        """GET ``path`` into the file ``target``, a MiB at a time (a 2 GB model never sits
        in memory); the sha256 of what arrived."""
        digest = hashlib.sha256()
        with self._open("GET", path, None) as reply, open(target, "wb") as out:
            for block in reply.iter_bytes(DOWNLOAD_BLOCK):
                digest.update(block)
                out.write(block)
        return digest.hexdigest()

    def _timeout(self, method: str, path: str) -> float:
        deadline = getattr(self._local, "deadline", None)
        if deadline is None:
            return self.timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise UpstreamError(f"no time left to reach {self.url}: {method} {path.split('?')[0]} was not sent")
        return min(self.timeout, left)

    @contextlib.contextmanager
    def _open(self, method: str, path: str, body: bytes | None) -> Iterator[httpx.Response]:
        """The reply to one request, open (its body not read yet), within this thread's
        deadline; the server's error raised as its own type, a connection lost on the way
        (before the answer or in the middle of it) as UpstreamError."""
        timeout = self._timeout(method, path)
        where = f"{method} {path.split('?')[0]}"
        client = self._pool()
        request = client.build_request(method, f"{self.url}{path}", content=body, headers=self._headers(body),
                                       timeout=timeout, extensions={"trace": self._traced})
        try:
            reply = client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamError(self._too_slow(exc, where, timeout)) from None
        except httpx.RequestError as exc:
            raise UpstreamError(f"cannot reach {self.url}: {where}: {_reason(exc)}") from None
        try:
            if not reply.is_success:
                raise self._refused(reply, where)
            yield reply
        except httpx.TimeoutException as exc:
            raise UpstreamError(self._too_slow(exc, where, timeout)) from None
        except httpx.RequestError as exc:  # the server went away mid-answer (or was aborted)
            raise UpstreamError(f"cannot reach {self.url}: {where}: the connection broke mid-answer "
                                f"({_reason(exc)})") from None
        finally:
            reply.close()

    def _pool(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None or self._client.is_closed:
                transport = self._transport or httpx.HTTPTransport(verify=_tls_context(self.url), limits=LIMITS,
                                                                   socket_options=NO_DELAY)
                self._client = httpx.Client(transport=transport, follow_redirects=True)
                # a Server dropped without close() closes its sockets (else each one warns as it is collected)
                self._closer = weakref.finalize(self, self._client.close)
                # ... but not at exit: a remote store's own exit handler still sends its last lines then
                # (finalizers registered after it would run before it), and the process's end closes them
                self._closer.atexit = False
            return self._client

    def _headers(self, body: bytes | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.acting_as:
            headers[ACTING_AS] = self.acting_as
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        return headers

    def _traced(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace of a call: keeps each new connection's socket, for abort()."""
        if event not in _CONNECTED:
            return
        sock = info["return_value"].get_extra_info("socket")
        with self._sockets_lock:
            # closed ones go (and a TCP socket that TLS took over reads as closed: fileno -1)
            self._sockets = {known for known in self._sockets if known.fileno() != -1}
            if sock is not None:
                self._sockets.add(sock)

    def _too_slow(self, exc: httpx.TimeoutException, where: str, timeout: float) -> str:
        waiting = _WAITING_FOR.get(type(exc), "waiting")
        return f"cannot reach {self.url}: {where} timed out {waiting} (after {timeout:.3g} s)"

    def _refused(self, reply: httpx.Response, where: str) -> MltrailError:
        try:
            answer = orjson.loads(reply.read())
        except (orjson.JSONDecodeError, httpx.RequestError):  # not JSON, or cut short: the status says it
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        return _error(answer, reply.status_code, f"{self.url} refused {where} ({reply.status_code})")


def _tls_context(url: str) -> ssl.SSLContext:
    """The system's trust store, as the standard library's client used (httpx's default is
    certifi's bundle, which would refuse a company's own CA). An http:// server gets a
    context that trusts nothing: loading the trust store costs 50 ms a Server, for nothing
    (a redirect to https then fails its certificate check: give the https URL)."""
    if url.startswith("https:"):
        return ssl.create_default_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _reason(exc: httpx.RequestError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


_BY_STATUS: dict[int, type[MltrailError]] = {
    401: InvalidInputError, 403: PermissionDeniedError, 404: NotFoundError, 409: WrongStateError,
    413: PayloadTooLargeError, 422: InvalidInputError}


def _error(answer: dict[str, Any], status: int, where: str) -> MltrailError:
    """The exception the server raised, as that type (its message as the server said it:
    a FilterSyntaxError keeps its caret under the position), else one for the status."""
    named = getattr(errors, str(answer.get("type")), None)
    kind = named if isinstance(named, type) and issubclass(named, MltrailError) else _BY_STATUS.get(
        status, UpstreamError)
    error = kind.__new__(kind)  # some types take structured arguments: only the message travels
    Exception.__init__(error, answer.get("error") or where)
    return error
