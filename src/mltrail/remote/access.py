"""``store.access`` against a server: grants by whoever manages the object; users and
groups are made on the server's machine (``mltrail users|groups --store PATH``)."""

from __future__ import annotations

import urllib.parse
from typing import Any

import orjson
import pandas as pd

from .http import NotOnServerError, Server
from .wire import read_frame


def _path(kind: str, name: str) -> str:
    return f"/api/v1/access/{urllib.parse.quote(kind, safe='')}/{urllib.parse.quote(name, safe='')}"


class RemoteAccess:
    """Grants on the server's objects, as the caller's token allows."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def grant(self, kind: str, name: str, to: str, level: str, reason: str | None = None, *,
              by: str | None = None) -> None:
        del by  # the server records the caller
        self.server.call("POST", _path(kind, name), orjson.dumps({"to": to, "level": level, "reason": reason}))

    def revoke(self, kind: str, name: str, to: str, reason: str | None = None, *, by: str | None = None) -> None:
        del by
        self.server.call("DELETE", f"{_path(kind, name)}/{urllib.parse.quote(to, safe='')}",
                         orjson.dumps({"reason": reason}))

    def show(self, kind: str, name: str) -> pd.DataFrame:
        return read_frame(self.server.call("GET", _path(kind, name), raw=True))

    def my_level(self, kind: str, name: str) -> str | None:
        """The caller's level on an object: read, edit, manage, or None."""
        return self.server.call("GET", f"{_path(kind, name)}/mine")["level"]

    def whoami(self) -> dict[str, Any]:
        """The caller as the server knows them: name, admin, groups; and whether it has users."""
        return dict(self.server.call("GET", "/api/v1/whoami"))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotOnServerError(f"store.access.{name}: users and groups are made on the server's machine "
                                "(mltrail users|groups --store PATH)")
