"""Sending a run file's lines to ``mltrail server``: in order, each batch after the one
before was acknowledged, from where the last send stopped. The server keeps each line
once (:mod:`mltrail.tracking.ingest`), so a send cut short is simply sent again."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import SchemaVersionError, UpstreamError
from ..storage.blobs import blobs_named
from ..storage.eventlog import parse_line, split_lines
from ..storage.events import EVENT_ADAPTER
from .http import Server

BATCH_BYTES = 8 << 20


def whole_lines_from(path: Path, offset: int) -> bytes:
    """The whole lines of a file from byte ``offset`` on: a line still being written waits."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    return data[:data.rfind(b"\n") + 1]


class RunUpload:
    """One run file's progress towards the server."""

    def __init__(self, server: Server, path: Path, send_blob: Callable[[str], None] | None = None) -> None:
        self.server = server
        self.path = path
        self.send_blob = send_blob  # called for each blob a line to be sent names, before it is sent
        self.run_id = path.stem
        self.offset = 0  # bytes of the file the server holds (or that are unreadable)
        self.last_seq: int | None = None  # the server's, once asked
        self.experiment: str | None = None
        self.finished = False  # the run's end is on the server
        self.lines_skipped = 0  # unreadable lines of the file, left behind
        self.blobs_named: set[str] = set()  # by the lines read so far

    def send(self, batch_bytes: int = BATCH_BYTES) -> int:
        """Send the whole lines written since the last send that the server lacks; the
        number of lines sent. Raises UpstreamError when the server cannot be reached."""
        data = whole_lines_from(self.path, self.offset)
        if not data:
            return 0
        lines = list(self._readable(data))
        if self.experiment is None:
            if not lines or lines[0][0].get("type") != "run_started":
                return 0  # no readable start: nothing the server could file it under
            self.experiment = lines[0][0]["experiment"]
        if self.last_seq is None:
            self.last_seq = self.server.call("GET", f"/api/v1/runs/{self.run_id}/last-seq")["last_seq"]
        query = urllib.parse.urlencode({"experiment": self.experiment})
        sent = 0
        batch: list[bytes] = []
        size = 0
        ends: bool | None = None  # does the last line sent end the run?
        for event, raw, end in lines:
            self.blobs_named.update(blobs_named(event))
            if end > self.last_seq:
                if self.send_blob is not None:
                    for sha256 in blobs_named(event):
                        self.send_blob(sha256)
                batch.append(raw)
                size += len(raw)
                ends = event.get("type") == "run_finished"
            if size >= batch_bytes:
                sent += self._post(query, batch)
                batch, size = [], 0
        sent += self._post(query, batch)
        self.offset += len(data)
        if ends is not None:  # (only once the server took it: a refused end is not on the server)
            self.finished = ends
        return sent

    def last_seq_here(self) -> int:
        """The last seq the file's whole, readable lines hold (0: none)."""
        last = 0
        for _, _, end in self._readable(whole_lines_from(self.path, 0)):
            last = end
        return last

    def _post(self, query: str, batch: list[bytes]) -> int:
        if batch:
            try:
                answer = self.server.call("POST", f"/api/v1/runs/{self.run_id}/events?{query}", b"".join(batch))
            except UpstreamError:
                self.last_seq = None  # ask again once it is back: it may have lost an unacknowledged tail
                raise
            self.last_seq = answer["last_seq"]
        return len(batch)

    def _readable(self, data: bytes) -> Iterator[tuple[dict[str, Any], bytes, int]]:
        """Each readable line with the last seq it holds; an unreadable one is left behind
        (the server, which checks each line the same way, would refuse its batch)."""
        for raw in split_lines(data):
            try:
                event = parse_line(raw)
                model = EVENT_ADAPTER.validate_python(event)
            except (ValueError, SchemaVersionError):
                self.lines_skipped += 1
                continue
            yield event, raw, model.seq + len(model.steps) - 1 if model.type == "metrics" else model.seq
