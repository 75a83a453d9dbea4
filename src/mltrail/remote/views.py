"""``store.views`` against a server: views are read as the server answers them (only those
whose experiments the caller may read) and saved or deleted by the server, which checks
the filter, the caller's reach and that only a view's author (or an admin) changes it."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence

import orjson

from ..errors import NotFoundError
from ..storage.layout import FOLDER_NAME, Layout
from ..tracking.views import SavedView, SavedViews
from .http import Server


def _path(name: str) -> str:
    return "/api/v1/views/" + urllib.parse.quote(str(name), safe="")


def _check_name(name: str) -> None:
    """A name no view can have is not found, as a folder answers it (and never sent: "." or
    ".." in a path would name another route)."""
    if not isinstance(name, str) or not re.fullmatch(FOLDER_NAME, name):
        raise NotFoundError(f"no saved view {str(name)[:100]!r}")


class RemoteSavedViews(SavedViews):
    def __init__(self, server: Server, spool: Layout) -> None:
        super().__init__(spool)  # nothing of it is read or written: the server keeps the views
        self.server = server

    def all(self) -> list[SavedView]:
        return [SavedView.from_dict(view) for view in self.server.call("GET", "/api/v1/views")]

    def exists(self, name: str) -> bool:
        return name in self.names()

    def get(self, name: str) -> SavedView:
        _check_name(name)
        return SavedView.from_dict(self.server.call("GET", _path(name)))

    def save(self, name: str, *, experiments: Sequence[str] | None = None, filter: str | None = None,
             order_by: Sequence[str] | str | None = None, columns: Sequence[str] | None = None,
             charts: Sequence[str] | None = None, group_by: Sequence[str] | None = None, band: str = "std",
             x: str = "step", smoothing: float = 0.0, description: str | None = None,
             by: str | None = None) -> SavedView:
        body = {"experiments": [experiments] if isinstance(experiments, str) else list(experiments or []),
                "filter": filter or "", "order_by": [order_by] if isinstance(order_by, str) else list(order_by or []),
                "columns": list(columns or []), "charts": list(charts or []), "group_by": list(group_by or []),
                "band": band, "x": x, "smoothing": smoothing, "description": description or "", "by": by}
        return SavedView.from_dict(self.server.call("PUT", _path(name), orjson.dumps(body)))

    def delete(self, name: str, *, by: str | None = None) -> None:
        _check_name(name)
        self.server.call("DELETE", _path(name), orjson.dumps({"by": by}))
