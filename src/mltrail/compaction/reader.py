"""Reading new whole lines of event files, for every compactor (runs and A/B logs).

One reader, one set of promises: only bytes past a file's recorded offset are read; an
unfinished last line is left for the next compaction; a line that cannot be read is
skipped and reported as a :class:`~mltrail.storage.eventlog.BadLine` with its file and
line number, and costs only itself. Progress per file is a
:class:`~mltrail.compaction.manifest.FileProgress`, kept in a manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pajson

from ..storage.eventlog import BadLine
from .manifest import FileProgress

Progress = Callable[[int, int], None]
# pyarrow's JSON reader parses blocks of this size on its threads: several blocks a
# compaction batch keep both cores busy (a line longer than a block is read per line)
BLOCK_BYTES = 4 << 20
# (path, name in the manifest, what was read, size when listed)
Todo = list[tuple[str | Path, str, FileProgress | None, int]]


@dataclass
class Span:
    """Where one file's new whole lines sit in the read buffer."""

    rel: str
    start: int
    end: int
    first_line: int
    lines: int


@dataclass
class NewBytes:
    """The new whole lines of several files, back to back in one buffer."""

    buffer: bytearray
    spans: list[Span] = field(default_factory=list)
    files_read: int = 0
    bytes_read: int = 0


def load_new_bytes(todo: Todo, files: dict[str, FileProgress], progress: Progress | None = None) -> NewBytes:
    """Read every file's unread whole lines, up to its size when it was listed, into one
    buffer and advance ``files`` (bytes appended since are read next time).

    One buffer and ``readinto``: no bytes object per file and no join. A file removed
    since it was listed is passed over (the caller's scan notices and rebuilds).
    """
    buffer = bytearray(sum(max(size - (known.offset if known else 0), 0) for _, _, known, size in todo))
    loaded = NewBytes(buffer)
    view = memoryview(buffer)
    pos = 0
    for done, (path, rel, known, size) in enumerate(todo, 1):
        offset, first_line = (known.offset, known.line) if known else (0, 1)
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                got = handle.readinto(view[pos:pos + max(size - offset, 0)])
        except FileNotFoundError:  # removed since it was listed (a git checkout)
            continue
        end = max(buffer.rfind(b"\n", pos, pos + got) + 1, pos)  # pos: no whole line yet
        lines = buffer.count(b"\n", pos, end)
        files[rel] = FileProgress(offset + end - pos, offset + got, first_line + lines)
        loaded.files_read += 1
        loaded.bytes_read += end - pos
        if end > pos:
            loaded.spans.append(Span(rel, pos, end, first_line, lines))
        pos = end
        if progress:
            progress(done, len(todo))
    view.release()
    return loaded


def in_batches(todo: Todo, limit: int) -> Iterator[tuple[Todo, int]]:
    """``todo`` in batches of about ``limit`` new bytes (a file is never split), each with
    the number of files in the batches before it: a compaction's memory is a batch's."""
    batch: Todo = []
    size = before = 0
    for item in todo:
        batch.append(item)
        size += item[3] - (item[2].offset if item[2] else 0)
        if size >= limit:
            yield batch, before
            before += len(batch)
            batch, size = [], 0
    if batch:
        yield batch, before


def read_columnar(buffer: bytearray, spans: list[Span], schema: pa.Schema) -> pa.Table | None:
    """The spans' lines (contiguous in ``buffer``) as a table of ``schema``'s columns, or
    None when pyarrow's JSON reader cannot read them all (a corrupt line, a blank line):
    the caller then reads those spans line by line to find out where."""
    start, end = spans[0].start, spans[-1].end
    try:
        table = pajson.read_json(
            pa.BufferReader(pa.py_buffer(buffer).slice(start, end - start)),  # zero-copy
            read_options=pajson.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != sum(span.lines for span in spans):
        return None
    return table


def bad_line_records(bad: list[BadLine]) -> list[dict[str, object]]:
    """Skipped lines as the manifest keeps them."""
    return [{"file": b.file, "line": b.line, "reason": b.reason} for b in bad]
