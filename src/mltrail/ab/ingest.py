"""Exposure and feedback log segments sent by remote routers, appended exactly once.

A router logging to ``mltrail server`` writes its segments into a local spool exactly as
a local store would (:mod:`.logging`: one writer per segment file) and sends each
segment's new whole lines with the offset they start at. A segment has one writer and
only grows, so the offset says what the server already holds: bytes before the server's
size are a resend, and are dropped only once they are found equal to the bytes held
there (a resend that differs is refused whole: cutting it at the server's size could
append half a line); the rest is appended in one write and synced before the answer. A
batch is checked whole before anything is written: every line, split on ``\\n`` only as
every reader splits, an exposure or a feedback of this experiment within the bounds the
local writer keeps (:mod:`mltrail.storage.ab_events`). A tail a killed server left
half-written was never acknowledged: it is cut off before the next append, and sent again.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from pydantic import ValidationError

from ..errors import InvalidInputError, WrongStateError
from ..storage.ab_events import LOG_LINE_ADAPTER
from .experiment import AbRegistry

SEGMENT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}-[0-9]{4,9}\.jsonl$")  # <writer ULID>-<n>.jsonl


class AbLogIngest:
    """Appends remote routers' log lines to the segment files of one store."""

    def __init__(self, ab: AbRegistry) -> None:
        self.ab = ab
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    def size(self, key: str, segment: str) -> int:
        """The bytes of whole lines the server holds of a segment (0: none yet)."""
        path = self._path(key, segment)
        with self._lock(path):
            return _whole_size(path)

    def append(self, key: str, segment: str, offset: int, body: bytes) -> int:
        """Append the part of ``body`` (lines starting at byte ``offset`` of the segment)
        the server lacks; the segment's size after. An offset past what the server holds
        is refused (WrongStateError): the sender starts again from the size it is told. So
        is a resend whose bytes differ from the ones held from ``offset``: nothing of it is
        written."""
        path = self._path(key, segment)
        if offset < 0:
            raise InvalidInputError(f"an offset is a byte count of the segment (0 or more), not {offset!r}")
        _check_lines(body, key)
        with self._lock(path):
            size = _whole_size(path)
            if offset > size:
                raise WrongStateError(f"segment {segment} of {key!r} holds {size} bytes here, "
                                      f"not {offset}: send from {size}")
            resent = min(size - offset, len(body))
            if offset < size and _held(path, offset, resent) != body[:resent]:
                raise WrongStateError(
                    f"segment {segment} of {key!r}: the bytes sent from offset {offset} differ from the "
                    f"ones held here (a segment has one writer and only grows: was its file rewritten?); "
                    f"nothing was appended. Log into a new segment (a new process) to send these lines")
            fresh = body[resent:]
            if fresh:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "ab") as handle:
                    handle.write(fresh)
                    handle.flush()
                    os.fsync(handle.fileno())  # acknowledged means on disk
            return size + len(fresh)

    def _path(self, key: str, segment: str) -> Path:
        self.ab.lifecycle(key)  # the experiment exists (and its key is a name, not a path)
        if not isinstance(segment, str) or not SEGMENT.fullmatch(segment):
            raise InvalidInputError(f"{segment!r} is not a log segment's name (<writer ID>-<number>.jsonl)")
        return self.ab.log_folder(key) / segment

    def _lock(self, path: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(path, threading.Lock())


def _whole_size(path: Path) -> int:
    """The segment's size up to its last newline; a torn tail is cut off first."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if not size:
        return 0
    with open(path, "rb+") as handle:
        handle.seek(max(0, size - (1 << 20)))
        tail = handle.read()
        cut = tail.rfind(b"\n")
        whole = size - len(tail) + cut + 1
        if whole < size:
            handle.truncate(whole)
    return whole


def _held(path: Path, offset: int, count: int) -> bytes | None:
    """The ``count`` bytes the segment holds from ``offset``; None when no line starts there."""
    with open(path, "rb") as handle:
        if offset:
            handle.seek(offset - 1)
            if handle.read(1) != b"\n":
                return None
        return handle.read(count)


def _check_lines(body: bytes, key: str) -> None:
    if body and not body.endswith(b"\n"):
        raise InvalidInputError("the last line does not end with a newline (a cut batch)")
    # "\n" alone ends a line, as for every reader of the segment: splitlines() would also
    # split on a lone "\r" and acknowledge lines no reader can read
    for number, raw in enumerate(body.split(b"\n")[:-1], 1):
        try:
            line = LOG_LINE_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the line"
            hint = " (lines end with \\n; a lone \\r ends none)" if b"\r" in raw else ""
            raise InvalidInputError(f"line {number}: {where}: {first['msg']}{hint}") from None
        if line.experiment != key:
            raise InvalidInputError(f"line {number} belongs to experiment {line.experiment!r}, not {key!r}")
