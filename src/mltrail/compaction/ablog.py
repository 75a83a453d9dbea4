"""Compaction of an A/B experiment's exposure and feedback logs into Parquet that an
engine aggregates (see :mod:`.abstats`).

The same reader and promises as the run tables (:mod:`.reader`): incremental (only
bytes not read before), tolerant (a corrupt or torn line is skipped and reported with
its file and line; the rest is compacted), safe while writers append, rebuildable from
the logs alone. Each compaction that read new lines adds two Parquet files to the
experiment's derived folder, and nothing is rewritten until files are merged:

- ``units-<generation>.parquet``: the new exposures folded per (phase, unit): the
  variant of the unit's earliest exposure, that time, and ``crossover`` when it was
  served more than one variant in the phase. A unit seen again in a later compaction
  has a row in each file; :mod:`.abstats` folds them, and a merge (when the small files
  grow to ``MERGE_AT_SHARE`` of the big one, or number more than ``MAX_UNIT_FILES``) folds them for
  good.
- ``feedback-<generation>.parquet``: the feedback lines as they were logged (unit,
  metric, value, time); merged past ``MAX_FEEDBACK_FILES``.
- ``attributes-<generation>.parquet``: exposures' attributes (country, platform...), a
  row each (phase, unit, key, value, time), for results by dimension; merged likewise.

Which phase a feedback belongs to (its time against the phases' starts), and whether it
counts, is decided when analysing, so that a new phase or a metric's definition never
needs the logs read again. Every fold is order-free (earliest times, sums, counts), so
the order in which processes flush their logs never changes a result.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq
from filelock import FileLock
from pydantic import ValidationError

from ..config import ab_memory_limit
from ..storage.ab_events import FEEDBACK_MAX, LOG_LINE_ADAPTER
from ..storage.eventlog import BadLine
from ..storage.events import SCHEMA_VERSION
from ..storage.fields import LATEST_TS
from .manifest import Manifest, commit_manifest, load_manifest
from .reader import Span, bad_line_records, in_batches, load_new_bytes, read_columnar
from .scan import Scan, check_sizes

_LINE_SCHEMA = pa.schema([("v", pa.int64()), ("type", pa.string()), ("ts", pa.float64()),
                          ("experiment", pa.string()), ("seq", pa.int64()), ("unit", pa.string()),
                          ("variant", pa.string()), ("phase", pa.int64()), ("metric", pa.string()),
                          ("value", pa.float64())])
UNITS = pa.schema([("phase", pa.int64()), ("unit", pa.string()), ("variant", pa.string()),
                   ("first_ts", pa.float64()), ("crossover", pa.bool_())])
FEEDBACK = pa.schema([("unit", pa.string()), ("metric", pa.string()), ("value", pa.float64()),
                      ("ts", pa.float64())])
ATTRIBUTES = pa.schema([("phase", pa.int64()), ("unit", pa.string()), ("key", pa.string()), ("value", pa.string()),
                        ("ts", pa.float64())])  # an exposure's attributes, a row each
_ATTRIBUTE_LINES = pa.schema([("unit", pa.string()), ("phase", pa.int64()), ("ts", pa.float64())])
_RAW_EXPOSURES = pa.schema([("phase", pa.int64()), ("unit", pa.string()), ("variant", pa.string()),
                            ("ts", pa.float64())])
BATCH_BYTES = 64 << 20  # new log bytes parsed at a time (a router's segment is at most 64 MB)
MAX_UNIT_FILES = 8
MERGE_AT_SHARE = 0.2  # the small unit files are merged into the big one once they weigh this share of it
MAX_FEEDBACK_FILES = 16
# the rules the tables were read by, in their manifest: tables an older version made (2 or
# less) may hold a row the writer now refuses (a time in microseconds that broke every
# results()), so they are rebuilt from the logs once. 3: lines bounded as run events are.
LOG_TABLES_FORMAT = 3
# Rows of unit files folded into one (the engine's fold, as SQL over a relation `rows`).
# Crossover units are never counted, so the variant shown for one whose first exposures
# tie to the microsecond may be either; every other column is order-free.
FOLD_UNITS = """
    SELECT phase, unit,
           CASE WHEN min(variant) = max(variant) THEN min(variant) ELSE min_by(variant, first_ts) END AS variant,
           min(first_ts) AS first_ts, bool_or(crossover) OR min(variant) <> max(variant) AS crossover
    FROM rows GROUP BY phase, unit"""


@dataclass
class AbLog:
    """An experiment's compacted log (its Parquet files), and what this compaction read
    and skipped."""

    folder: Path
    generation: int
    unit_files: list[Path]  # the biggest (the merged one) first
    feedback_files: list[Path]
    bad_lines: list[BadLine]  # every line skipped so far (the last 1,000)
    attribute_files: list[Path] = field(default_factory=list)
    new_bad_lines: list[BadLine] = field(default_factory=list)  # found by this compaction
    lines_read: int = 0
    bytes_read: int = 0
    lines_read_one_by_one: int = 0  # in segments holding a bad line: the slow, tolerant path


def connect(folder: Path) -> duckdb.DuckDBPyConnection:
    """An in-process DuckDB that spills to ``folder`` past ``MLTRAIL_AB_MEMORY``."""
    spill = folder / "spill"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{ab_memory_limit()}'")
    con.execute(f"SET temp_directory = '{_sql_text(str(spill))}'")
    con.execute("SET preserve_insertion_order = false")  # order-free folds: lets big ones stream
    con.execute("SET enable_progress_bar = false")  # a long fold printed one on the caller's stdout
    return con


def compact_ab_log(log_folder: Path, derived: Path, rebuild: bool = False, label: str | None = None) -> AbLog:
    """Fold the new lines of ``log_folder/*.jsonl`` into Parquet files under ``derived``.
    ``label`` names the log folder in reports of skipped lines (``ab/KEY/log``)."""
    derived.mkdir(parents=True, exist_ok=True)
    with FileLock(str(derived / "compaction.lock")):
        _remove_legacy(derived)
        manifest = load_manifest(derived, private=True)
        rebuild = rebuild or bool((manifest.tables or manifest.files) and manifest.tables_format < LOG_TABLES_FORMAT)
        if rebuild:  # numbered after the files it replaces, never over them (a reader may hold them)
            manifest = Manifest(generation=manifest.generation)
        found = _scan(log_folder, manifest)
        if found.must_rebuild and not rebuild:
            rebuild, manifest = True, Manifest(generation=manifest.generation)
            found = _scan(log_folder, manifest)
        if not found.todo and not rebuild:
            return _log(derived, manifest)
        manifest.generation += 1
        generation = manifest.generation
        if rebuild:
            manifest.tables = {}
        log = AbLog(derived, generation, [], [], [])
        raw_exposures: list[Path] = []
        for number, (batch, _) in enumerate(in_batches(found.todo, BATCH_BYTES)):  # a batch in memory at a time
            loaded = load_new_bytes(batch, manifest.files)
            events, attributes, bad, one_by_one = _parse(loaded.buffer, loaded.spans, label or str(log_folder))
            log.new_bad_lines += bad
            log.lines_read += events.num_rows
            log.bytes_read += loaded.bytes_read
            log.lines_read_one_by_one += one_by_one
            del loaded
            for kind, columns, schema in (("exposure", ["phase", "unit", "variant", "ts"], _RAW_EXPOSURES),
                                          ("feedback", FEEDBACK.names, FEEDBACK)):
                rows = events.filter(pc.equal(events["type"], kind))
                if not rows.num_rows:
                    continue
                if kind == "exposure":  # folded below, with the other batches'
                    path = derived / f".exposures-{generation:08d}-{number:05d}.parquet"
                    raw_exposures.append(path)
                else:
                    rel = f"feedback-{generation:08d}-{number:05d}.parquet"
                    manifest.tables["feedback"] = manifest.tables.get("feedback", []) + [rel]
                    path = derived / rel
                pq.write_table(rows.select(columns).cast(schema), path, compression="zstd")
            if attributes.num_rows:
                rel = f"attributes-{generation:08d}-{number:05d}.parquet"
                manifest.tables["attributes"] = manifest.tables.get("attributes", []) + [rel]
                pq.write_table(attributes, derived / rel, compression="zstd")
            del events, rows, attributes
        pa.default_memory_pool().release_unused()  # the batches' Arrow memory, before DuckDB takes its share
        with connect(derived) as con:
            if raw_exposures:  # this compaction's exposures folded per (phase, unit), out of core
                rel = f"units-{generation:08d}.parquet"
                rows = f"FROM (SELECT phase, unit, variant, ts AS first_ts, false AS crossover " \
                       f"FROM read_parquet({_file_list(derived, [p.name for p in raw_exposures])}))"
                con.execute(f"""COPY ({FOLD_UNITS.replace('FROM rows', rows)})
                                TO '{_sql_text(str(derived / rel))}' (FORMAT parquet, COMPRESSION zstd)""")
                manifest.tables["units"] = manifest.tables.get("units", []) + [rel]
            _merge(con, derived, manifest, generation)
        for path in raw_exposures:
            path.unlink()
        manifest.bad_lines = (manifest.bad_lines + bad_line_records(log.new_bad_lines))[-1000:]
        manifest.tables_format = LOG_TABLES_FORMAT
        commit_manifest(derived, manifest)  # after the files: the offsets never run ahead of them
        _remove_unlisted(derived, manifest)
        done = _log(derived, manifest)
        done.new_bad_lines, done.lines_read, done.bytes_read, done.lines_read_one_by_one = (
            log.new_bad_lines, log.lines_read, log.bytes_read, log.lines_read_one_by_one)
        return done


def _merge(con: duckdb.DuckDBPyConnection, derived: Path, manifest: Manifest, generation: int) -> None:
    """Fold the unit files into one once the small ones weigh MERGE_AT_SHARE of the big one (or
    are too many); concatenate the feedback files past MAX_FEEDBACK_FILES. Each merge is
    a new file under this generation's name: the old ones go once the manifest moved on."""
    units = manifest.tables.get("units", [])
    if len(units) > 1:
        sizes = [os.stat(derived / rel).st_size for rel in units]
        if len(units) > MAX_UNIT_FILES or sum(sizes[1:]) > MERGE_AT_SHARE * sizes[0]:
            rel = f"units-{generation:08d}-merged.parquet"
            con.execute(f"""COPY ({FOLD_UNITS.replace('FROM rows', f'FROM read_parquet({_file_list(derived, units)})')})
                            TO '{_sql_text(str(derived / rel))}' (FORMAT parquet, COMPRESSION zstd)""")
            manifest.tables["units"] = [rel]
    for name in ("feedback", "attributes"):
        files = manifest.tables.get(name, [])
        if len(files) > MAX_FEEDBACK_FILES:
            rel = f"{name}-{generation:08d}-merged.parquet"
            con.execute(f"""COPY (SELECT * FROM read_parquet({_file_list(derived, files)}))
                            TO '{_sql_text(str(derived / rel))}' (FORMAT parquet, COMPRESSION zstd)""")
            manifest.tables[name] = [rel]


def _log(derived: Path, manifest: Manifest) -> AbLog:
    """The log as the manifest lists it (the merged unit file first: it is the biggest)."""
    units = [derived / rel for rel in manifest.tables.get("units", [])]
    units.sort(key=lambda path: (not path.name.endswith("-merged.parquet"), path.name))
    return AbLog(derived, manifest.generation, units, [derived / rel for rel in manifest.tables.get("feedback", [])],
                 _bad_lines(manifest), attribute_files=[derived / rel for rel in manifest.tables.get("attributes", [])])


def _file_list(folder: Path, names: list[str]) -> str:
    """A DuckDB list literal of Parquet files."""
    return "[" + ", ".join(f"'{_sql_text(str(folder / name))}'" for name in names) + "]"


def _sql_text(text: str) -> str:
    return text.replace("'", "''")

# -- reading ---------------------------------------------------------------------------

def _scan(log_folder: Path, manifest: Manifest) -> Scan:
    found = Scan()
    try:
        names = sorted(n for n in os.listdir(log_folder) if n.endswith(".jsonl") and not n.startswith("."))
    except FileNotFoundError:
        names = []
    found.files_seen = len(names)
    if not set(manifest.files) <= set(names):
        found.must_rebuild = True  # a segment vanished (a git checkout): rows would be stale
    check_sizes(manifest, [(name, str(log_folder / name)) for name in names], found)
    return found


def _bad_lines(manifest: Manifest) -> list[BadLine]:
    return [BadLine(b["file"], b["line"], b["reason"]) for b in manifest.bad_lines]


def _parse(buffer: bytearray, spans: list[Span], label: str) -> tuple[pa.Table, pa.Table, list[BadLine], int]:
    """The spans' events as one frame of ``_LINE_SCHEMA``'s columns, the bad lines, and
    how many lines were read one by one.

    The columnar reader takes everything at once when every line is good; a span that
    holds a bad line is read line by line, and only its bad lines are lost."""
    if not spans:
        return _LINE_SCHEMA.empty_table(), ATTRIBUTES.empty_table(), [], 0
    table = _valid_columnar(buffer, spans)
    if table is not None:
        return table, _attributes_columnar(buffer, spans), [], 0
    parts, attributes, bad, one_by_one = [], [], [], 0
    for span in spans:
        table = _valid_columnar(buffer, [span])
        if table is None:
            table, found, skipped = _per_line(buffer, span, f"{label}/{span.rel}")
            bad.extend(skipped)
            one_by_one += span.lines
        else:
            found = _attributes_columnar(buffer, [span])
        parts.append(table)
        attributes.append(found)
    return pa.concat_tables(parts), pa.concat_tables(attributes), bad, one_by_one


def _attributes_columnar(buffer: bytearray, spans: list[Span]) -> pa.Table:
    """The exposures' attributes of well-formed spans, a row each: pyarrow's reader infers
    them as a struct of the names it met, unpacked here name by name."""
    start, end = spans[0].start, spans[-1].end
    if buffer.find(b'"attributes":', start, end) < 0:
        return ATTRIBUTES.empty_table()
    table = pajson.read_json(pa.BufferReader(pa.py_buffer(buffer).slice(start, end - start)),
                             parse_options=pajson.ParseOptions(explicit_schema=_ATTRIBUTE_LINES,
                                                               unexpected_field_behavior="infer"))
    if "attributes" not in table.column_names:
        return ATTRIBUTES.empty_table()
    attributes = table["attributes"].combine_chunks()
    parts = []
    for i in range(attributes.type.num_fields):
        values = attributes.field(i)
        rows = table.select(["phase", "unit", "ts"]).append_column("value", pc.cast(values, pa.string()))
        rows = rows.filter(pc.is_valid(rows["value"]))
        parts.append(rows.append_column("key", pa.array([attributes.type.field(i).name] * rows.num_rows, pa.string()))
                     .select(ATTRIBUTES.names))
    return pa.concat_tables(parts) if parts else ATTRIBUTES.empty_table()


def _valid_columnar(buffer: bytearray, spans: list[Span]) -> pa.Table | None:
    """The columnar read, when every line in it is a well-formed event (within the bounds
    the line schemas set: the writer's); else None, and the per-line path says which is not."""
    table = read_columnar(buffer, spans, _LINE_SCHEMA)
    if table is None:
        return None
    kinds = table["type"]
    exposure, feedback = pc.equal(kinds, "exposure"), pc.equal(kinds, "feedback")
    # Kleene logic: a feedback line has no phase (null), and "not an exposure, or a valid
    # phase" must still be true for it. (NaN compares false: a NaN ts or value fails.)
    checks = [pc.is_valid(table[c]) for c in ("v", "ts", "experiment", "seq", "unit")]
    checks += [pc.less_equal(table["v"], SCHEMA_VERSION), pc.greater_equal(table["v"], 1),
               pc.greater_equal(table["ts"], 0.0), pc.less_equal(table["ts"], LATEST_TS),
               pc.greater_equal(table["seq"], 0), pc.greater(pc.utf8_length(table["unit"]), 0),
               pc.or_kleene(exposure, feedback),
               pc.or_kleene(pc.invert(exposure), pc.and_kleene(pc.is_valid(table["variant"]),
                                                               pc.greater_equal(table["phase"], 1))),
               pc.or_kleene(pc.invert(feedback), pc.and_kleene(
                   pc.is_valid(table["metric"]), pc.less_equal(pc.abs(table["value"]), FEEDBACK_MAX)))]
    ok = checks[0]
    for condition in checks[1:]:
        ok = pc.and_kleene(ok, condition)
    return table if pc.all(pc.fill_null(ok, False)).as_py() else None


def _per_line(buffer: bytearray, span: Span, file: str) -> tuple[pa.Table, pa.Table, list[BadLine]]:
    rows: dict[str, list[Any]] = {name: [] for name in _LINE_SCHEMA.names}
    attributes: dict[str, list[Any]] = {name: [] for name in ATTRIBUTES.names}
    bad = []
    lines = bytes(buffer[span.start:span.end]).split(b"\n")[:-1]
    for number, raw in enumerate(lines, start=span.first_line):
        if not raw.strip():
            continue
        try:
            event = LOG_LINE_ADAPTER.validate_python(orjson.loads(raw)).model_dump()
        except orjson.JSONDecodeError as exc:
            bad.append(BadLine(file, number, f"not valid JSON ({exc})"))
            continue
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            newer = isinstance(first.get("input"), int) and first["loc"][-1:] == ("v",) and first["input"] > 1
            reason = (f"written by a newer mltrail (event schema v{first['input']}; this version reads up "
                      f"to v{SCHEMA_VERSION})" if newer else f"invalid log line: {where}: {first['msg']}")
            bad.append(BadLine(file, number, reason))
            continue
        for name in _LINE_SCHEMA.names:
            rows[name].append(event.get(name))
        for key, value in (event.get("attributes") or {}).items():
            for name, item in zip(ATTRIBUTES.names, (event["phase"], event["unit"], key, value, event["ts"])):
                attributes[name].append(item)
    return pa.table(rows, schema=_LINE_SCHEMA), pa.table(attributes, schema=ATTRIBUTES), bad


# -- housekeeping ----------------------------------------------------------------------

_LEGACY = ("units.parquet", "daily.parquet", "offsets.json")  # before the tables were per phase set


def _remove_legacy(derived: Path) -> None:
    """Tables of earlier versions (per phase set, folded in pandas): the logs rebuild them."""
    for name in _LEGACY:
        (derived / name).unlink(missing_ok=True)
    for older in derived.glob("phases-*"):
        shutil.rmtree(older, ignore_errors=True)


def _remove_unlisted(folder: Path, manifest: Manifest) -> None:
    keep = {rel for files in manifest.tables.values() for rel in files}
    for path in folder.glob("*.parquet"):
        if path.name not in keep:
            path.unlink(missing_ok=True)
