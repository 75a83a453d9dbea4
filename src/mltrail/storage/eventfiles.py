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
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..errors import SkippedLinesWarning
from .atomic import write_atomic
from .fields import Timestamp
from .ids import ULID_PATTERN
from .layout import stat_signature


class FileEvent(BaseModel):
    """The envelope of an event that is a file of its own and named by its ``id``
    (registry and feature store events): schema version, type, time, ID, who."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = 1  # each kind of file event is still at its first schema
    type: str
    ts: Timestamp
    id: Annotated[str, Field(pattern=ULID_PATTERN)]  # also the file's name: never a path
    by: str | None = None


def write_event_file(folder: Path, name: str, event: BaseModel) -> Path:
    """Write ``event`` as ``folder/<name>.jsonl``, one line, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    write_atomic(path, orjson.dumps(event.model_dump(mode="json", exclude_none=True)) + b"\n")
    return path


class EventFolder:
    """A folder's events, oldest first. Each call lists the folder (one ``listdir``) and
    reads only files it has not read: the router re-checks an experiment every second
    and the online feature lookup reads the definitions on every call. Written files
    never change, but one may be caught half-written (a ``git pull`` or ``cp`` writing
    in place): a file that could not be read is read again once its size or mtime
    changed, so a long-lived reader catches up with a fresh one."""

    def __init__(self, folder: Path, adapter: TypeAdapter[Any], what: str) -> None:
        self.folder = folder
        self.adapter = adapter
        self.what = what
        self._names: list[str] = []
        self._events: dict[str, Any] = {}
        self._unreadable: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns) when it failed

    def events(self) -> list[Any]:
        try:
            names = sorted(n for n in os.listdir(self.folder) if n.endswith(".jsonl") and not n.startswith("."))
        except FileNotFoundError:
            return []
        changed = [n for n, seen in self._unreadable.items() if stat_signature(self.folder / n) != seen]
        if names != self._names or changed:
            for name in names:
                if name not in self._events or name in changed:
                    self._read(name)
            self._names = names
        return [self._events[n] for n in names if self._events.get(n) is not None]

    def _read(self, name: str) -> None:
        path = self.folder / name
        signature = stat_signature(path)
        event = _read_one(path, self.adapter, self.what)
        self._events[name] = event
        if event is None and signature is not None:
            self._unreadable[name] = signature
        else:
            self._unreadable.pop(name, None)


def _read_one(path: Path, adapter: TypeAdapter[Any], what: str) -> Any:
    try:
        return adapter.validate_json(path.read_bytes())
    except FileNotFoundError:  # removed since it was listed (a git checkout)
        return None
    except ValidationError as exc:
        warnings.warn(SkippedLinesWarning(f"{path}: unreadable {what} event ({exc.errors()[0]['msg']})"),
                      stacklevel=4)
        return None


class StopRequest(FileEvent):
    """Someone asked a running run to stop: ``experiments/<exp>/stop/<run>/<id>.jsonl``
    (see :meth:`~mltrail.storage.layout.Layout.stop_requests`)."""

    type: Literal["stop_requested"] = "stop_requested"
    run: str
    reason: str | None = None


STOP_REQUEST = TypeAdapter(StopRequest)
