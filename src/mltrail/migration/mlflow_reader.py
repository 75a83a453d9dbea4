"""Reading the runs of an ``mlruns`` folder in other processes, ahead of the importer.

Reading a run folder (a stat and a parse of each of its small files) is most of a first
import's CPU, and the GIL keeps threads to one core. :func:`read_ahead` hands runs, in
chunks, to reader processes (``python -m mltrail.migration.mlflow_reader``, started with
pipes: not ``multiprocessing``, whose spawn runs the caller's main script again in each
worker, so that a script without an ``if __name__ == "__main__"`` guard would fail), and
gives their contents back in the runs' order while the importer builds and writes the
events of the ones before. A reader that fails (killed, or its process cannot start) costs
speed only: the runs it had are read here.

The protocol is pickles with a length before each: the parent sends ``(jobs, racy_seconds)``
and gets the list of results back. Both ends are this package, on this machine.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from . import mlflow_source
from .metric_lines import metric_lines
from .mlflow_source import FolderSource, MlflowSource, Point, RunContent, SourceError, SourceRun, read_content

PARALLEL_FROM = 500  # runs to read before reader processes pay for their start (~0.5 s each)
CHUNK = 32  # runs a reader takes at once: one round trip each
AHEAD = 4  # chunks a reader holds at most (their jobs stay within a pipe's buffer: no write blocks)
COMMAND = [sys.executable, "-m", "mltrail.migration.mlflow_reader"]  # a reader process
_LENGTH = struct.Struct("!Q")

# (the mlruns folder, the run's folder, its artifact_uri, its mltrail ID if new to the store)
Job = tuple[str, str, str | None, str | None]


def read_ahead(source: MlflowSource, runs: Sequence[SourceRun], scratch: Path,
               new_ids: Sequence[str | None]) -> Iterator[RunContent | SourceError]:
    """The content of each run, in order; read by reader processes when there are many runs
    of an mlruns folder (through MLflow's client, here: it downloads into ``scratch``). A run
    with an ID in ``new_ids`` (new to the store) read by a reader comes with its metric
    lines built (:attr:`RunContent.metric_lines`): the rest of a first import's CPU."""
    workers = min(4, os.cpu_count() or 1)
    if not isinstance(source, FolderSource) or len(runs) < PARALLEL_FROM or workers < 2:
        for run in runs:
            yield read_content(run.content, scratch, run.where)
        return
    jobs = [(str(source.root), run.where, run.artifact_uri, new_id) for run, new_id in zip(runs, new_ids, strict=True)]
    chunks = [jobs[i:i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    readers = [_Reader() for _ in range(workers)]
    try:
        window: deque[tuple[_Reader | None, list[Job]]] = deque()
        for number, chunk in enumerate(chunks):
            reader: _Reader | None = readers[number % workers]
            if reader is not None and not reader.send(chunk, mlflow_source.RACY_SECONDS):
                reader = None  # (read here when its turn comes)
            window.append((reader, chunk))
            if len(window) >= AHEAD * workers:
                yield from _results(*window.popleft())
        while window:
            yield from _results(*window.popleft())
    finally:
        for reader in readers:
            reader.close()


def _results(reader: _Reader | None, chunk: list[Job]) -> list[RunContent | SourceError]:
    results = reader.receive() if reader is not None else None
    return results if results is not None else read_runs(chunk)


def read_runs(jobs: list[Job]) -> list[RunContent | SourceError]:
    """The contents of runs of mlruns folders, or why each cannot be read."""
    sources: dict[str, FolderSource] = {}
    results: list[RunContent | SourceError] = []
    for root, run_dir, artifact_uri, new_id in jobs:
        source = sources.get(root) or sources.setdefault(root, FolderSource(Path(root)))
        folder = Path(run_dir)
        result = read_content(source._content(folder, folder.parent, artifact_uri), Path(), run_dir)
        if new_id is not None and isinstance(result, RunContent):
            try:
                result.metric_lines = metric_lines(new_id, 1, result.metrics)
                result.metrics = {}
            except ValidationError:  # (the importer builds them again, and says why it cannot)
                pass
        results.append(result)
    return results


def _packed(results: list[RunContent | SourceError]) -> list[RunContent | SourceError]:
    """Metric points as plain tuples: a pickle round trip of a run's 100 points took 26 µs as
    tuples, against 190 µs for its whole content with the points as dataclasses."""
    for result in results:
        if isinstance(result, RunContent):
            result.metrics = {key: [(p.timestamp_ms, p.value, p.step, p.dataset_name, p.dataset_digest)  # type: ignore[misc]
                                    for p in points] for key, points in result.metrics.items()}
    return results


def _unpacked(results: list[RunContent | SourceError]) -> list[RunContent | SourceError]:
    for result in results:
        if isinstance(result, RunContent):
            result.metrics = {key: [Point(*p) for p in points]  # type: ignore[misc]
                              for key, points in result.metrics.items()}
    return results


class _Reader:
    """One reader process and the chunks it was sent, oldest first."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])  # (where this mltrail is: also a checkout's)
        # (no empty entry: it would put the working folder, whatever it holds, on the reader's path)
        path = [entry for entry in (package_root, os.environ.get("PYTHONPATH")) if entry]
        self.process: subprocess.Popen[bytes] | None = None
        if not COMMAND[0]:  # (an embedded interpreter has no sys.executable)
            return
        try:
            self.process = subprocess.Popen(COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
        except OSError:
            pass

    def send(self, chunk: list[Job], racy_seconds: float) -> bool:
        if self.process is None:
            return False
        try:
            _write(self.process.stdin, (chunk, racy_seconds))
            return True
        except OSError:
            self.close()
            return False

    def receive(self) -> list[RunContent | SourceError] | None:
        """The results of the oldest chunk sent; None when the reader failed."""
        if self.process is None:
            return None
        try:
            return _unpacked(_read(self.process.stdout))
        except (OSError, EOFError, pickle.UnpicklingError):
            self.close()
            return None

    def close(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _write(pipe: IO[bytes] | None, message: Any) -> None:
    assert pipe is not None
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(_LENGTH.pack(len(data)) + data)
    pipe.flush()


def _read(pipe: IO[bytes] | None) -> Any:
    assert pipe is not None
    head = pipe.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the reader ended")
    (length,) = _LENGTH.unpack(head)
    data = pipe.read(length)
    if len(data) < length:
        raise EOFError("the reader ended mid-answer")
    return pickle.loads(data)  # (our own child's answer)


def main() -> None:
    """A reader process: chunks of jobs in on stdin, their results out on stdout, until EOF."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            jobs, racy_seconds = _read(stdin)
        except EOFError:
            return
        mlflow_source.RACY_SECONDS = racy_seconds  # (the importer's, which a test may have changed)
        try:
            _write(stdout, _packed(read_runs(jobs)))
        except BrokenPipeError:  # the importer stopped early (an error, ^C): nothing to say
            return


if __name__ == "__main__":
    main()
