"""``store.reports`` against a server: reports are read as the server answers them and
saved or deleted by the server, which lets only a report's author (or an admin) change it.
Their blocks are drawn here, by the caller's own reads: a reader sees the runs they may."""

from __future__ import annotations

import re
import urllib.parse

import orjson
import pandas as pd

from ..errors import NotFoundError
from ..storage.layout import FOLDER_NAME, Layout
from ..tracking.reports import Report, Reports, check_name
from .http import Server


def _path(name: str) -> str:
    return "/api/v1/reports/" + urllib.parse.quote(str(name), safe="")


class RemoteReports(Reports):
    def __init__(self, server: Server, spool: Layout) -> None:
        super().__init__(spool)  # nothing of it is read or written: the server keeps the reports
        self.server = server

    def names(self) -> list[str]:
        return [r["name"] for r in self.server.call("GET", "/api/v1/reports")]

    def list(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.server.call("GET", "/api/v1/reports"), columns=["name", "title", "author", "updated"])
        frame["updated"] = pd.to_datetime(frame["updated"], unit="s", utc=True)
        return frame

    def exists(self, name: str) -> bool:
        return name in self.names()

    def get(self, name: str) -> Report:
        if not isinstance(name, str) or not re.fullmatch(FOLDER_NAME, name):  # (as a folder answers it)
            raise NotFoundError(f"no report {str(name)[:100]!r}")
        return Report(**self.server.call("GET", _path(name)))

    def save(self, name: str, text: str, *, by: str | None = None) -> Report:
        check_name(name)
        return Report(**self.server.call("PUT", _path(name), orjson.dumps({"text": text, "by": by})))

    def delete(self, name: str, *, by: str | None = None) -> None:
        if not isinstance(name, str) or not re.fullmatch(FOLDER_NAME, name):
            raise NotFoundError(f"no report {str(name)[:100]!r}")
        self.server.call("DELETE", _path(name), orjson.dumps({"by": by}))
