"""Event lines sent by a remote writer, appended to run files exactly once.

A client (``mltrail sync``, later a training job logging to ``mltrail server``) sends a
run's lines as the run's own file holds them, in order, each batch only after the one
before it was acknowledged. Every event carries its run's sequence numbers (a dense
``metrics`` line the range ``seq .. seq + points - 1``), so the server knows what it
already has: a line whose numbers it holds is a resend and is dropped, the rest is
appended in one write and synced to disk before the answer. A batch is checked whole
before anything is written: one bad line refuses the batch. The server is each run
file's only writer; a tail a killed server left half-written was never acknowledged,
so it is cut off before the next append (the client sends it again).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import AlreadyExistsError, InvalidInputError, SchemaVersionError
from ..storage.blob_uploads import StagedBlobs
from ..storage.blobs import blobs_named
from ..storage.eventfiles import STOP_REQUEST, EventFolder, StopRequest
from ..storage.eventlog import parse_line, split_lines
from ..storage.events import EVENT_ADAPTER
from ..storage.ids import ULID_PATTERN
from ..storage.layout import Layout, experiment_dirname

RUN_ID = re.compile(ULID_PATTERN)  # see storage.ids


@dataclass(frozen=True)
class Appended:
    """What one batch did: lines written, lines already there, the run's last seq now."""

    written: int
    duplicates: int
    last_seq: int


class RunIngest:
    """Appends remote writers' lines to the run files of one store, exactly once."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._locks: dict[str, threading.Lock] = {}
        self._last_seq: dict[str, int] = {}
        self._paths: dict[str, Path | None] = {}
        self._experiments: dict[str, str] = {}
        self._guard = threading.Lock()
        self.staged = StagedBlobs(layout)

    def last_seq(self, run_id: str) -> int:
        """The last sequence number the run's file holds (0: no such run yet)."""
        _check_run_id(run_id)
        with self._lock(run_id):
            path = self._existing(run_id)
            return 0 if path is None else self._known_last(run_id, path)

    def append(self, experiment: str, run_id: str, body: bytes) -> Appended:
        """Append the lines of ``body`` the run's file does not hold yet."""
        _check_run_id(run_id)
        experiment_dirname(experiment)  # a name that cannot be a folder is refused here
        lines = _parsed(body, run_id)
        with self._lock(run_id):
            path = self._existing(run_id)
            if path is None:
                path = self.layout.run_file(experiment, run_id)
                first = lines[0][0] if lines else None
                if first is None or first.get("type") != "run_started" or first.get("seq") != 1:
                    raise InvalidInputError(f"run {run_id} is new here: its first line must be its run_started (seq 1)")
                if first.get("experiment") != experiment:
                    raise InvalidInputError(f"run {run_id} started in experiment {first.get('experiment')!r}, "
                                            f"not {experiment!r}")
                last = 0
            else:
                if path.parent.parent.name != experiment_dirname(experiment):
                    raise AlreadyExistsError(f"run {run_id} is in another experiment here ({path.parent.parent.name})")
                last = self._known_last(run_id, path)
            fresh = []
            for event, raw, (start, end) in lines:
                if end <= last:
                    continue  # a resend of what the file holds
                if start <= last:
                    raise InvalidInputError(f"line with seq {start}..{end} overlaps what run {run_id} holds (to {last})")
                fresh.append(raw)
                last = end
            if fresh:  # the blobs these lines name leave the uploads for blobs/ (git) before the lines land
                self.staged.adopt(sha256 for event, _, _ in lines for sha256 in blobs_named(event))
                self._paths[run_id] = path
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "ab") as handle:
                    handle.write(b"".join(fresh))
                    handle.flush()
                    os.fsync(handle.fileno())  # acknowledged means on disk
                self._last_seq[run_id] = last
            return Appended(len(fresh), len(lines) - len(fresh), last)

    def experiment_of(self, run_id: str) -> str | None:
        """The experiment a run here started in (None: no such run here yet)."""
        _check_run_id(run_id)
        if run_id not in self._experiments:
            path = self._existing(run_id)
            if path is None:
                return None
            with open(path, "rb") as handle:
                first = handle.readline()
            try:
                self._experiments[run_id] = str(parse_line(first)["experiment"])
            except (ValueError, KeyError, SchemaVersionError):  # a run file's first line is its start
                return None
        return self._experiments[run_id]

    def run_lines(self, run_id: str) -> bytes:
        """The whole lines of the run's file: what this server acknowledged (a torn tail,
        never acknowledged, is left out)."""
        _check_run_id(run_id)
        with self._lock(run_id):  # not while a batch is half-written
            path = self._existing(run_id)
            data = b"" if path is None else path.read_bytes()
        return data[:data.rfind(b"\n") + 1]

    def stop_requests(self, run_id: str) -> list[StopRequest]:
        """The requests to stop the run, oldest first (none for a run not here)."""
        _check_run_id(run_id)
        path = self._existing(run_id)
        return [] if path is None else EventFolder(self.layout.stop_requests(path), STOP_REQUEST,
                                                   "stop request").events()

    def _lock(self, run_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(run_id, threading.Lock())

    def _existing(self, run_id: str) -> Path | None:
        """The run's file here, looked for once per run (every batch of a run asks)."""
        path = self._paths.get(run_id)
        if path is None or not path.exists():
            found = sorted(self.layout.experiments.glob(f"*/runs/{run_id}.jsonl")) if self.layout.experiments.is_dir() else []
            path = self._paths[run_id] = found[0] if found else None
        return path

    def _known_last(self, run_id: str, path: Path) -> int:
        if run_id not in self._last_seq:
            self._last_seq[run_id] = _last_seq_of_file(path)
        return self._last_seq[run_id]


def _check_run_id(run_id: str) -> None:
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise InvalidInputError(f"{run_id!r} is not a run ID (26 characters of Crockford base32)")


def _parsed(body: bytes, run_id: str) -> list[tuple[dict[str, Any], bytes, tuple[int, int]]]:
    """Every line of ``body`` validated, with its bytes and its seq range, in order."""
    if body and not body.endswith(b"\n"):
        raise InvalidInputError("the last line does not end with a newline (a cut batch)")
    parsed = []
    previous = 0
    for number, raw in enumerate(split_lines(body), 1):
        try:
            event = parse_line(raw)
            model = EVENT_ADAPTER.validate_python(event)
        except (ValueError, SchemaVersionError) as exc:  # ValidationError is a ValueError
            raise InvalidInputError(f"line {number}: {_reason(exc)}") from None
        if model.run != run_id:
            raise InvalidInputError(f"line {number} belongs to run {model.run}, not {run_id}")
        if model.type == "run_started" and model.seq != 1:
            # a run's experiment is what its first line says, forever: a second start
            # naming another experiment would move the run where its sender may not write
            raise InvalidInputError(f"line {number}: a run_started is its run's first line (seq 1), "
                                    f"not seq {model.seq}")
        start = model.seq
        end = start + len(model.steps) - 1 if model.type == "metrics" else start
        if start <= previous:
            raise InvalidInputError(f"line {number}: seq {start} does not follow {previous} (lines go in order)")
        previous = end
        parsed.append((event, raw, (start, end)))
    return parsed


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)


def _last_seq_of_file(path: Path) -> int:
    """The end of the last whole line's seq range; a torn tail (a write cut by a killed
    server, never acknowledged) is cut off first: the client sends it again."""
    with open(path, "rb+") as handle:
        data = handle.read()
        whole = data.rfind(b"\n") + 1
        if whole < len(data):
            handle.truncate(whole)
    for raw in reversed(split_lines(data[:whole])):
        try:
            model = EVENT_ADAPTER.validate_python(parse_line(raw))
        except (ValueError, SchemaVersionError):
            continue  # a corrupt line holds no seq we can trust; the one before it does
        return model.seq + len(model.steps) - 1 if model.type == "metrics" else model.seq
    return 0
