"""The append-only event log: a strict writer and a tolerant reader of ``.jsonl`` files.

Writer: every flush is one ``write()`` of whole lines to a file opened with
``O_APPEND``; a file shared by several processes is appended under an exclusive
cross-process lock, so lines from two writers never interleave. A file left with a
torn last line (its writer was killed mid-write) gets a newline before the next
append, so the fragment stays one bad line and the new events stay intact.

Reader: reads whole lines from a byte offset, never the unfinished tail, and never
raises on a bad line: it yields :class:`BadLine` records that say where and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

from ..errors import SchemaVersionError
from .events import EVENT_TYPES, SCHEMA_VERSION


@dataclass(frozen=True)
class BadLine:
    """A line a reader skipped."""

    file: str
    line: int  # 1-based
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class EventWriter:
    """Appends serialised lines to one event file.

    A file with one writer (a run's file: the run is its only writer) needs no lock:
    each flush is a single ``O_APPEND`` write. A file that several processes append to
    passes ``lock_path``; every append then holds that cross-process lock, so lines
    of two writers never interleave and a torn line left by one is isolated.
    """

    def __init__(self, path: Path, lock_path: Path | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock: FileLock | None = None
        if lock_path is not None:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(lock_path))
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._needs_newline = self._lock is None and self._ends_torn()

    def _ends_torn(self) -> bool:
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        return bool(size) and _last_byte(self.path, size) != b"\n"

    def append(self, data: bytes) -> None:
        """Append ``data`` (whole lines, each ending in a newline) in one write."""
        if not data:
            return
        if self._fd is None:
            raise ValueError(f"event file {self.path} is closed")
        if self._lock is None:
            self._write(b"\n" + data if self._needs_newline else data)
            self._needs_newline = False
            return
        with self._lock:
            self._write(b"\n" + data if self._ends_torn() else data)

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def sync(self) -> None:
        """Make what was appended durable (fsync)."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        return handle.read(1)


_BOUNDARY = b'},{"v":'


def events_to_lines(events: list[dict[str, Any]]) -> bytes:
    """Serialise events as JSON lines with one orjson call for the whole batch.

    One ``dumps`` per event is five times slower: each call allocates a bytes object,
    and thousands of them alive at once are what costs. The batch is a JSON array;
    the text ``},{"v":`` can only be the boundary between two events, because a
    quote inside a JSON string is always escaped and no event holds an array of
    objects, and every event starts with its ``v`` field.
    """
    array = orjson.dumps(events)
    return array[1:-1].replace(_BOUNDARY, b'}\n{"v":') + b"\n"


@dataclass
class Chunk:
    """Whole lines read from one file, from ``start`` to ``end`` (byte offsets)."""

    data: bytes
    start: int
    end: int
    first_line: int  # 1-based number of the first line in data
    torn_tail: bool  # bytes after ``end`` that do not end in a newline (yet)
    lines: int  # whole lines in data


def read_chunk(path: Path, offset: int = 0, first_line: int = 1) -> Chunk:
    """The whole lines of ``path`` from ``offset``; an unterminated tail is left unread."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    cut = data.rfind(b"\n") + 1
    whole = data[:cut] if cut < len(data) else data
    return Chunk(whole, offset, offset + cut, first_line, torn_tail=cut < len(data),
                 lines=whole.count(b"\n"))


def split_lines(data: bytes) -> list[bytes]:
    """The whole lines of ``data``, each with its newline; an unfinished tail is left out.

    A line ends at ``\\n`` and nowhere else, as every reader here splits:
    ``bytes.splitlines`` also splits at a lone ``\\r``, so a writer using it would
    acknowledge two lines that its readers see as one unreadable line."""
    return [line + b"\n" for line in data[:data.rfind(b"\n") + 1].split(b"\n")[:-1]]


def parse_line(raw: bytes | bytearray) -> dict[str, Any]:
    """Parse one line into an event dict; raise ValueError saying what is wrong."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(event, dict):
        raise ValueError("not a JSON object")
    version = event.get("v")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("no schema version 'v' (a whole number from 1)")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"written by a newer mltrail (event schema v{version}; this version reads "
            f"up to v{SCHEMA_VERSION}): upgrade mltrail to read it"
        )
    kind = event.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r}")
    return event


def lost_points(raw: bytes) -> str:
    """What a bad dense ``metrics`` line cost, for its report: how many points it held
    (at least, when the line was cut inside its list of steps)."""
    if b'"type":"metrics"' not in raw:
        return ""
    start = raw.find(b'"steps":[')
    if start < 0:
        return " (a line of metric points: how many cannot be read)"
    body = raw[start + 9:]
    end = body.find(b"]")
    numbers = (body if end < 0 else body[:end]).strip()
    count = numbers.count(b",") + 1 if numbers else 0
    return f" ({'at least ' if end < 0 else ''}{count} metric points lost)"


def iter_events(chunk: Chunk, file: str) -> tuple[list[tuple[int, dict[str, Any]]], list[BadLine]]:
    """Parse every line of a chunk: (line number, event) pairs, and the bad lines."""
    events: list[tuple[int, dict[str, Any]]] = []
    bad: list[BadLine] = []
    for number, raw in enumerate(chunk.data.split(b"\n")[:-1], start=chunk.first_line):
        if not raw.strip():
            continue
        try:
            events.append((number, parse_line(raw)))
        except (ValueError, SchemaVersionError) as exc:
            bad.append(BadLine(file, number, str(exc) + lost_points(raw)))
    return events, bad


def read_events(path: Path, file: str | None = None) -> tuple[list[dict[str, Any]], list[BadLine]]:
    """All readable events of one file, and the lines that were skipped."""
    chunk = read_chunk(path)
    numbered, bad = iter_events(chunk, file or str(path))
    events = [event for _, event in numbered]
    if chunk.torn_tail:
        bad.append(BadLine(file or str(path), chunk.data.count(b"\n") + 1,
                           "incomplete last line (its writer stopped mid-write)"))
    return events, bad


def read_first_event(path: Path) -> dict[str, Any] | None:
    """The first event of a file (a run's ``run_started``), or None if unreadable."""
    try:
        with open(path, "rb") as handle:
            line = handle.readline()
        return parse_line(line) if line.endswith(b"\n") else None
    except (OSError, ValueError, SchemaVersionError):
        return None
