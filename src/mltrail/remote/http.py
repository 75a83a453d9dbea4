"""The HTTP calls a client makes to ``mltrail server``, over the standard library's client
(a handful of calls: no dependency for it). The server names the error it raised, so a
client raises the same exception a local store would.

A call never outlives its caller's deadline: inside ``with server.deadline(at):`` each
call's timeout is what is left until ``at`` (a job's exit waits at most
``MLTRAIL_UPLOAD_WAIT_SECONDS``, however a server hangs), and ``server.abort()`` breaks the
calls other threads have in flight (a background sender stuck on a server that accepted
the connection and never answers).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


class NotOnServerError(MltrailError, AttributeError):
    """A store call that a store behind a server does not offer (``hasattr`` is False)."""


ACTING_AS = "X-Mltrail-Acting-As"  # with an admin's token: act as this user (a dashboard's signed-in user)


class Server:
    """One server's calls: JSON or raw answers, its errors raised as their own types.
    ``acting_as``: with an admin's token, each call is made as that user (the server
    checks their levels, and records them as who acted)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0,
                 acting_as: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.acting_as = acting_as
        self._local = threading.local()  # this thread's deadline
        self._sockets: set[socket.socket] = set()  # the connections of the calls in flight
        self._sockets_lock = threading.Lock()
        self._opener = urllib.request.build_opener(_Http(self), _Https(self))

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
        """Break every call in flight now (each raises UpstreamError in its thread)."""
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # closed meanwhile: that call is over anyway
                sock.shutdown(socket.SHUT_RDWR)

    def _timeout(self, method: str, path: str) -> float:
        deadline = getattr(self._local, "deadline", None)
        if deadline is None:
            return self.timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise UpstreamError(f"no time left to reach {self.url}: {method} {path.split('?')[0]} was not sent")
        return min(self.timeout, left)

    def _opened(self, sock: socket.socket) -> None:
        with self._sockets_lock:
            self._sockets.add(sock)
        self._local.sockets = [*getattr(self._local, "sockets", []), sock]

    def _call_over(self) -> None:
        with self._sockets_lock:
            self._sockets.difference_update(getattr(self._local, "sockets", []))
        self._local.sockets = []

    def call(self, method: str, path: str, body: bytes | None = None, missing_ok: bool = False,
             raw: bool = False) -> Any:
        try:
            with self._open(method, path, body) as reply:
                data = reply.read()
                return data if raw else orjson.loads(data)
        except NotFoundError:
            if missing_ok:
                return None
            raise

    def download(self, path: str, target: Path) -> str:
        """GET ``path`` into the file ``target``, a MiB at a time (a 2 GB model never sits
        in memory); the sha256 of what arrived."""
        digest = hashlib.sha256()
        with self._open("GET", path, None) as reply, open(target, "wb") as out:
            while block := reply.read(1 << 20):
                digest.update(block)
                out.write(block)
        return digest.hexdigest()

    @contextlib.contextmanager
    def _open(self, method: str, path: str, body: bytes | None) -> Iterator[Any]:
        """The reply to one request, open, within this thread's deadline; the server's
        error raised as its own type, a connection lost on the way as UpstreamError."""
        timeout = self._timeout(method, path)
        request = urllib.request.Request(f"{self.url}{path}", data=body, method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if self.acting_as:
            request.add_header(ACTING_AS, self.acting_as)
        if body is not None:
            request.add_header("Content-Type", "application/octet-stream")
        try:
            try:
                reply = self._opener.open(request, timeout=timeout)
            except urllib.error.HTTPError as exc:
                try:
                    answer = orjson.loads(exc.read())
                except (orjson.JSONDecodeError, http.client.HTTPException, OSError):
                    answer = {}
                raise _error(answer, exc.code, f"{self.url} refused {method} {path.split('?')[0]} ({exc.code})") from None
            with reply:
                yield reply
        except (urllib.error.URLError, OSError) as exc:
            raise UpstreamError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None
        except http.client.HTTPException as exc:  # the server went away mid-answer (IncompleteRead...)
            raise UpstreamError(f"cannot reach {self.url}: the connection broke mid-answer "
                                f"({type(exc).__name__}: {exc})") from None
        finally:
            self._call_over()


class _Http(urllib.request.HTTPHandler):
    """urllib's handler, its connections known to their Server (which may break them)."""

    def __init__(self, server: Server) -> None:
        super().__init__()
        self.server = server

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_tracked(http.client.HTTPConnection, self.server), req)


class _Https(urllib.request.HTTPSHandler):
    def __init__(self, server: Server) -> None:
        super().__init__()
        self.server = server

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_tracked(http.client.HTTPSConnection, self.server), req,
                            context=self._context)  # type: ignore[attr-defined]


def _tracked(kind: type[http.client.HTTPConnection], server: Server) -> Any:
    def connection(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
        made = kind(*args, **kwargs)
        connect = made.connect

        def connected() -> None:
            connect()
            server._opened(made.sock)

        made.connect = connected  # type: ignore[method-assign]
        return made

    return connection


_BY_STATUS: dict[int, type[MltrailError]] = {401: InvalidInputError, 403: PermissionDeniedError, 404: NotFoundError, 409: WrongStateError, 413: PayloadTooLargeError,
              422: InvalidInputError}


def _error(answer: dict[str, Any], status: int, where: str) -> MltrailError:
    """The exception the server raised, as that type (its message as the server said it:
    a FilterSyntaxError keeps its caret under the position), else one for the status."""
    kind = getattr(errors, str(answer.get("type")), None)
    if not (isinstance(kind, type) and issubclass(kind, MltrailError)):
        kind = _BY_STATUS.get(status, UpstreamError)
    error = kind.__new__(kind)  # some types take structured arguments: only the message travels
    Exception.__init__(error, answer.get("error") or where)
    return error
