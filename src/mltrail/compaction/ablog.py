"""Compaction of an A/B experiment's exposure and feedback logs into per-unit tables.

The same reader and promises as the run tables (:mod:`.reader`): incremental (only
bytes not read before), tolerant (a corrupt or torn line is skipped and reported with
its file and line; the rest is compacted), safe while writers append, rebuildable from
the logs alone. It writes two tables into the experiment's derived folder:

- ``exposures``: one row per (phase, unit): the variant of its earliest exposure, that
  time, and ``crossover`` when the unit was served more than one variant in the phase.
- ``feedback``: one row per (phase, unit, metric): the sum and count of its values and
  its first time. A feedback belongs to the phase that was running when it happened
  (its timestamp against the phases' start times), as GrowthBook's phases do.

Exposures and feedback are never joined here: feedback whose unit has no exposure yet
is kept, and joins when the exposure arrives (the analysis joins them). Every fold is
order-free (minimum times, sums, counts), so the order in which processes flush their
logs never changes a result.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from filelock import FileLock
from pydantic import ValidationError

from ..storage.ab_events import LOG_LINE_ADAPTER
from ..storage.eventlog import BadLine
from ..storage.events import SCHEMA_VERSION
from .manifest import Manifest, commit_manifest, load_manifest
from .reader import Span, bad_line_records, load_new_bytes, read_columnar
from .scan import Scan, check_sizes

_LINE_SCHEMA = pa.schema([("v", pa.int64()), ("type", pa.string()), ("ts", pa.float64()),
                          ("experiment", pa.string()), ("seq", pa.int64()), ("unit", pa.string()),
                          ("variant", pa.string()), ("phase", pa.int64()), ("metric", pa.string()),
                          ("value", pa.float64())])
EXPOSURES = pa.schema([("phase", pa.int64()), ("unit", pa.string()), ("variant", pa.string()),
                       ("first_ts", pa.float64()), ("crossover", pa.bool_())])
FEEDBACK = pa.schema([("phase", pa.int64()), ("unit", pa.string()), ("metric", pa.string()),
                      ("sum", pa.float64()), ("count", pa.int64()), ("first_ts", pa.float64())])


@dataclass
class AbLogTables:
    """An experiment's compacted log, and what this compaction read and skipped."""

    exposures: pd.DataFrame
    feedback: pd.DataFrame
    bad_lines: list[BadLine]  # every line skipped so far (the last 1,000)
    new_bad_lines: list[BadLine] = field(default_factory=list)  # found by this compaction
    lines_read: int = 0
    bytes_read: int = 0
    lines_read_one_by_one: int = 0  # in segments holding a bad line: the slow, tolerant path


# the last tables read per derived folder, by manifest generation: the dashboard asks
# for results every few seconds, and most of the time nothing was logged in between
_cache: dict[Path, tuple[int, pd.DataFrame, pd.DataFrame]] = {}


def compact_ab_log(log_folder: Path, derived: Path, phase_starts: Sequence[float],
                   rebuild: bool = False, label: str | None = None) -> AbLogTables:
    """Fold the new lines of ``log_folder/*.jsonl`` into the tables under ``derived``.

    ``phase_starts``: when each phase began (epoch seconds, phase 1 first). Tables are
    kept per set of phases: a new phase re-folds the feedback against the new bounds.
    ``label`` names the log folder in reports of skipped lines (``ab/KEY/log``).
    """
    folder = derived / f"phases-{_fingerprint(phase_starts)}"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(derived / "compaction.lock")):
        _remove_other_folders(derived, folder)
        manifest = Manifest() if rebuild else load_manifest(folder, private=True)
        found = _scan(log_folder, manifest)
        if found.must_rebuild and not rebuild:
            rebuild, manifest = True, Manifest(generation=manifest.generation)
            found = _scan(log_folder, manifest)
        if rebuild:
            exposures, feedback = EXPOSURES.empty_table().to_pandas(), FEEDBACK.empty_table().to_pandas()
        else:
            exposures, feedback = _read_tables(folder, manifest)
        tables = AbLogTables(exposures, feedback, _bad_lines(manifest))
        if not found.todo and not rebuild:
            return tables
        loaded = load_new_bytes(found.todo, manifest.files)
        events, bad, one_by_one = _parse(loaded.buffer, loaded.spans, label or str(log_folder))
        exposures = _fold_exposures(exposures, events[events["type"] == "exposure"])
        feedback = _fold_feedback(feedback, events[events["type"] == "feedback"], phase_starts)
        manifest.generation += 1
        for name, frame, schema in (("exposures", exposures, EXPOSURES), ("feedback", feedback, FEEDBACK)):
            rel = f"{name}-{manifest.generation:08d}.parquet"
            pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), folder / rel,
                           compression="zstd")
            manifest.tables[name] = [rel]
        manifest.bad_lines = (manifest.bad_lines + bad_line_records(bad))[-1000:]
        commit_manifest(folder, manifest)  # after the tables: the offsets never run ahead of them
        _remove_unlisted(folder, manifest)
        _cache[folder] = (manifest.generation, exposures, feedback)
        return AbLogTables(exposures, feedback, _bad_lines(manifest), bad, len(events), loaded.bytes_read,
                           one_by_one)


def phase_of(ts: np.ndarray, phase_starts: Sequence[float]) -> np.ndarray:
    """The phase (1-based) running at each time; a time before phase 1 is phase 1's."""
    return np.maximum(np.searchsorted(np.asarray(phase_starts, dtype=float), ts, side="right"), 1)


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


def _read_tables(folder: Path, manifest: Manifest) -> tuple[pd.DataFrame, pd.DataFrame]:
    cached = _cache.get(folder)
    if cached is not None and cached[0] == manifest.generation:
        return cached[1], cached[2]
    frames = []
    for name, schema in (("exposures", EXPOSURES), ("feedback", FEEDBACK)):
        files = manifest.tables.get(name)
        table = pq.read_table(folder / files[0], schema=schema) if files else schema.empty_table()
        frames.append(table.to_pandas())
    _cache[folder] = (manifest.generation, frames[0], frames[1])
    return frames[0], frames[1]


def _bad_lines(manifest: Manifest) -> list[BadLine]:
    return [BadLine(b["file"], b["line"], b["reason"]) for b in manifest.bad_lines]


def _parse(buffer: bytearray, spans: list[Span], label: str) -> tuple[pd.DataFrame, list[BadLine], int]:
    """The spans' events as one frame of ``_LINE_SCHEMA``'s columns, the bad lines, and
    how many lines were read one by one.

    The columnar reader takes everything at once when every line is good; a span that
    holds a bad line is read line by line, and only its bad lines are lost."""
    if not spans:
        return _LINE_SCHEMA.empty_table().to_pandas(), [], 0
    table = _valid_columnar(buffer, spans)
    if table is not None:
        return table.to_pandas(), [], 0
    parts, bad, one_by_one = [], [], 0
    for span in spans:
        table = _valid_columnar(buffer, [span])
        if table is None:
            table, skipped = _per_line(buffer, span, f"{label}/{span.rel}")
            bad.extend(skipped)
            one_by_one += span.lines
        parts.append(table)
    return pa.concat_tables(parts).to_pandas(), bad, one_by_one


def _valid_columnar(buffer: bytearray, spans: list[Span]) -> pa.Table | None:
    """The columnar read, when every line in it is a well-formed event; else None."""
    table = read_columnar(buffer, spans, _LINE_SCHEMA)
    if table is None:
        return None
    kinds = table["type"]
    exposure, feedback = pc.equal(kinds, "exposure"), pc.equal(kinds, "feedback")
    # Kleene logic: a feedback line has no phase (null), and "not an exposure, or a valid
    # phase" must still be true for it
    checks = [pc.is_valid(table[c]) for c in ("v", "ts", "experiment", "seq", "unit")]
    checks += [pc.less_equal(table["v"], SCHEMA_VERSION), pc.greater_equal(table["v"], 1),
               pc.is_finite(table["ts"]), pc.greater(pc.utf8_length(table["unit"]), 0),
               pc.or_kleene(exposure, feedback),
               pc.or_kleene(pc.invert(exposure), pc.and_kleene(pc.is_valid(table["variant"]),
                                                               pc.greater_equal(table["phase"], 1))),
               pc.or_kleene(pc.invert(feedback), pc.and_kleene(pc.is_valid(table["metric"]),
                                                               pc.is_finite(table["value"])))]
    ok = checks[0]
    for condition in checks[1:]:
        ok = pc.and_kleene(ok, condition)
    return table if pc.all(pc.fill_null(ok, False)).as_py() else None


def _per_line(buffer: bytearray, span: Span, file: str) -> tuple[pa.Table, list[BadLine]]:
    rows: dict[str, list[Any]] = {name: [] for name in _LINE_SCHEMA.names}
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
    return pa.table(rows, schema=_LINE_SCHEMA), bad


# -- folding ---------------------------------------------------------------------------

def _fold_exposures(known: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    if not len(new):
        return known
    # the earliest exposure decides the variant (ties: the smallest variant name), so the
    # result is the same whatever order the lines were read in
    ordered = new.sort_values(["ts", "variant"], kind="stable")
    grouped = (ordered.groupby(["phase", "unit"], sort=False)
               .agg(variant=("variant", "first"), first_ts=("ts", "first"), variants=("variant", "nunique"))
               .reset_index())
    grouped["crossover"] = grouped.pop("variants") > 1
    merged = known.merge(grouped, on=["phase", "unit"], how="outer", suffixes=("", "_new"))
    both = merged["variant"].notna() & merged["variant_new"].notna()
    new_first = merged["variant"].isna() | (merged["first_ts_new"] < merged["first_ts"]) | (
        (merged["first_ts_new"] == merged["first_ts"]) & (merged["variant_new"] < merged["variant"]))
    merged["crossover"] = (merged["crossover"].astype("boolean").fillna(False)
                           | merged["crossover_new"].astype("boolean").fillna(False)
                           | (both & (merged["variant"] != merged["variant_new"]))).astype(bool)
    merged["variant"] = merged["variant_new"].where(new_first, merged["variant"])
    merged["first_ts"] = merged[["first_ts", "first_ts_new"]].min(axis=1)
    folded = merged[["phase", "unit", "variant", "first_ts", "crossover"]]
    return folded.astype({"phase": "int64"}).sort_values(["phase", "unit"]).reset_index(drop=True)


def _fold_feedback(known: pd.DataFrame, new: pd.DataFrame, phase_starts: Sequence[float]) -> pd.DataFrame:
    if not len(new):
        return known
    new = pd.DataFrame({"phase": phase_of(new["ts"].to_numpy(dtype=float), phase_starts),
                        "unit": new["unit"], "metric": new["metric"], "sum": new["value"],
                        "count": 1, "first_ts": new["ts"]})
    combined = pd.concat([known, new], ignore_index=True) if len(known) else new
    folded = (combined.groupby(["phase", "unit", "metric"], sort=True)
              .agg(sum=("sum", "sum"), count=("count", "sum"), first_ts=("first_ts", "min"))
              .reset_index())
    return folded.astype({"phase": "int64", "count": "int64"})


# -- housekeeping ----------------------------------------------------------------------

def _fingerprint(phase_starts: Sequence[float]) -> str:
    text = ",".join(repr(float(s)) if math.isfinite(s) else "0" for s in phase_starts)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


_LEGACY = ("units.parquet", "daily.parquet", "offsets.json")  # before the tables were per phase set


def _remove_other_folders(derived: Path, keep: Path) -> None:
    """Tables folded against other phase bounds are stale once the phases changed."""
    for name in _LEGACY:
        (derived / name).unlink(missing_ok=True)
    for other in derived.glob("phases-*"):
        if other != keep:
            shutil.rmtree(other, ignore_errors=True)
            _cache.pop(other, None)


def _remove_unlisted(folder: Path, manifest: Manifest) -> None:
    keep = {rel for files in manifest.tables.values() for rel in files}
    for path in folder.glob("*.parquet"):
        if path.name not in keep:
            path.unlink(missing_ok=True)
