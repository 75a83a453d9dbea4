"""``store.access`` against a server: grants by whoever manages the object; users and
groups are made on the server's machine (``mltrail users|groups --store PATH``)."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from ..errors import NotOnServerError
from .http import Server
from .wire import read_frame

if TYPE_CHECKING:
    from ..access.control import AccessState, User

_ON_THE_SERVER = ("store.access.{}: users and groups are made and read on the server's machine "
                  "(mltrail users|groups --store PATH)")


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

    # -- users and groups: made on the server's machine --------------------------------

    def enabled(self) -> bool:
        """Whether the server has users (then every call needs a user's token)."""
        return bool(self.whoami()["users"])

    def users(self) -> pd.DataFrame:
        raise NotOnServerError(_ON_THE_SERVER.format("users"))

    def groups(self) -> pd.DataFrame:
        raise NotOnServerError(_ON_THE_SERVER.format("groups"))

    def history(self) -> pd.DataFrame:
        raise NotOnServerError(_ON_THE_SERVER.format("history"))

    def add_user(self, name: str, admin: bool = False, *, by: str | None = None) -> str:
        raise NotOnServerError(_ON_THE_SERVER.format("add_user"))

    def remove_user(self, name: str, *, by: str | None = None) -> None:
        raise NotOnServerError(_ON_THE_SERVER.format("remove_user"))

    def rotate_token(self, name: str) -> str:
        raise NotOnServerError(_ON_THE_SERVER.format("rotate_token"))

    def add_members(self, group: str, members: list[str], *, by: str | None = None) -> None:
        raise NotOnServerError(_ON_THE_SERVER.format("add_members"))

    def remove_member(self, group: str, member: str, *, by: str | None = None) -> None:
        raise NotOnServerError(_ON_THE_SERVER.format("remove_member"))

    def user(self, name: str) -> User:
        raise NotOnServerError(_ON_THE_SERVER.format("user"))

    def authenticate(self, token: str) -> User | None:
        raise NotOnServerError("store.access.authenticate checks tokens where they are kept, on the server's "
                               "machine; a client's token is checked by the server on every call (whoami())")

    def level(self, user: User, kind: str, name: str, default: str | None = None) -> str | None:
        raise NotOnServerError("store.access.level(user, ...) reads another user's grants on the server's "
                               "machine; against a server, my_level(kind, name) is the caller's own level")

    def state(self) -> AccessState:
        raise NotOnServerError(_ON_THE_SERVER.format("state"))
