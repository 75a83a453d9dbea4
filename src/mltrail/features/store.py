"""The feature store: ``store.features``.

Definitions (entities, feature views) are events in the store, so they are versioned in
git and merge like runs; the feature data stays in the user's Parquet or CSV files.
Training sets come from :meth:`FeatureStore.get_historical_features` (point-in-time
correct, :mod:`.pit`); serving reads the online store (:mod:`.online`), which
:meth:`FeatureStore.materialize` fills from the sources.
"""

from __future__ import annotations

import builtins
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import ValidationError

from ..config import current_user
from ..errors import InvalidInputError, NotFoundError
from ..query.frames import frame_to_arrow
from ..storage import feature_events as ev
from ..storage.blobs import BlobStore, file_sha256
from ..storage.eventfiles import EventFolder, write_event_file
from ..storage.ids import new_id
from ..storage.layout import Layout
from . import pit

ENTITY_TIME = "event_timestamp"  # Feast's name for the entity dataframe's time column
MATERIALIZE_BATCH_ROWS = 1_000_000  # materialize reads a CSV source about this many rows at a time


@dataclass(frozen=True)
class SavedDataset:
    """A training set saved in the store: log ``path`` with ``run.log_dataset``."""

    name: str
    sha256: str
    rows: int
    path: Path


class FeatureStore:
    """Entities, feature views, training sets and online serving on one store."""

    def __init__(self, layout: Layout, blobs: BlobStore) -> None:
        self.layout = layout
        self.blobs = blobs
        self.root = layout.root / "features"
        self._online: Any = None
        self._folder = EventFolder(self.root, ev.FEATURE_EVENT_ADAPTER, "feature")

    # -- definitions -----------------------------------------------------------------

    def events(self) -> list[ev.FeatureEvent]:
        """Every definition, materialization and saved dataset, in ID order."""
        return self._events()

    def _events(self) -> list[ev.FeatureEvent]:
        if not self.root.is_dir():
            return []
        return self._folder.events()

    def _definitions(self) -> tuple[dict[str, ev.EntityApplied], dict[str, ev.ViewApplied]]:
        """Entities and views as now defined, from one read of the definitions folder."""
        events = self._events()
        return ({e.name: e for e in events if isinstance(e, ev.EntityApplied)},
                {e.name: e for e in events if isinstance(e, ev.ViewApplied)})

    def _entities(self) -> dict[str, ev.EntityApplied]:
        return self._definitions()[0]

    def _views(self) -> dict[str, ev.ViewApplied]:
        return self._definitions()[1]

    def _view(self, name: str) -> ev.ViewApplied:
        views = self._views()
        if name not in views:
            raise NotFoundError(f"no feature view {name!r} (views: {', '.join(sorted(views)) or 'none'})")
        return views[name]

    def get(self, name: str) -> ev.ViewApplied:
        """A feature view's definition as it stands (the last one applied)."""
        return self._view(name)

    def exists(self, name: str) -> bool:
        """True when a feature view of this name is defined."""
        return name in self._views()

    def apply_entity(self, name: str, join_keys: Sequence[str], description: str | None = None, *,
                     by: str | None = None) -> ev.EntityApplied:
        """Define (or redefine) an entity: what its rows are keyed by."""
        _check_name("entity", name)
        keys = list(join_keys) if not isinstance(join_keys, str) else [join_keys]
        if not keys:
            raise InvalidInputError(f"entity {name!r} needs at least one join key")
        for key in keys:
            _check_name("join key", key)
        event = self._event(ev.EntityApplied, name=name, join_keys=keys, description=description, by=by)
        self._write(event)
        return event

    def apply_view(self, name: str, entity: str, source: str | os.PathLike[str], timestamp_field: str,
                   features: Mapping[str, str], created_timestamp_field: str | None = None,
                   ttl: str | None = None, description: str | None = None, *,
                   by: str | None = None) -> ev.ViewApplied:
        """Define (or redefine) a feature view over a Parquet or CSV file. The file's
        columns are checked now: the timestamps, the entity's join keys, each feature
        with a type it can hold. Nothing is written when anything is wrong."""
        _check_name("feature view", name)
        entities = self._entities()
        if entity not in entities:
            raise NotFoundError(f"view {name!r}: no entity {entity!r} (apply_entity it first)")
        if not features:
            raise InvalidInputError(f"view {name!r} needs at least one feature")
        for feature, kind in features.items():
            _check_name("feature", feature)
            if feature.startswith("__"):
                raise InvalidInputError(f"view {name!r}: feature names starting with '__' are mltrail's own "
                                        f"(the online store's columns), not {feature!r}")
            if kind not in ev.FEATURE_TYPES:
                raise InvalidInputError(f"view {name!r}: feature {feature!r} has type {kind!r}; "
                                        f"types are {', '.join(ev.FEATURE_TYPES)}")
        # SQLite's names ignore case: two names that differ only in case would share one
        # online table or column, and serving would not give what training read
        _check_distinct_ignoring_case(f"view {name!r}: its join keys and features",
                                      [*entities[entity].join_keys, *features])
        twins = [v for v in self._views() if v != name and v.lower() == name.lower()]
        if twins:
            raise InvalidInputError(f"feature view {name!r} differs from view {twins[0]!r} only in case; "
                                    "view names are unique ignoring case")
        ttl_seconds = _parse_ttl(ttl, name)
        path = Path(source)
        schema = _source_schema(path, name)
        needed = {timestamp_field: "timestamp", **({created_timestamp_field: "timestamp"}
                                                   if created_timestamp_field else {})}
        needed.update({key: "key" for key in entities[entity].join_keys})
        needed.update(features)
        for column, kind in needed.items():
            if column not in schema.names:
                role = "join key" if kind == "key" else ("timestamp" if kind == "timestamp" else "feature")
                raise InvalidInputError(f"view {name!r}: the source {str(path)!r} has no {role} column "
                                        f"{column!r} (it has {', '.join(schema.names)})")
            _check_type(name, column, kind, schema.field(column).type, path)
        event = self._event(ev.ViewApplied, name=name, entity=entity, source=self._source_ref(path),
                            timestamp_field=timestamp_field, created_timestamp_field=created_timestamp_field,
                            ttl_seconds=ttl_seconds, ttl=ttl, features=dict(features), description=description,
                            by=by)
        self._write(event)
        return event

    def entities(self) -> pd.DataFrame:
        rows = [{"entity": e.name, "join_keys": ", ".join(e.join_keys), "description": e.description,
                 "applied": pd.Timestamp(e.ts, unit="s", tz="UTC")} for e in self._entities().values()]
        return pd.DataFrame(rows, columns=["entity", "join_keys", "description", "applied"])

    def list(self) -> pd.DataFrame:
        """Each feature view: entity, source, schema, ttl, and its last materialization."""
        last = self._last_materializations()
        now = pd.Timestamp.now(tz="UTC")
        rows = []
        for view in self._views().values():
            done = last.get(view.name)
            newest = self.online.newest(view.name) if done else None
            newest_ts = pd.Timestamp(newest, unit="ns", tz="UTC") if newest is not None else None
            rows.append({
                "view": view.name, "entity": view.entity, "source": view.source,
                "features": ", ".join(f"{k}:{v}" for k, v in view.features.items()), "ttl": view.ttl,
                "ttl_seconds": view.ttl_seconds,
                "timestamp_field": view.timestamp_field, "created_timestamp_field": view.created_timestamp_field,
                "materialized_until": pd.Timestamp(done.end, unit="s", tz="UTC") if done else None,
                "materialized_at": pd.Timestamp(done.ts, unit="s", tz="UTC") if done else None,
                "source_rows": done.source_rows if done else None,
                "online_keys": self.online.count(view.name) if done else 0,
                "newest_online": newest_ts, "freshness": (now - newest_ts) if newest_ts is not None else None,
                "source_sha256": done.source_sha256 if done else None})
        columns = ["view", "entity", "source", "features", "ttl", "ttl_seconds", "timestamp_field", "created_timestamp_field",
                   "materialized_until", "materialized_at", "source_rows", "online_keys", "newest_online",
                   "freshness", "source_sha256"]
        return pd.DataFrame(rows, columns=columns)

    # -- training sets ---------------------------------------------------------------

    def get_historical_features(self, entity_df: pd.DataFrame, features: Sequence[str],
                                full_feature_names: bool = False, as_known_then: bool = False) -> pd.DataFrame:
        """``entity_df`` with the requested features joined point-in-time correctly: one
        output row per input row, in the input's order, input columns unchanged."""
        if not isinstance(entity_df, pd.DataFrame):
            raise InvalidInputError("entity_df must be a pandas DataFrame")
        if ENTITY_TIME not in entity_df.columns:
            raise InvalidInputError(f"entity_df has no {ENTITY_TIME!r} column (it has "
                                    f"{', '.join(map(str, entity_df.columns))})")
        entities, views = self._definitions()
        wanted = _resolve_refs(features, views)
        try:
            times = pit.to_utc_ns(entity_df[ENTITY_TIME], f"entity_df[{ENTITY_TIME!r}]")
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"entity_df[{ENTITY_TIME!r}]: {exc}") from None
        result = entity_df.copy()
        added: dict[str, str] = {}
        for view, names in wanted:
            keys = entities[view.entity].join_keys
            missing = [k for k in keys if k not in entity_df.columns]
            if missing:
                raise InvalidInputError(f"entity_df lacks the join key(s) {', '.join(missing)} of view "
                                        f"{view.name!r} (entity {view.entity!r})")
            path = self._source_path(view.source)
            table = _read_table(path, _source_columns(view, [*keys, *names]), view.name)
            data = _source_frame(view, table, keys, path)  # keys and times in pandas; features stay in Arrow
            for name in names:
                _check_type(view.name, name, view.features[name], table.schema.field(name).type, path)
            entity_keys = _aligned_keys(entity_df[keys], data[keys], view.name)
            chosen = pit.point_in_time(
                entity_keys, times, data[keys], data["__event"].to_numpy(),
                data["__created"].to_numpy() if view.created_timestamp_field else None,
                None if view.ttl_seconds is None else int(view.ttl_seconds * 1e9), as_known_then)
            for feature in names:
                column = f"{view.name}__{feature}" if full_feature_names else feature
                if column in result.columns or column in added:
                    clash = added.get(column, "entity_df")
                    raise InvalidInputError(f"output column {column!r} of view {view.name!r} clashes with "
                                            f"{clash}: pass full_feature_names=True")
                added[column] = f"view {view.name!r}"
                values = pit.take(table[feature], chosen, view.features[feature])
                values.index = result.index
                result[column] = values
        return result

    def save_dataset(self, name: str, df: pd.DataFrame, features: Sequence[str] = (), *,
                     by: str | None = None) -> SavedDataset:
        """Save a training set as Parquet in the store (content-addressed) and record it;
        ``run.log_dataset(saved.path, name=...)`` ties a run to exactly this data."""
        _check_name("dataset", name)
        if not isinstance(df, pd.DataFrame):
            raise InvalidInputError("save_dataset needs a pandas DataFrame")
        staging = self.layout.cache / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=staging) as tmp:
            file = Path(tmp) / f"{name}.parquet"
            pq.write_table(frame_to_arrow(df), file)
            sha256, _, in_git = self.blobs.put_file(file)
        path = self.layout.blob_path(sha256, large=not in_git)
        event = self._event(ev.DatasetSaved, name=name, sha256=sha256, rows=len(df),
                            columns=[str(c) for c in df.columns],
                            path=path.relative_to(self.layout.root).as_posix(), features=list(features), by=by)
        self._write(event)
        return SavedDataset(name, sha256, len(df), path)

    def datasets(self) -> pd.DataFrame:
        rows = [{"dataset": e.name, "rows": e.rows, "columns": len(e.columns), "sha256": e.sha256,
                 "path": e.path, "features": ", ".join(e.features), "saved": pd.Timestamp(e.ts, unit="s", tz="UTC")}
                for e in self._events() if isinstance(e, ev.DatasetSaved)]
        return pd.DataFrame(rows, columns=["dataset", "rows", "columns", "sha256", "path", "features", "saved"])

    def load_dataset(self, name: str) -> pd.DataFrame:
        """The newest training set saved under ``name``."""
        saved = [e for e in self._events() if isinstance(e, ev.DatasetSaved) and e.name == name]
        if not saved:
            raise NotFoundError(f"no saved dataset {name!r}")
        return pq.read_table(self.blobs.verified(saved[-1].sha256, f"saved dataset {name!r}")).to_pandas()

    # -- online ----------------------------------------------------------------------

    @property
    def online(self) -> Any:
        """The online store (:class:`mltrail.features.online.OnlineStore`)."""
        if self._online is None:
            from .online import OnlineStore

            self._online = OnlineStore(self.layout.cache / "features" / "online.sqlite")
        return self._online

    def materialize(self, start: Any = None, end: Any = None, views: Sequence[str] | None = None, *,
                    by: str | None = None) -> pd.DataFrame:
        """Load each view's rows with ``start <= event_ts <= end`` into the online store,
        keeping per key the row with the greatest (event_ts, created_ts) ever seen: an
        older window loaded again never overwrites a newer value. Without ``start``, each
        view continues from the end of its last materialization (incremental)."""
        end_s = _epoch_seconds(end, "end") if end is not None else time.time()
        start_s = _epoch_seconds(start, "start") if start is not None else None
        if start_s is not None and start_s > end_s:
            raise InvalidInputError(f"materialize: start {start} is after end {end}")
        chosen = [self._view(v) for v in views] if views else list(self._views().values())
        last = self._last_materializations()
        report = []
        for view in chosen:
            began = time.perf_counter()
            window_start = start_s if start is not None else (last[view.name].end if view.name in last else None)
            keys = self._entities()[view.entity].join_keys
            path = self._source_path(view.source)
            sha256, _ = file_sha256(path) if path.is_file() else ("", 0)
            counted = {"source": 0, "window": 0}
            windows = self._window_batches(view, [*keys, *view.features], window_start, end_s, counted)
            written = self.online.write(view, keys, windows)  # one transaction: all batches or none
            seconds = time.perf_counter() - began
            event = self._event(ev.Materialized, view=view.name, start=window_start, end=end_s,
                                source_sha256=sha256, source_rows=counted["source"],
                                rows_in_window=counted["window"], keys_written=written, seconds=seconds, by=by)
            self._write(event)
            report.append({"view": view.name, "start": window_start, "end": end_s, "rows": counted["window"],
                           "keys": written, "seconds": seconds})
        return pd.DataFrame(report, columns=["view", "start", "end", "rows", "keys", "seconds"])

    def get_online_features(self, features: Sequence[str], entity_rows: Sequence[Mapping[str, Any]],
                            full_feature_names: bool = False) -> dict[str, builtins.list[Any]]:
        """Feature values for each entity row, as columns (Feast's ``to_dict()`` shape).
        A value older than its view's ttl reads as None."""
        entities, views = self._definitions()
        wanted = _resolve_refs(features, views)
        rows = list(entity_rows)
        result: dict[str, list[Any]] = {}
        for view, names in wanted:
            keys = entities[view.entity].join_keys
            for row in rows:
                missing = [k for k in keys if k not in row]
                if missing:
                    raise InvalidInputError(f"an entity row lacks the join key(s) {', '.join(missing)} "
                                            f"of view {view.name!r}")
            for key in keys:
                result.setdefault(key, [row[key] for row in rows])
            values = self.online.read(view, keys, names, rows, time.time())
            for feature, column in zip(names, values):
                result[f"{view.name}__{feature}" if full_feature_names else feature] = column
        return result

    # -- helpers ---------------------------------------------------------------------

    def _window_batches(self, view: ev.ViewApplied, columns: builtins.list[str], start: float | None, end: float,
                        counted: dict[str, int]) -> Iterator[pd.DataFrame]:
        """The source's rows with ``start <= event time <= end`` (:func:`_source_frame`'s
        columns), a batch at a time so memory stays bounded; ``counted`` adds up the rows
        read (``source``) and kept (``window``)."""
        path = self._source_path(view.source)
        for table in _read_batches(path, _source_columns(view, columns), view.name, MATERIALIZE_BATCH_ROWS):
            batch = _source_frame(view, table, columns, path)
            event_ns = batch["__event"].to_numpy()
            inside = event_ns <= int(end * 1e9)
            if start is not None:
                inside &= event_ns >= int(start * 1e9)
            counted["source"] += len(batch)
            counted["window"] += int(inside.sum())
            yield batch[inside]

    def _last_materializations(self) -> dict[str, ev.Materialized]:
        last: dict[str, ev.Materialized] = {}
        for event in self._events():
            if isinstance(event, ev.Materialized):
                current = last.get(event.view)
                if current is None or event.end >= current.end:
                    last[event.view] = event
        return last

    def _source_ref(self, path: Path) -> str:
        """Relative to the folder holding the store (the project) when the file is inside it."""
        base = self.layout.root.resolve().parent
        resolved = path.resolve()
        try:
            return resolved.relative_to(base).as_posix()
        except ValueError:
            return str(resolved)

    def _source_path(self, ref: str) -> Path:
        path = Path(ref)
        return path if path.is_absolute() else self.layout.root.resolve().parent / path

    def _event(self, model: type[ev.FeatureEvent], **fields: Any) -> Any:
        try:
            fields["by"] = fields.get("by") or current_user()
            return model(ts=time.time(), id=new_id(), **fields)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InvalidInputError(f"invalid {model.__name__}: {problems}") from None

    def _write(self, event: ev.FeatureEvent) -> None:
        write_event_file(self.root, event.id, event)


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not ev.NAME.fullmatch(name):
        raise InvalidInputError(f"{kind} name {name!r} must be letters, digits and '_', not starting "
                                "with a digit (at most 100)")


def _check_distinct_ignoring_case(what: str, names: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if other != name or names.count(name) > 1:
            raise InvalidInputError(f"{what} must differ ignoring case: {other!r} and {name!r}")


def _parse_ttl(ttl: str | None, view: str) -> float | None:
    if ttl is None:
        return None
    try:  # pandas parses '2h', '30min', '1h30m'; it wants days as 'D' and deprecates '1d'
        seconds = pd.Timedelta(re.sub(r"(\d)\s*d(?![a-z])", r"\1D", str(ttl))).total_seconds()
    except (ValueError, TypeError):
        raise InvalidInputError(f"view {view!r}: ttl {ttl!r} does not parse (try '2h', '30m', '1d', '1h30m')") from None
    if not seconds > 0:
        raise InvalidInputError(f"view {view!r}: ttl {ttl!r} must be positive")
    return seconds


def _source_schema(path: Path, view: str) -> pa.Schema:
    if not path.is_file():
        raise NotFoundError(f"view {view!r}: the source {str(path)!r} does not exist")
    if path.suffix.lower() == ".parquet":
        return pq.read_schema(path)
    if path.suffix.lower() == ".csv":
        return pacsv.open_csv(path).schema
    raise InvalidInputError(f"view {view!r}: the source {str(path)!r} is not a .parquet or .csv file")


def _resolve_refs(refs: Sequence[str] | str, views: dict[str, ev.ViewApplied]
                  ) -> list[tuple[ev.ViewApplied, list[str]]]:
    """``view:feature`` references as (view, its features asked for), checked against ``views``."""
    if isinstance(refs, str):
        refs = [refs]
    wanted: dict[str, list[str]] = {}
    for ref in refs:
        view_name, sep, feature = str(ref).partition(":")
        if not sep or not feature:
            raise InvalidInputError(f"feature reference {ref!r} must be 'view:feature'")
        if view_name not in views:
            raise NotFoundError(f"no feature view {view_name!r} (in {ref!r})")
        if feature not in views[view_name].features:
            raise NotFoundError(f"view {view_name!r} has no feature {feature!r} (it has "
                                f"{', '.join(views[view_name].features)})")
        wanted.setdefault(view_name, [])
        if feature not in wanted[view_name]:
            wanted[view_name].append(feature)
    if not wanted:
        raise InvalidInputError("no features requested")
    return [(views[name], names) for name, names in wanted.items()]


def _source_columns(view: ev.ViewApplied, columns: list[str]) -> list[str]:
    """``columns`` and the view's time columns, each once."""
    extra = [view.timestamp_field] + ([view.created_timestamp_field] if view.created_timestamp_field else [])
    return list(dict.fromkeys([*columns, *extra]))


def _source_frame(view: ev.ViewApplied, table: pa.Table, columns: list[str], path: Path) -> pd.DataFrame:
    """``columns`` of a source table, types checked, with ``__event`` and ``__created`` as
    int64 UTC nanoseconds."""
    for column in columns:
        kind = view.features.get(column, "key")
        _check_type(view.name, column, kind, table.schema.field(column).type, path)
    frame = table.select(columns).to_pandas()
    try:
        frame["__event"] = pit.to_utc_ns(table[view.timestamp_field].to_pandas(), view.timestamp_field)
        if view.created_timestamp_field:
            frame["__created"] = pit.to_utc_ns(table[view.created_timestamp_field].to_pandas(),
                                               view.created_timestamp_field)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"view {view.name!r}, source {str(path)!r}: {exc}") from None
    return frame


def _read_batches(path: Path, columns: list[str], view: str, rows: int) -> Iterator[pa.Table]:
    """A source's ``columns`` a part at a time: Parquet by row group (as its writer cut
    it; ``iter_batches`` read ahead so far that it held ~1.7 GB of a 1 GB file at once),
    CSV by blocks of about ``rows`` rows."""
    if not path.is_file():
        raise NotFoundError(f"view {view!r}: the source {str(path)!r} does not exist")
    try:
        if path.suffix.lower() == ".parquet":
            parquet = pq.ParquetFile(path)
            parts: Iterator[pa.Table] = (parquet.read_row_group(i, columns=columns)
                                         for i in range(parquet.num_row_groups))
        else:
            blocks = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=max(rows * 64, 1 << 16)),
                                    convert_options=pacsv.ConvertOptions(include_columns=columns))
            parts = (pa.Table.from_batches([block]) for block in blocks)
        yield from parts
    except (pa.ArrowInvalid, KeyError) as exc:
        raise InvalidInputError(f"view {view!r}: cannot read {columns} from {str(path)!r}: {exc}") from None


def _read_table(path: Path, columns: list[str], view: str) -> pa.Table:
    """A source's ``columns``, whole. Parquet is read a row group at a time and the parts
    joined: ``pq.read_table``'s read-ahead took the process to ~2.3 GB of RSS for a 1 GB
    file, against ~1.3 GB, and twice the time."""
    if path.suffix.lower() != ".parquet":
        if not path.is_file():
            raise NotFoundError(f"view {view!r}: the source {str(path)!r} does not exist")
        try:
            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=columns))
        except (pa.ArrowInvalid, KeyError) as exc:
            raise InvalidInputError(f"view {view!r}: cannot read {columns} from {str(path)!r}: {exc}") from None
    parts = list(_read_batches(path, columns, view, MATERIALIZE_BATCH_ROWS))
    if not parts:  # a file without row groups: its schema, no rows
        return pq.ParquetFile(path).schema_arrow.empty_table().select(columns)
    return pa.concat_tables(parts)


def _check_type(view: str, column: str, kind: str, arrow_type: pa.DataType, path: Path) -> None:
    ok = {
        "float": pa.types.is_floating(arrow_type) or pa.types.is_integer(arrow_type) or pa.types.is_null(arrow_type),
        "int": pa.types.is_integer(arrow_type) or pa.types.is_null(arrow_type),
        "string": pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
        or pa.types.is_null(arrow_type),
        "bool": pa.types.is_boolean(arrow_type) or pa.types.is_null(arrow_type),
        "timestamp": pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type)
        or pa.types.is_string(arrow_type),
        "key": not pa.types.is_floating(arrow_type) and not pa.types.is_nested(arrow_type),
    }[kind]
    if not ok:
        what = {"key": "join key", "timestamp": "timestamp"}.get(kind, f"{kind} feature")
        raise InvalidInputError(f"view {view!r}: column {column!r} of {str(path)!r} is {arrow_type}, "
                                f"which a {what} cannot be")


def _aligned_keys(entity: pd.DataFrame, view: pd.DataFrame, view_name: str) -> pd.DataFrame:
    """The entity's key columns cast to the view's key types (an as-of join needs equal types)."""
    aligned = {}
    for column in entity.columns:
        target = view[column].dtype
        given = entity[column]
        try:
            cast = given.astype(target)
            back = cast.astype(given.dtype)
        except (ValueError, TypeError, OverflowError):
            raise InvalidInputError(f"entity_df[{column!r}] ({given.dtype}) does not match view "
                                    f"{view_name!r}'s join key type ({target})") from None
        changed = ~((back == given).fillna(False).astype(bool) | given.isna().to_numpy())
        if changed.any():  # a cast that changes a key (1001.9 -> 1001) would join another entity
            first = given[changed].iloc[0]
            first = first.item() if hasattr(first, "item") else first  # 1001.9, not np.float64(1001.9)
            raise InvalidInputError(f"entity_df[{column!r}] holds {first!r}, which is no {target} key of view "
                                    f"{view_name!r}: keys join exactly")
        aligned[column] = cast
    return pd.DataFrame(aligned)


def _epoch_seconds(value: Any, what: str) -> float:
    """A window bound as seconds since the epoch: a number of seconds or a time; one the
    event times cannot be compared with (NaN, past year 2262) is refused."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if not (math.isfinite(seconds) and abs(seconds) < _MAX_SECONDS):
            raise InvalidInputError(f"materialize: {what} {value!r} is not a time (seconds since 1970 within "
                                    "pandas' range, up to the year 2262)")
        return seconds
    try:
        stamp = pd.Timestamp(value)
        if stamp is pd.NaT:
            raise ValueError(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        return stamp.value / 1e9
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise InvalidInputError(f"materialize: {what} {value!r} is not a time (up to the year 2262)") from None


_MAX_SECONDS = pd.Timestamp.max.value / 1e9  # event times are nanoseconds in an int64

