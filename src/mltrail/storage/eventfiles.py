"""One-event-per-file folders: A/B lifecycles, the model registry, feature definitions.

Facts that several people or processes change (an experiment paused, an alias moved, a
view redefined) are each one immutable file named by a time-sortable ID, so no two
writers ever share a file and git branches merge as the union. Writing is whole or not
at all (a temporary file, then a rename); reading goes in name (= time) order and skips,
with a warning naming the file, what it cannot read.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from ..errors import SkippedLinesWarning


def write_event_file(folder: Path, name: str, event: BaseModel) -> Path:
    """Write ``event`` as ``folder/<name>.jsonl``, one line, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    tmp = folder / f".{path.name}.tmp"
    tmp.write_bytes(orjson.dumps(event.model_dump(mode="json", exclude_none=True)) + b"\n")
    os.replace(tmp, path)
    return path


def read_event_files(folder: Path, adapter: TypeAdapter[Any], what: str) -> list[Any]:
    """Every readable event in ``folder``, oldest first; a warning for each unreadable one."""
    events = []
    for path in sorted(folder.glob("*.jsonl")):
        try:
            events.append(adapter.validate_json(path.read_bytes()))
        except ValidationError as exc:  # tolerant reader: say which file, keep going
            warnings.warn(SkippedLinesWarning(f"{path}: unreadable {what} event ({exc.errors()[0]['msg']})"),
                          stacklevel=3)
    return events
