"""Compaction: turn the event files into Parquet tables.

Promises (each has a test):

- **Incremental.** Only bytes not read before are read; an unchanged store costs one
  ``stat`` per event file and writes nothing.
- **Deterministic and idempotent.** The same events give the same table contents in
  the same order, whether compacted in one go or in many steps; compacting twice
  changes nothing; ``rebuild=True`` gives the same tables from the events alone.
- **Safe while writers append.** Only whole lines are read; an unfinished last line
  is left for the next compaction.
- **Safe while another compaction runs.** Compactions take a cross-process lock;
  new files become visible in one atomic manifest replacement.
- **Tolerant.** A corrupt line is skipped and reported with its file and line; a
  file that shrank or disappeared (a ``git checkout`` of another branch) triggers a
  rebuild, never a wrong table.

How the work stays proportional to what changed (a store of 100,000 ended runs with one
live run, refreshed every few seconds by the dashboard's Live page):

- **Reading** is in batches of ``BATCH_BYTES`` of new lines: pyarrow's JSON reader takes
  a batch whole, dense metric lines are exploded in Arrow, and only the few other lines
  (a run's start, params, end) are parsed one by one. Memory is bounded by a batch, not
  by the store.
- **The metric history** is append-only Parquet, one file per experiment partition
  (``metrics/experiment=<name>/``) per compaction; a partition's similar-sized parts are
  merged once it has many (size-tiered, so a big part is not rewritten by small ones).
- **The small tables** live in memory between compactions in one process as the last
  written Arrow tables plus dicts of state. ``runs`` and ``latest_metrics`` are sorted by
  run: a compaction that touched a few runs cuts their blocks out and puts the new rows
  in (zero-copy slices), and ``latest_metrics`` is merged in Arrow from per-key summaries
  (last point, min, max, count, best). The files are still written whole (~0.1 s for
  100,000 runs); params, tags, artifacts and datasets only when they changed.
- **The manifest** keeps the progress of ended runs' files in sealed, immutable files
  (see ``manifest``): a commit rewrites only the live files' progress.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from filelock import FileLock
from pydantic import ValidationError

from ..errors import InvalidKeyError, SchemaVersionError, StoreCorruptError
from ..storage.eventlog import BadLine, Chunk, iter_events, parse_line
from ..storage.events import EVENT_ADAPTER, EVENT_TYPES, NONFINITE_VALUES, SCHEMA_VERSION, Metric, Metrics, RunEvent
from ..storage.fields import LATEST_TS, dataset_text_problem
from ..storage.layout import EDITS_FOLDER, Layout, check_key, partition_name
from ..storage.naming import IMPORTED_ID_TAG, NamedRun, derive_run_names
from ..storage.run_edits import NAME_TAG, NOTES_TAG, RUN_EDIT, Overlay, RunEdit, edit_rows
from . import buckets, schemas
from .manifest import (TABLES_FORMAT, FileProgress, Manifest, collect_sealed_garbage, commit_manifest,
                       committed_bytes, load_manifest)
from .reader import Progress, Span, Todo, bad_line_records, in_batches, load_new_bytes, read_columnar
from .scan import scan

MAX_METRIC_PARTS = 24  # merge the metric history's part files beyond this many
BATCH_BYTES = 16 << 20  # new event bytes parsed at a time: bounds a compaction's memory
ROW_GROUP_ROWS = 1 << 20
SMALL_TABLES = ("runs", "experiments", "params", "tags", "latest_metrics", "artifacts", "datasets", "run_edits")
_TABLE_OF_EVENT = {"run_started": "tags", "params": "params", "tags": "tags",
                   "tag_deleted": "tags", "artifact": "artifacts", "dataset": "datasets"}
# The last committed state of each store's small tables, kept between compactions in
# one process so that folding in a few new lines does not reread every table; it is used
# only while the manifest it was committed with is still the committed one, byte for byte
# (a path and a generation are not enough: a store copied over the path, or rebuilt
# elsewhere to the same generation, has other tables).
_states: dict[Path, tuple[bytes, _TableState]] = {}

# Columns the fast columnar reader extracts; every other field is read per event.
_POINT_SCHEMA = pa.schema([  # a one-point `metric` line (schema 1), and the points of any line
    ("v", pa.int64()), ("type", pa.string()), ("ts", pa.float64()), ("run", pa.string()),
    ("seq", pa.int64()), ("key", pa.string()), ("value", pa.float64()),
    ("step", pa.int64()), ("best", pa.bool_()), ("nonfinite", pa.string()),
    ("dataset_name", pa.string()), ("dataset_digest", pa.string()),
])
_DENSE_FIELDS = [  # a dense `metrics` line (schema 2): lists, exploded in Arrow
    ("keys", pa.list_(pa.string())), ("k", pa.list_(pa.int64())), ("steps", pa.list_(pa.int64())),
    ("values", pa.list_(pa.float64())), ("dts", pa.list_(pa.int64())), ("best_at", pa.list_(pa.int64())),
    ("special_at", pa.list_(pa.int64())), ("special", pa.list_(pa.string())),
    ("datasets", pa.list_(pa.list_(pa.string()))), ("d", pa.list_(pa.int64())),
]
_FAST_SCHEMA = pa.schema([*_POINT_SCHEMA, *_DENSE_FIELDS])
_POINTS = pa.schema([f for f in _POINT_SCHEMA if f.name not in ("v", "type")])  # what a point is


@dataclass
class CompactionResult:
    """What one compaction read, wrote and skipped."""

    files_seen: int = 0
    files_read: int = 0
    bytes_read: int = 0
    events_read: int = 0
    metric_points: int = 0
    lines_read_one_by_one: int = 0  # in files holding a bad line: the slow, tolerant path
    bad_lines: list[BadLine] = field(default_factory=list)
    tables_written: list[str] = field(default_factory=list)
    rebuilt: bool = False
    generation: int = 0
    seconds: float = 0.0

    @property
    def lines_skipped(self) -> int:
        return len(self.bad_lines)

    @property
    def noop(self) -> bool:
        return not self.tables_written

    def summary(self) -> str:
        if self.noop:
            return f"up to date ({self.files_seen} event files, generation {self.generation})"
        return (
            f"read {self.bytes_read:,} bytes from {self.files_read} of {self.files_seen} files: "
            f"{self.events_read:,} events ({self.metric_points:,} metric points), "
            f"skipped {self.lines_skipped} bad lines; wrote {', '.join(self.tables_written)} "
            f"in {self.seconds:.2f}s{' (rebuilt)' if self.rebuilt else ''}"
        )


def compact(layout: Layout, rebuild: bool = False, progress: Progress | None = None) -> CompactionResult:
    """Bring the Parquet tables up to date with the event files."""
    started = time.perf_counter()
    layout.tables.mkdir(parents=True, exist_ok=True)
    layout.locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(layout.lock_file("compaction"))):
        try:
            shared = load_manifest(layout.tables)  # read-only: most compactions find nothing to do
        except StoreCorruptError:
            if not rebuild:
                raise  # its message says to rebuild
            shared = Manifest(generation=_highest_generation(layout.tables))
        # tables from before the history was partitioned by experiment: DuckDB, Spark or
        # Trino cannot read `metrics/` as a hive dataset until they are rebuilt, once
        rebuild = rebuild or any(not rel.startswith("metrics/experiment=") for rel in shared.tables.get("metrics", []))
        rebuild = rebuild or bool(shared.tables and shared.tables_format < TABLES_FORMAT)  # tables of an older shape
        result = CompactionResult(rebuilt=rebuild, generation=shared.generation)
        found = scan(layout, Manifest() if rebuild else shared)
        result.files_seen = found.files_seen
        if not found.todo and not rebuild and not found.must_rebuild and _has_bucket_sums(shared):
            if found.folders != shared.folders:  # remember folders now old enough to trust
                updated = load_manifest(layout.tables, private=True)
                updated.folders = found.folders
                before, cached = committed_bytes(layout.tables), _states.get(layout.tables)
                committed = commit_manifest(layout.tables, updated)
                if cached is not None and cached[0] == before:  # the tables did not change
                    _states[layout.tables] = (committed, cached[1])
            result.seconds = time.perf_counter() - started
            return result
        if rebuild or found.must_rebuild:
            manifest = Manifest(generation=shared.generation)
            result.rebuilt = True
            found = scan(layout, manifest)
        else:
            manifest = load_manifest(layout.tables, private=True)
        manifest.folders = found.folders
        _Compaction(layout, manifest, result, progress).run(found.todo)
        result.seconds = time.perf_counter() - started
        return result


def _has_bucket_sums(manifest: Manifest) -> bool:
    """Whether the metric history's bucket sums were decided (a store compacted before they
    were kept gets them at its next compaction, new lines or not)."""
    return buckets.FOLDER in manifest.tables or not manifest.tables.get("metrics")


def _highest_generation(tables_dir: Path) -> int:
    """The newest generation any file under the tables names: a rebuild past an unreadable
    manifest numbers its files after them, never over them."""
    numbers = [int(match.group(1)) for path in tables_dir.rglob("*")
               if (match := re.match(r"(?:part-)?(\d{8})", path.name))]
    return max(numbers, default=0)


class _Compaction:
    """One compaction's work: read new lines, fold them into the tables, commit."""

    def __init__(self, layout: Layout, manifest: Manifest, result: CompactionResult,
                 progress: Progress | None) -> None:
        self.layout = layout
        self.manifest = manifest
        self.result = result
        self.progress = progress
        cached = _states.pop(layout.tables, None)  # popped: a failed compaction drops it
        if result.rebuilt:
            self.state = _TableState()
        elif cached is not None and cached[0] == committed_bytes(layout.tables):
            self.state = cached[1]
        else:
            self.state = _TableState.load(layout.tables, manifest)

    def run(self, todo: Todo) -> None:
        gen = self.manifest.generation + 1
        edits = [item for item in todo if _is_edit(item[1])]
        todo = [item for item in todo if not _is_edit(item[1])]
        history = _HistoryWriter(self.layout.tables, gen)
        try:
            for batch, done in in_batches(todo, BATCH_BYTES):
                spans = self._load(batch, done, len(todo))
                metrics = self._read(spans)
                del self.buffer  # bounded memory: one batch's bytes and points at a time
                self.state.add_metrics(metrics)
                history.write(_by_experiment(metrics, self.state.runs))
                self.result.metric_points += metrics.num_rows
        finally:
            new_parts = history.close()
        for _, rel, _, _ in todo:  # an ended run's file gets no more appends
            progress = self.manifest.files.get(rel)
            run = self.state.runs.get(rel.rsplit("/", 1)[-1].removesuffix(".jsonl"))
            if progress is not None and run is not None:
                self.manifest.files[rel] = dataclasses.replace(progress, done=run["status"] != "RUNNING")
        self._read_edits(edits)
        self._commit(gen, new_parts)

    def _read_edits(self, todo: Todo) -> None:
        """Fold in the edit files (``edits/<id>.jsonl``): each is one line written whole
        once, so it is read whole. One caught half-written (no final newline: a ``git
        pull`` writing in place) is read again when its size changes."""
        for path, rel, _, _ in todo:
            try:
                raw = Path(path).read_bytes()
            except FileNotFoundError:  # removed since it was listed: the scan rebuilds next time
                continue
            whole = raw.endswith(b"\n")
            self.manifest.files[rel] = FileProgress(len(raw) if whole else 0, len(raw), raw.count(b"\n") + 1, done=whole)
            self.result.files_read += 1
            if not whole:
                continue
            self.result.bytes_read += len(raw)
            for number, line in enumerate(raw.splitlines(), 1):
                try:
                    edit = RUN_EDIT.validate_json(line)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    self.result.bad_lines.append(BadLine(rel, number, f"invalid run edit: {where}: {first['msg']}"))
                    continue
                self.state.apply_edit(edit)
                self.result.events_read += 1

    # -- reading ---------------------------------------------------------------------

    def _load(self, todo: Todo, before: int, total: int) -> list[Span]:
        """Read a batch of ``todo``; ``before`` files of ``total`` were read in earlier batches."""
        def progress(done: int, _: int) -> None:
            if self.progress:
                self.progress(before + done, total)

        loaded = load_new_bytes(todo, self.manifest.files, progress)
        self.buffer = loaded.buffer
        self.result.files_read += loaded.files_read
        self.result.bytes_read += loaded.bytes_read
        return loaded.spans

    def _read(self, spans: list[Span]) -> pa.Table:
        """Parse all spans; apply non-metric events; return the new metric points."""
        if not spans:
            return schemas.empty_metric_points()
        try:
            return self._read_columnar(spans)
        except _NotFast:
            parts = []
            for span in spans:
                try:
                    parts.append(self._read_columnar([span]))
                except _NotFast:
                    parts.append(self._read_per_line(span))
            return pa.concat_tables(parts)

    def _read_columnar(self, spans: list[Span]) -> pa.Table:
        """The fast path: pyarrow's JSON reader over the spans' bytes (contiguous) at once."""
        table = read_columnar(self.buffer, spans, _FAST_SCHEMA)
        if table is None:
            raise _NotFast  # a corrupt or blank line: the per-line reader says where
        kinds = table["type"]
        ts = table["ts"]
        if (table["v"].null_count or pc.max(table["v"]).as_py() > SCHEMA_VERSION or pc.min(table["v"]).as_py() < 1
                or not pc.all(pc.is_in(kinds, pa.array(sorted(EVENT_TYPES)))).as_py()
                or table["run"].null_count or ts.null_count
                or pc.min(ts).as_py() < 0 or pc.max(ts).as_py() > LATEST_TS):  # (NaN ts: max is NaN)
            raise _NotFast
        is_point = pc.equal(kinds, "metric")
        is_dense = pc.equal(kinds, "metrics")
        is_metric = pc.or_(is_point, is_dense)
        metrics = table.filter(is_point).select(_POINTS.names)
        dense = table.filter(is_dense)
        nonfinite = metrics["nonfinite"]
        if metrics.num_rows and (
                metrics["key"].null_count or metrics["step"].null_count or metrics["seq"].null_count
                or pc.min(metrics["seq"]).as_py() < 0
                or pc.any(pc.and_(pc.is_null(metrics["value"]), pc.is_null(nonfinite))).as_py()
                or not set(pc.unique(nonfinite.drop_null()).to_pylist()) <= set(NONFINITE_VALUES)
                or _bad_dataset_links(metrics["dataset_name"], metrics["dataset_digest"])):
            raise _NotFast
        if dense.num_rows:
            metrics = pa.concat_tables([metrics, _explode_dense(dense)])
        other_rows = np.flatnonzero(~is_metric.to_numpy(zero_copy_only=False))
        span_starts = np.cumsum([0] + [span.lines for span in spans])
        # each span's share of the few non-metric lines, found by bisection: a scan of
        # all of them per span is quadratic in the number of runs
        bounds = np.searchsorted(other_rows, span_starts)
        for i, span in enumerate(spans):
            rows = (other_rows[bounds[i]:bounds[i + 1]] - span_starts[i]).tolist()
            for row, line in _lines_at(self.buffer, span.start, span.end, span.lines, rows):
                self._apply_line(line, span.rel, span.first_line + row)
        self.result.events_read += table.num_rows
        return _metric_points(metrics)

    def _read_per_line(self, span: Span) -> pa.Table:
        """The tolerant path, for a file holding a corrupt line."""
        rel = span.rel
        self.result.lines_read_one_by_one += span.lines
        chunk = Chunk(bytes(self.buffer[span.start:span.end]), span.start, span.end,
                      span.first_line, torn_tail=False, lines=span.lines)
        events, bad = iter_events(chunk, rel)
        self.result.bad_lines.extend(bad)
        rows: dict[str, list[Any]] = {name: [] for name in _POINTS.names}
        for line, event in events:
            if event.get("type") in ("metric", "metrics"):
                model = self._validate(event, rel, line)
                if not isinstance(model, (Metric, Metrics)):  # None: invalid, in bad_lines already
                    continue
                for point in _points_of(model):
                    for name in _POINTS.names:
                        rows[name].append(point.get(name))
                self.result.events_read += 1
            else:
                self._apply(event, rel, line)
                self.result.events_read += 1
        return _metric_points(pa.table(rows, schema=_POINTS))

    def _validate(self, event: dict[str, Any], rel: str, line: int) -> RunEvent | None:
        try:
            return EVENT_ADAPTER.validate_python(event)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            self.result.bad_lines.append(BadLine(rel, line, f"invalid {event.get('type')} event: {where}: {first['msg']}"))
            return None

    def _apply_line(self, raw: bytes | bytearray, rel: str, line: int) -> None:
        """A non-metric line pyarrow read (its version and type are checked already).
        Parsed and validated in one pass; one that fails goes the per-event way, which
        says what is wrong (it may also be beyond orjson: nested too deep)."""
        try:
            model = EVENT_ADAPTER.validate_json(raw)
        except ValidationError:
            model = None
        if model is not None:
            self._apply_model(model, rel, line)
            return
        try:
            event = parse_line(raw)
        except (ValueError, SchemaVersionError) as exc:
            self.result.bad_lines.append(BadLine(rel, line, str(exc)))
            return
        self._apply(event, rel, line)

    def _apply(self, event: dict[str, Any], rel: str, line: int) -> None:
        model = self._validate(event, rel, line)
        if model is not None:
            self._apply_model(model, rel, line)

    def _apply_model(self, model: RunEvent, rel: str, line: int) -> None:
        try:
            self.state.apply(model, rel)
        except _Contradicts as exc:
            self.result.bad_lines.append(BadLine(rel, line, str(exc)))

    # -- writing ---------------------------------------------------------------------

    def _commit(self, gen: int, new_parts: list[str]) -> None:
        manifest = self.manifest
        manifest.generation = gen
        written = []
        for name, table in self.state.tables().items():
            rel = f"{name}/part-{gen:08d}.parquet"
            _write(self.layout.tables / rel, table)
            manifest.tables[name] = [rel]
            written.append(name)
        parts = [] if self.result.rebuilt else list(manifest.tables.get("metrics", []))
        if new_parts:
            written.append("metrics")
        manifest.tables["metrics"] = self._merged(parts + new_parts, gen)
        sums = self._bucket_sums(manifest.tables["metrics"], set(new_parts))
        if sums != manifest.tables.get(buckets.FOLDER):
            written.append(buckets.FOLDER)
        manifest.tables[buckets.FOLDER] = sums
        histograms = self._histogram_parts(gen)
        if histograms != manifest.tables.get("histograms", []):
            written.append("histograms")
        if histograms:
            manifest.tables["histograms"] = histograms
        else:  # (a store without one lists no table of them: as stores made before them)
            manifest.tables.pop("histograms", None)
        manifest.bad_lines = (manifest.bad_lines + bad_line_records(self.result.bad_lines))[-1000:]
        committed = commit_manifest(self.layout.tables, manifest)
        self.state.dirty.clear()
        _states[self.layout.tables] = (committed, self.state)
        self.result.tables_written = written
        self.result.generation = gen
        _collect_garbage(self.layout, manifest)

    def _bucket_sums(self, history: list[str], fresh: set[str]) -> list[str]:
        """The metric history's bucket sums (see :mod:`.buckets`), a file beside each part:
        those committed before and those written beside this compaction's new parts are kept;
        a merged part's are written (and every part's, the first time a store made before
        them is compacted)."""
        committed = set(self.manifest.tables.get(buckets.FOLDER, []))
        sums = []
        for part in history:
            rel = buckets.rel_of(part)
            if (rel in committed or part in fresh) and (self.layout.tables / rel).is_file():
                sums.append(rel)
            else:
                sums.append(buckets.write_sums(self.layout.tables, part))
        return sums

    def _histogram_parts(self, gen: int) -> list[str]:
        """The histograms' part files: those committed before (none on a rebuild), and one
        for this compaction's new histograms, if any; merged into one past MAX_METRIC_PARTS.
        Appended, as the metric history is: a table of every histogram is never rewritten
        for one more."""
        parts = [] if self.result.rebuilt else list(self.manifest.tables.get("histograms", []))
        rows, self.state.new_histograms = self.state.new_histograms, []
        if rows:
            rel = f"histograms/part-{gen:08d}.parquet"
            _write(self.layout.tables / rel, pa.Table.from_pylist(rows, schemas.HISTOGRAMS))
            parts.append(rel)
        if len(parts) > MAX_METRIC_PARTS:
            merged = pa.concat_tables(pq.read_table(self.layout.tables / rel, schema=schemas.HISTOGRAMS)
                                      for rel in parts)
            rel = f"histograms/part-{gen:08d}-merged.parquet"
            _write(self.layout.tables / rel, merged)
            parts = [rel]
        return parts

    def _merged(self, parts: list[str], gen: int) -> list[str]:
        """The metric history's part files, a partition's similar-sized parts merged once
        it has more than MAX_METRIC_PARTS (a query opens every file it lists).

        Size-tiered, as LSM stores do: parts are grouped by size within a factor of 4 and
        the most crowded group is merged. Small parts from live refreshes merge with each
        other; the big part of a first compaction is not rewritten every few refreshes (a
        10 M-point partition took 5 s), so merging costs O(log n) rewrites per point."""
        by_folder: dict[str, list[str]] = {}
        for rel in parts:
            by_folder.setdefault(rel.rsplit("/", 1)[0], []).append(rel)
        kept = []
        for folder, files in sorted(by_folder.items()):
            if len(files) > MAX_METRIC_PARTS:
                tiers: dict[int, list[str]] = {}
                for rel in files:
                    size = os.stat(self.layout.tables / rel).st_size
                    tiers.setdefault(int(math.log(max(size, 1), 4)), []).append(rel)
                tier = max(sorted(tiers), key=lambda t: len(tiers[t]))  # the most crowded, the smallest first
                chosen = tiers[tier]
                merged = pa.concat_tables(pq.read_table(self.layout.tables / f) for f in chosen)
                rel = f"{folder}/part-{gen:08d}-merged.parquet"
                _write(self.layout.tables / rel, _sorted_points(merged))
                files = [f for f in files if f not in chosen] + [rel]
            kept.extend(files)
        return kept


def _is_edit(rel: str) -> bool:
    return rel.rsplit("/", 2)[-2] == EDITS_FOLDER


class _HistoryWriter:
    """This compaction's new metric points, one Parquet file per experiment partition,
    written batch by batch, each batch's bucket sums beside them (:mod:`.buckets`); a file
    is listed only once the manifest commits it."""

    def __init__(self, tables_dir: Path, gen: int) -> None:
        self.tables_dir = tables_dir
        self.gen = gen
        self.writers: dict[str, tuple[pq.ParquetWriter, pq.ParquetWriter]] = {}

    def write(self, partitions: list[tuple[str, pa.Table]]) -> None:
        for partition, points in partitions:
            writers = self.writers.get(partition)
            if writers is None:
                paths = [self.tables_dir / rel for rel in (self.rel(partition), buckets.rel_of(self.rel(partition)))]
                for path in paths:
                    path.parent.mkdir(parents=True, exist_ok=True)
                writers = self.writers[partition] = (
                    pq.ParquetWriter(paths[0], schemas.METRIC_POINTS, compression="zstd"),
                    pq.ParquetWriter(paths[1], buckets.SCHEMA, compression="zstd"))
            writers[0].write_table(points, row_group_size=ROW_GROUP_ROWS)  # clustered by run already
            writers[1].write_table(buckets.sums_of(points))

    def rel(self, partition: str) -> str:
        return f"metrics/experiment={partition}/part-{self.gen:08d}.parquet"

    def close(self) -> list[str]:
        for history, sums in self.writers.values():
            history.close()
            sums.close()
        return [self.rel(partition) for partition in sorted(self.writers)]


def _by_experiment(points: pa.Table, runs: dict[str, dict[str, Any]]) -> list[tuple[str, pa.Table]]:
    """The points split by their run's experiment, each named as a hive partition value
    (the experiment's folder name: safe in a path), so DuckDB, Spark or Trino read
    ``metrics/experiment=<name>/`` as they are and prune by experiment."""
    if not points.num_rows:
        return []
    encoded = pc.dictionary_encode(points["run_id"]).combine_chunks()
    names = [partition_name(runs[r]["experiment"]) if r in runs and runs[r].get("experiment") else "_unknown"
             for r in encoded.dictionary.to_pylist()]
    partitions = sorted(set(names))
    code = {name: i for i, name in enumerate(partitions)}
    row_partition = np.array([code[n] for n in names], dtype=np.int64)[encoded.indices.to_numpy()]
    return [(name, points.filter(pa.array(row_partition == i))) for i, name in enumerate(partitions)]


def _lines_at(data: bytes | bytearray, begin: int, end: int, count: int,
              rows: list[int]) -> list[tuple[int, bytes | bytearray]]:
    """Lines number ``rows`` (0-based, ascending) of the ``count`` lines in data[begin:end].

    Walks forward from the start for rows in the first half and backward from the end
    for the rest: a run's own events sit at its head (start, params) and tail (end).
    """
    found: list[tuple[int, bytes | bytearray]] = []
    half = count // 2
    pos, line = begin, 0
    for row in (r for r in rows if r < half):
        while line < row:
            pos = data.index(b"\n", pos) + 1
            line += 1
        found.append((row, data[pos:data.index(b"\n", pos)]))
    tail: list[tuple[int, bytes | bytearray]] = []
    pos, line = end, count  # pos is where line number `line` starts
    for row in reversed([r for r in rows if r >= half]):
        while line > row:
            pos = data.rfind(b"\n", begin, pos - 1) + 1 or begin
            line -= 1
        tail.append((row, data[pos:data.index(b"\n", pos)]))
    return found + tail[::-1]


class _NotFast(Exception):
    """The columnar fast path cannot read this input; use the per-line path."""


class _Contradicts(Exception):
    """A valid line that contradicts its run's first lines (a second ``run_started``):
    skipped and reported, never applied."""


def _points_of(model: Metric | Metrics) -> list[dict[str, Any]]:
    """The points of a validated ``metric`` or ``metrics`` event, as one-point rows (the
    tolerant path only: the fast path explodes dense lines in Arrow)."""
    if isinstance(model, Metric):
        return [{name: getattr(model, name) for name in _POINT_SCHEMA.names}]
    special = dict(zip(model.special_at, model.special))
    best = set(model.best_at)
    links = [None if j is None else model.datasets[j] for j in model.d] if model.d else [None] * len(model.steps)
    return [{"v": model.v, "type": "metric", "ts": model.ts + dt / 1000, "run": model.run, "seq": model.seq + i,
             "key": model.keys[k], "value": value, "step": step, "best": i in best, "nonfinite": special.get(i),
             "dataset_name": link and link[0], "dataset_digest": link and link[1]}
            for i, (k, step, value, dt, link) in enumerate(zip(model.k, model.steps, model.values, model.dts, links))]


def _bad_dataset_links(names: pa.ChunkedArray | pa.Array, digests: pa.ChunkedArray | pa.Array) -> bool:
    """Whether a point names half a dataset (a name without a digest, or the reverse), or
    one a writer would refuse: the per-line path then says which line."""
    if names.null_count == len(names) and digests.null_count == len(digests):
        return False  # the common case: no point names a dataset
    if pc.any(pc.not_equal(pc.is_null(names), pc.is_null(digests))).as_py():
        return True
    texts = pc.unique(names.drop_null()).to_pylist() + pc.unique(digests.drop_null()).to_pylist()
    return any(dataset_text_problem(text) for text in texts)


def _explode_dense(dense: pa.Table) -> pa.Table:
    """Dense ``metrics`` rows as one-point rows, all in Arrow: point ``i`` of a line takes
    its key from ``keys[k[i]]``, its seq ``seq + i`` and its time ``ts + dts[i] / 1000``.
    Raises _NotFast on anything a valid line cannot hold (the per-line path says where)."""
    columns = {name: dense[name].combine_chunks() for name in ("keys", "k", "steps", "values", "dts",
                                                                "best_at", "special_at", "special", "datasets", "d")}
    steps = columns["steps"]
    counts = pc.list_value_length(steps)
    if (any(columns[c].null_count for c in ("keys", "k", "steps", "values", "dts"))
            or dense["seq"].null_count or pc.min(dense["seq"]).as_py() < 0
            or not pc.all(pc.greater(counts, 0)).as_py()
            or any(not pc.all(pc.equal(pc.list_value_length(columns[c]), counts)).as_py()
                   for c in ("k", "values", "dts"))):
        raise _NotFast
    parent = pc.list_parent_indices(steps).to_numpy()
    line_start = steps.offsets.to_numpy()[:-1]
    position = np.arange(len(parent)) - line_start[parent]  # a point's index within its line
    k = pc.list_flatten(columns["k"]).to_numpy()
    key_counts = pc.list_value_length(columns["keys"]).to_numpy()
    if k.min() < 0 or (k >= key_counts[parent]).any():
        raise _NotFast
    keys = columns["keys"]
    key_names = pc.list_flatten(keys)
    for name in pc.unique(key_names).to_pylist():
        try:
            check_key("metric", name)
        except InvalidKeyError:
            raise _NotFast from None
    key = key_names.take(pa.array(keys.offsets.to_numpy()[:-1][parent] + k))
    values = pc.list_flatten(columns["values"])
    best = np.zeros(len(parent), dtype=bool)
    best[_flat_positions(columns["best_at"], line_start, counts)] = True
    special_at = _flat_positions(columns["special_at"], line_start, counts)
    special = pc.list_flatten(columns["special"]).to_numpy(zero_copy_only=False)
    if (len(special) != len(special_at) or not set(special) <= set(NONFINITE_VALUES)
            or values.null_count != len(special_at)
            or (len(special_at) and values.take(pa.array(special_at)).null_count != len(special_at))):
        raise _NotFast
    if len(special_at):  # rare: a NaN or an inf logged
        marks = np.full(len(parent), None, dtype=object)
        marks[special_at] = special
        nonfinite = pa.array(marks, pa.string())
    else:
        nonfinite = pa.nulls(len(parent), pa.string())
    ts = dense["ts"].to_numpy()[parent] + pc.list_flatten(columns["dts"]).to_numpy() / 1000
    if not (np.isfinite(ts).all() and ts.min() >= 0 and ts.max() <= LATEST_TS):
        raise _NotFast
    dataset_name, dataset_digest = _point_datasets(columns["datasets"], columns["d"], line_start, counts, len(parent))
    return pa.table({
        "ts": pa.array(ts), "run": dense["run"].take(pa.array(parent)),
        "seq": pa.array(dense["seq"].to_numpy()[parent] + position), "key": key, "value": values,
        "step": pc.list_flatten(steps), "best": pa.array(best), "nonfinite": nonfinite,
        "dataset_name": dataset_name, "dataset_digest": dataset_digest,
    }, schema=_POINTS)


def _point_datasets(datasets: pa.ListArray, d: pa.ListArray, line_start: np.ndarray,
                    counts: pa.Array, total: int) -> tuple[pa.Array, pa.Array]:
    """Each point's dataset name and digest (null where it names none): point ``i`` of a
    line names ``datasets[d[i]]`` of its line. Raises _NotFast on what a valid line cannot
    hold (a ``d`` of another length than the points, an index past ``datasets``, a
    dataset that is not a [name, digest] pair of text a writer takes)."""
    if d.null_count == len(d) and datasets.null_count == len(datasets):  # no line names one: the common case
        return pa.nulls(total, pa.string()), pa.nulls(total, pa.string())
    has_d = pc.is_valid(d).to_numpy(zero_copy_only=False)
    d_length = pc.fill_null(pc.list_value_length(d), 0).to_numpy()
    pair_count = pc.fill_null(pc.list_value_length(datasets), 0).to_numpy()
    if ((d_length != np.where(has_d, counts.to_numpy(), 0)).any()
            or (has_d != (pair_count > 0)).any()):
        raise _NotFast
    pairs = pc.list_flatten(datasets)
    if pairs.null_count or not pc.all(pc.equal(pc.list_value_length(pairs), 2)).as_py():
        raise _NotFast
    texts = pc.list_flatten(pairs)
    if texts.null_count or any(dataset_text_problem(t) for t in pc.unique(texts).to_pylist()):
        raise _NotFast
    flat = pc.list_flatten(d)
    line = pc.list_parent_indices(d).to_numpy()
    index = pc.fill_null(flat, 0).to_numpy()
    linked = pc.is_valid(flat).to_numpy(zero_copy_only=False)
    if (index[linked] < 0).any() or (index[linked] >= pair_count[line[linked]]).any():
        raise _NotFast
    point = line_start[line] + np.arange(len(flat)) - d.offsets.to_numpy()[line]
    pair = np.full(total, -1, dtype=np.int64)
    pair[point[linked]] = datasets.offsets.to_numpy()[line[linked]] + index[linked]
    at = pa.array(pair, mask=pair < 0)
    return texts.take(pc.multiply(at, 2)), texts.take(pc.add(pc.multiply(at, 2), 1))


def _flat_positions(indices: pa.ListArray, line_start: np.ndarray, counts: pa.Array) -> np.ndarray:
    """Per-line point indices (``best_at``, ``special_at``) as positions among all points."""
    if indices.null_count == len(indices):
        return np.zeros(0, dtype=np.int64)
    filled = indices.fill_null([]) if indices.null_count else indices
    flat = pc.list_flatten(filled).to_numpy()
    parents = pc.list_parent_indices(filled).to_numpy()
    if len(flat) and (flat.min() < 0 or (flat >= counts.to_numpy()[parents]).any()):
        raise _NotFast
    return line_start[parents] + flat


def _metric_points(table: pa.Table) -> pa.Table:
    """One-point rows as history rows (real values, timestamps)."""
    value = table["value"]
    special = table["nonfinite"]
    if special.null_count < table.num_rows:  # NaN and ±inf are stored by name
        for name, real in NONFINITE_VALUES.items():
            value = pc.if_else(pc.fill_null(pc.equal(special, name), False), pa.scalar(real, pa.float64()), value)
    best = pc.fill_null(table["best"], False)
    micros = pc.cast(pc.round(pc.multiply(table["ts"], 1e6)), pa.int64())
    return pa.table({
        "run_id": table["run"], "key": table["key"], "step": table["step"], "value": value,
        "timestamp": pc.cast(micros, pa.timestamp("us", tz="UTC")), "seq": table["seq"],
        "best": best, "dataset_name": table["dataset_name"], "dataset_digest": table["dataset_digest"],
    }, schema=schemas.METRIC_POINTS)


def _sorted_points(table: pa.Table) -> pa.Table:
    return table.sort_by([("run_id", "ascending"), ("seq", "ascending")])


def _write(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)


def _collect_garbage(layout: Layout, manifest: Manifest) -> None:
    """Remove Parquet files the manifest no longer lists (replaced or orphaned)."""
    collect_sealed_garbage(layout.tables, manifest)
    keep = {rel for files in manifest.tables.values() for rel in files}
    for path in layout.tables.rglob("*.parquet"):
        if path.relative_to(layout.tables).as_posix() not in keep:
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def _nanmin(a: float | None, b: float | None) -> float | None:
    values = [x for x in (a, b) if x is not None and x == x]
    return min(values) if values else (a if a is not None else b)


def _nanmax(a: float | None, b: float | None) -> float | None:
    values = [x for x in (a, b) if x is not None and x == x]
    return max(values) if values else (a if a is not None else b)


class _TableState:
    """The small derived tables, held as dicts while one compaction updates them."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.params: dict[tuple[str, str], tuple[str, str | None]] = {}  # (run, key) -> (value, group)
        self.tags: dict[tuple[str, str], str] = {}
        # summaries of metric points read since `latest_metrics` was last built
        self.pending_latest: list[pa.Table] = []
        self.artifacts: dict[tuple[str, str], dict[str, Any]] = {}
        self.datasets: dict[tuple[str, ...], dict[str, Any]] = {}
        # edits (renames, notes, tags, deletes made after the run) by run, then edit ID, as
        # `run_edits` rows; folded over the run's own values when the tables are built
        self.edits: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.overlay_due: set[str] = set()  # runs whose edits must be folded in again
        self.new_histograms: list[dict[str, Any]] = []  # rows read since the last commit: a new part file
        self.dirty: set[str] = set(SMALL_TABLES)  # tables to (re)write at the next commit
        # `runs` and `latest_metrics` as last written, the runs changed since, and the run
        # names they were written with: a compaction with one live run among thousands
        # replaces that run's rows instead of rebuilding both tables from the dicts
        self.built: dict[str, pa.Table] = {}
        self.touched: set[str] = set()
        self.names: dict[str, tuple[int, str]] | None = None

    @classmethod
    def load(cls, tables_dir: Path, manifest: Manifest) -> _TableState:
        state = cls()

        def table(name: str) -> pa.Table:
            files = manifest.tables.get(name, [])
            schema = schemas.TABLE_SCHEMAS[name]
            return pa.concat_tables([pq.read_table(tables_dir / f, schema=schema) for f in files]) if files \
                else schema.empty_table()

        def rows(name: str) -> list[dict[str, Any]]:
            return table(name).to_pylist()

        for name in ("runs", "latest_metrics"):
            if name in manifest.tables:
                state.built[name] = table(name)
        for row in state.built.get("runs", schemas.RUNS.empty_table()).to_pylist():
            state.runs[row["run_id"]] = schemas.run_state_from_row(row)
        if "runs" in state.built:
            state.names = {r["run_id"]: (r["run_seq"], r["run_name"])
                           for r in state.built["runs"].select(["run_id", "run_seq", "run_name"]).to_pylist()}
        params = table("params")
        state.params = {(run_id, key): (value, group) for run_id, key, value, group in zip(
            *(params[name].to_pylist() for name in ("run_id", "key", "value", "group")))}
        for row in rows("tags"):
            state.tags[(row["run_id"], row["key"])] = row["value"]
        for row in rows("artifacts"):
            state.artifacts[(row["run_id"], row["path"])] = row
        for row in rows("datasets"):
            state.datasets[_dataset_key(row["run_id"], row["name"], row.get("mlflow"))] = row
        for row in rows("run_edits"):
            state.edits.setdefault(row["run_id"], {}).setdefault(row["edit_id"], []).append(row)
        state.dirty = {name for name in SMALL_TABLES if name not in manifest.tables}
        return state

    def run(self, run_id: str, rel: str) -> dict[str, Any]:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = schemas.new_run_state(run_id, rel)
            self.names = None  # a new run can renumber its experiment's runs
        self.touched.add(run_id)
        return run

    def apply(self, event: RunEvent, rel: str) -> None:
        """Fold one event into its run. Raises _Contradicts for a second ``run_started``:
        a run's experiment, start and name are its first line's, whatever a later line
        claims (a later start naming another experiment would move the run there)."""
        if event.type == "run_started":
            known = self.runs.get(event.run)
            if known is not None and known["start_time"] is not None:
                raise _Contradicts(f"a second run_started of run {event.run} (seq {event.seq}): "
                                   "a run's experiment and start are its first line's; ignored")
            self.names = None  # its name and start time decide every number in the experiment
        run = self.run(event.run, rel)
        run["last_seen"] = max(run["last_seen"] or 0.0, event.ts)
        kind = event.type
        self.dirty.add("runs")
        self.dirty.add(_TABLE_OF_EVENT.get(kind, "runs"))
        if event.type == "run_started":
            run.update(experiment=event.experiment, requested_name=event.name,
                       description=event.description, start_time=event.ts,
                       experiment_description=event.experiment_description)
            self._own_tags(run, event.tags)
        elif event.type == "params":
            for key, value in event.params.items():
                self.params[(event.run, key)] = (value, event.group)
        elif event.type == "tags":
            self._own_tags(run, event.tags)
        elif event.type == "tag_deleted":
            self._own_tags(run, {event.key: None})
        elif event.type == "artifact":
            self.artifacts[(event.run, event.path)] = {
                "run_id": event.run, "path": event.path, "sha256": event.sha256,
                "size": event.size, "in_git": event.in_git, "source": event.source,
                "timestamp": _utc(event.ts)}
        elif event.type == "dataset":
            mlflow = None if event.mlflow is None else orjson.dumps(event.mlflow).decode()
            self.datasets[_dataset_key(event.run, event.name, mlflow)] = {
                "run_id": event.run, "name": event.name, "path": event.path,
                "sha256": event.sha256, "size": event.size, "rows": event.rows,
                "columns": event.columns, "context": event.context, "timestamp": _utc(event.ts),
                "mlflow": mlflow}
        elif event.type == "histogram":
            self.new_histograms.append({
                "run_id": event.run, "key": event.key, "step": event.step, "timestamp": _utc(event.ts),
                "seq": event.seq, "edges": event.bin_edges(), "counts": event.counts, "dropped": event.dropped or 0})
        elif event.type == "git":
            run.update(git_commit=event.commit, git_branch=event.branch, git_dirty=event.dirty,
                       git_remote=event.remote, git_diff_sha256=event.diff_sha256,
                       git_diff_truncated=event.diff_truncated, git_repo_path=event.repo_path)
        elif event.type == "environment":
            # quoted as a shell reads it: `mltrail reproduce` pastes it into a script
            run.update(command=shlex.join(event.command) if event.command else None,
                       script=event.script, cwd=event.cwd, python=event.python,
                       platform=event.platform, host=event.host, user=event.user,
                       packages_sha256=event.packages_sha256)
        elif event.type == "run_resumed":
            run.update(status="RUNNING", end_time=None, error=None)
        elif event.type == "run_finished":
            run.update(status=event.status, end_time=event.ts, error=event.error)
        if event.run in self.edits:
            self.overlay_due.add(event.run)  # an edit wins over what the run logged itself

    def _own_tags(self, run: dict[str, Any], tags: Mapping[str, str | None]) -> None:
        """Tags the run logged itself (None: removed); its name and notes are tags with
        reserved keys, kept as its requested name and description."""
        for key, value in tags.items():
            if key == IMPORTED_ID_TAG:
                self.names = None  # whether the run keeps its name as it is
            if key == NAME_TAG:
                run["requested_name"] = value
                self.names = None
            elif key == NOTES_TAG:
                run["description"] = value
            elif value is None:
                self.tags.pop((run["run_id"], key), None)
            else:
                self.tags[(run["run_id"], key)] = value

    def apply_edit(self, edit: RunEdit) -> None:
        self.edits.setdefault(edit.run, {})[edit.id] = edit_rows(edit)
        self.overlay_due.add(edit.run)
        self.dirty.add("run_edits")

    def _fold_edits(self) -> None:
        """Each due run's edits folded over its own values, in (time, ID) order, so that
        the tables are the same whatever order the files were read in."""
        for run_id in sorted(self.overlay_due):
            run = self.runs.get(run_id)
            if run is None:  # edits of a run not (yet) here: kept, folded in when it comes
                continue
            overlay = Overlay([row for rows in self.edits.get(run_id, {}).values() for row in rows])
            changed: dict[str, Any] = {"deleted": overlay.deleted, "deleted_time": overlay.deleted_at}
            for key, value in overlay.tags.items():
                if key == NAME_TAG:
                    changed["requested_name"] = value or None
                elif key == NOTES_TAG:
                    changed["description"] = value or None
                elif value is None:
                    if self.tags.pop((run_id, key), None) is not None:
                        self.dirty.add("tags")
                elif self.tags.get((run_id, key)) != value:
                    self.tags[(run_id, key)] = value
                    self.dirty.add("tags")
            if IMPORTED_ID_TAG in overlay.tags:
                self.names = None  # whether the run keeps its name as it is
            if any(run.get(name) != value for name, value in changed.items()):
                renamed = "requested_name" in changed and run.get("requested_name") != changed["requested_name"]
                if renamed or run.get("deleted") != changed["deleted"]:
                    self.names = None  # the names, or the experiments' run counts, change
                run.update(changed)
                self.touched.add(run_id)
                self.dirty.add("runs")
        self.overlay_due.clear()

    def add_metrics(self, points: pa.Table) -> None:
        """Fold new metric points into per-run last-seen times, and keep their per-key
        summary (last, min, max, count, best) to be merged into ``latest_metrics``."""
        if not points.num_rows:
            return
        self.dirty.update(("runs", "latest_metrics"))
        summary = _latest_rows(points)
        self.pending_latest.append(summary)
        seen = points.group_by("run_id", use_threads=False).aggregate([("timestamp", "max")])
        for run_id, last in zip(seen["run_id"].to_pylist(), pc.cast(seen["timestamp_max"], pa.int64()).to_pylist()):
            self.touched.add(run_id)
            run = self.runs.get(run_id)
            if run is not None:
                run["last_seen"] = max(run["last_seen"] or 0.0, last / 1e6)

    def tables(self) -> dict[str, pa.Table]:
        """The tables that changed since the state was last written."""
        self._fold_edits()
        built: dict[str, pa.Table] = {}
        touched = self.touched & set(self.runs)
        few = len(touched) * 4 < len(self.runs)  # replacing rows pays off while few runs changed
        if "runs" in self.dirty:
            if self.names is None or "runs" not in self.built or not few:
                states = [self.runs[run_id] for run_id in sorted(self.runs)]
                self.names = _run_names(self.runs, self.tags)
                built["runs"] = schemas.runs_table(states, self.names)
                built["experiments"] = schemas.experiments_table(states)
            else:  # the same runs and names: only the touched runs' rows change
                ids = sorted(touched)
                rows = schemas.runs_table([self.runs[run_id] for run_id in ids], self.names)
                built["runs"] = _replace_rows(self.built["runs"], rows, ids)
        if "latest_metrics" in self.dirty:
            built["latest_metrics"] = self._latest()
        for name in ("runs", "latest_metrics"):
            if name in built:
                self.built[name] = built[name]
        self.touched.clear()
        self.pending_latest.clear()
        if "params" in self.dirty:
            keys = sorted(self.params)
            values = [self.params[k] for k in keys]
            built["params"] = pa.table({
                "run_id": [k[0] for k in keys], "key": [k[1] for k in keys],
                "value": [v[0] for v in values], "group": [v[1] for v in values]}, schema=schemas.PARAMS)
        if "tags" in self.dirty:
            built["tags"] = pa.Table.from_pylist(
                [{"run_id": r, "key": k, "value": v} for (r, k), v in sorted(self.tags.items())],
                schemas.TAGS)
        if "artifacts" in self.dirty:
            built["artifacts"] = pa.Table.from_pylist(
                [self.artifacts[k] for k in sorted(self.artifacts)], schemas.ARTIFACTS)
        if "datasets" in self.dirty:
            built["datasets"] = pa.Table.from_pylist(
                [self.datasets[k] for k in sorted(self.datasets)], schemas.DATASETS)
        if "run_edits" in self.dirty:
            built["run_edits"] = pa.Table.from_pylist(
                [row for run_id in sorted(self.edits) for edit_id in sorted(self.edits[run_id])
                 for row in self.edits[run_id][edit_id]], schemas.RUN_EDITS)
        return built

    def _latest(self) -> pa.Table:
        """``latest_metrics`` with the pending summaries merged in: only the changed runs'
        rows are merged and put in place while few runs changed, else the whole table."""
        old = self.built.get("latest_metrics", schemas.LATEST_METRICS.empty_table())
        if not self.pending_latest:
            return old
        changed = set()
        for summary in self.pending_latest:
            changed.update(pc.unique(summary["run_id"]).to_pylist())
        if old.num_rows and len(changed) * 4 < len(self.runs):
            rows = _merge_latest([_rows_of(old, changed), *self.pending_latest])
            return _replace_rows(old, rows, changed)
        return _merge_latest([old, *self.pending_latest])


def _latest_rows(points: pa.Table) -> pa.Table:
    """New metric points summarised as ``latest_metrics`` rows, one per run and key: the
    points are ordered once by (run, key, step, seq) as integers, and each group's last
    point, least and greatest value (NaN only when all are NaN) and count read off the
    order in NumPy; no column but the values is moved."""
    run_code, run_names = _sorted_codes(points["run_id"])
    key_code, key_names = _sorted_codes(points["key"])
    width = len(key_names)
    group = run_code * width + key_code
    order = pc.sort_indices(pa.table({"g": group, "step": points["step"], "seq": points["seq"]}),
                            sort_keys=[("g", "ascending"), ("step", "ascending"), ("seq", "ascending")]).to_numpy()
    ordered_group = group[order]
    starts = np.flatnonzero(np.r_[True, ordered_group[1:] != ordered_group[:-1]])
    ends = np.r_[starts[1:], len(order)]
    last = pa.array(order[ends - 1])
    values = points["value"].to_numpy()[order]
    groups = ordered_group[starts]
    flagged = np.flatnonzero(points["best"].to_numpy()[order])
    flagged_group = ordered_group[flagged]
    best_last = flagged[np.r_[flagged_group[1:] != flagged_group[:-1], True]] if len(flagged) else flagged
    best_rows = order[best_last]
    at = np.searchsorted(groups, ordered_group[best_last])
    return pa.table({
        "run_id": run_names.take(pa.array(groups // width)), "key": key_names.take(pa.array(groups % width)),
        "value": points["value"].take(last), "step": points["step"].take(last), "seq": points["seq"].take(last),
        "timestamp": points["timestamp"].take(last),
        "min": np.fmin.reduceat(values, starts), "max": np.fmax.reduceat(values, starts),
        "count": ends - starts,
        "best_value": _spread(len(groups), at, points["value"].to_numpy()[best_rows]),
        "best_step": _spread(len(groups), at, points["step"].to_numpy()[best_rows]),
        "best_seq": _spread(len(groups), at, points["seq"].to_numpy()[best_rows]),
    }, schema=schemas.LATEST_METRICS)


def _spread(length: int, at: np.ndarray, values: np.ndarray) -> pa.Array:
    """``values`` placed at rows ``at`` of a column of ``length``, null elsewhere."""
    column = np.zeros(length, dtype=values.dtype)
    column[at] = values
    has = np.zeros(length, dtype=bool)
    has[at] = True
    return pa.array(column, mask=~has)


def _merge_latest(parts: list[pa.Table]) -> pa.Table:
    """``latest_metrics`` rows (summaries of disjoint sets of points) merged into one row
    per run and key, sorted by run and key: the value, step and time of the last point by
    (step, seq), the least and greatest value (NaN only when all are NaN, as Arrow's min
    and max do), the count, and the last point flagged best. On a tie the later part
    wins (Arrow's sort is stable), as a point logged later does."""
    rows = pa.concat_tables(parts)
    if not rows.num_rows:
        return schemas.LATEST_METRICS.empty_table()
    # sorted and grouped on one integer per (run, key), ranked as the strings sort: the
    # strings are neither sorted nor moved, only looked up once per group at the end
    run_code, run_names = _sorted_codes(rows["run_id"])
    key_code, key_names = _sorted_codes(rows["key"])
    width = len(key_names)
    numbers = rows.drop_columns(["run_id", "key"]).append_column("g", pa.array(run_code * width + key_code))
    ordered = numbers.sort_by([("g", "ascending"), ("step", "ascending"), ("seq", "ascending")])
    last = ordered.group_by("g", use_threads=False).aggregate([
        ("value", "last"), ("step", "last"), ("seq", "last"), ("timestamp", "last"),
        ("min", "min"), ("max", "max"), ("count", "sum")])
    flagged = ordered.filter(pc.is_valid(ordered["best_step"])).select(["g", "best_value", "best_step", "best_seq"])
    flagged = flagged.sort_by([("g", "ascending"), ("best_step", "ascending"), ("best_seq", "ascending")])
    best = flagged.group_by("g", use_threads=False).aggregate(
        [("best_value", "last"), ("best_step", "last"), ("best_seq", "last")])
    groups = last["g"].to_numpy()
    at = np.searchsorted(groups, best["g"].to_numpy())  # both ascending; best's groups are a subset

    return pa.table({
        "run_id": run_names.take(pa.array(groups // width)), "key": key_names.take(pa.array(groups % width)),
        "value": last["value_last"], "step": last["step_last"], "seq": last["seq_last"],
        "timestamp": last["timestamp_last"], "min": last["min_min"], "max": last["max_max"],
        "count": last["count_sum"],
        "best_value": _spread(len(groups), at, best["best_value_last"].to_numpy()),
        "best_step": _spread(len(groups), at, best["best_step_last"].to_numpy()),
        "best_seq": _spread(len(groups), at, best["best_seq_last"].to_numpy()),
    }, schema=schemas.LATEST_METRICS)


def _sorted_codes(strings: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """``strings`` as integer codes into their distinct values sorted (UTF-8 bytewise,
    which is Python's str order), and those values."""
    encoded = pc.dictionary_encode(strings.combine_chunks())
    order = pc.sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[encoded.indices.to_numpy()], encoded.dictionary.take(pa.array(order))


def _rows_of(table: pa.Table, run_ids: set[str]) -> pa.Table:
    """The rows of ``run_ids`` in ``table`` (a filter: the table is small next to a scan)."""
    return table.filter(pc.is_in(table["run_id"], pa.array(sorted(run_ids), pa.string())))


def _replace_rows(table: pa.Table, rows: pa.Table, run_ids: Any) -> pa.Table:
    """``table`` (sorted by run_id first) with the rows of ``run_ids`` replaced by ``rows``
    (sorted the same way), still sorted as a full rebuild sorts. A run's rows are one
    block: it is cut out and the new block put in its place with zero-copy slices (no
    filter, no sort of the whole table; Arrow compares UTF-8 bytewise, which is the order
    of Python's str sort)."""
    rows = rows.cast(table.schema)
    new_ids = rows["run_id"]
    for run_id in sorted(run_ids):
        ids = table["run_id"]
        hits = np.flatnonzero(pc.equal(ids, run_id).to_numpy(zero_copy_only=False))
        if len(hits):
            start, end = int(hits[0]), int(hits[-1]) + 1
        else:  # a run not in the table yet goes where its ID sorts
            start = end = int(pc.sum(pc.less(ids, run_id)).as_py() or 0)
        block = rows.filter(pc.equal(new_ids, run_id))
        table = pa.concat_tables([table.slice(0, start), block, table.slice(end)])
    return table.combine_chunks() if table.column(0).num_chunks > 64 else table


def _run_names(runs: dict[str, dict[str, Any]], tags: dict[tuple[str, str], str]) -> dict[str, tuple[int, str]]:
    """Every run's number and name; an imported run (MLflow's ID among its tags) keeps its name."""
    by_experiment: dict[str, list[NamedRun]] = {}
    for run_id, run in runs.items():
        by_experiment.setdefault(run["experiment"], []).append(
            (run["start_time"] or 0.0, run_id, run["requested_name"], (run_id, IMPORTED_ID_TAG) in tags))
    names: dict[str, tuple[int, str]] = {}
    for experiment, members in by_experiment.items():
        names.update(derive_run_names(experiment, members))
    return names


def _utc(seconds: float) -> datetime:
    """An event time as a UTC datetime: a bare float would be read as microseconds by a
    timestamp("us") column, putting every artifact in January 1970."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _dataset_key(run: str, name: str, mlflow: str | None) -> tuple[str, ...]:
    """A run's dataset is one per name; MLflow's client may log two datasets of one name
    (a training and an evaluation set, each named ``dataset``): those are told apart by the
    digest and the input tags MLflow gave them."""
    return (run, name) if mlflow is None else (run, name, mlflow)
