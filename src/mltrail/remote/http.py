"""The HTTP calls a client makes to ``mltrail server``, over the standard library's client
(a handful of calls: no dependency for it). The server names the error it raised, so a
client raises the same exception a local store would."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
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
            try:
                while block := reply.read(1 << 20):
                    digest.update(block)
                    out.write(block)
            except (OSError, http.client.HTTPException) as exc:
                raise UpstreamError(f"cannot reach {self.url}: the download broke off ({type(exc).__name__}: {exc})") from None
        return digest.hexdigest()

    @contextlib.contextmanager
    def _open(self, method: str, path: str, body: bytes | None) -> Iterator[Any]:
        """The reply to one request, open; the server's error raised as its own type."""
        request = urllib.request.Request(f"{self.url}{path}", data=body, method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if self.acting_as:
            request.add_header(ACTING_AS, self.acting_as)
        if body is not None:
            request.add_header("Content-Type", "application/octet-stream")
        try:
            reply = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            try:
                answer = orjson.loads(exc.read())
            except (orjson.JSONDecodeError, http.client.HTTPException, OSError):
                answer = {}
            raise _error(answer, exc.code, f"{self.url} refused {method} {path.split('?')[0]} ({exc.code})") from None
        except (urllib.error.URLError, OSError) as exc:
            raise UpstreamError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None
        except http.client.HTTPException as exc:  # the server went away mid-answer (IncompleteRead...)
            raise UpstreamError(f"cannot reach {self.url}: the connection broke mid-answer "
                                f"({type(exc).__name__}: {exc})") from None
        with reply:
            try:
                yield reply
            except (urllib.error.URLError, OSError) as exc:
                raise UpstreamError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None
            except http.client.HTTPException as exc:
                raise UpstreamError(f"cannot reach {self.url}: the connection broke mid-answer "
                                    f"({type(exc).__name__}: {exc})") from None


_BY_STATUS = {401: InvalidInputError, 403: PermissionDeniedError, 404: NotFoundError, 409: WrongStateError, 413: PayloadTooLargeError,
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
