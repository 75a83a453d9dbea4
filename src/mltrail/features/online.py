"""The online store: an embedded SQLite database in the store's derived folder.

One table per feature view, keyed by the entity's join keys, holding per key the row
with the greatest (event_ts, created_ts) ever materialized: the upsert only replaces a
stored row with a newer one, so loading an old window again never overwrites a newer
value. It lives in ``.cache/`` (out of git) and is rebuilt from the sources by
materializing again. Reads apply the view's ttl against the current time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..storage.feature_events import ViewApplied


class OnlineStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()  # sqlite3 connections belong to one thread

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")  # readers go on while a materialization writes
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS _views (view TEXT PRIMARY KEY, layout TEXT NOT NULL)")
            self._local.conn = conn
        return conn

    def _table(self, db: sqlite3.Connection, view: ViewApplied, keys: Sequence[str]) -> None:
        """Create the view's table; recreate it (empty) when its keys or features changed."""
        layout = ",".join([*keys, "|", *(f"{k}:{v}" for k, v in view.features.items())])
        row = db.execute("SELECT layout FROM _views WHERE view = ?", (view.name,)).fetchone()
        if row is not None and row[0] == layout:
            return
        columns = [*(f'"{k}"' for k in keys), "__event INTEGER NOT NULL", "__created INTEGER NOT NULL",
                   *(f'"{f}"' for f in view.features)]
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(f'DROP TABLE IF EXISTS "{view.name}"')
            db.execute(f'CREATE TABLE "{view.name}" ({", ".join(columns)}, '
                       f'PRIMARY KEY ({", ".join(repr_name(k) for k in keys)})) WITHOUT ROWID')
            db.execute("INSERT OR REPLACE INTO _views VALUES (?, ?)", (view.name, layout))
            db.execute("COMMIT")
        except BaseException:  # never leave the write lock held: every later write would wait on it
            db.execute("ROLLBACK")
            raise

    def write(self, view: ViewApplied, keys: Sequence[str], windows: Iterable[pd.DataFrame]) -> int:
        """Upsert the newest row per key of the windows (batches of one source's rows), all
        in one transaction; the number of distinct keys offered. Batches may come in any
        order: the upsert itself keeps the newest row."""
        columns = [*keys, "__event", "__created", *view.features]
        names = ", ".join(repr_name(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        updates = ", ".join(f"{repr_name(c)} = excluded.{repr_name(c)}" for c in columns[len(keys):])
        table = repr_name(view.name)
        sql = (f"INSERT INTO {table} ({names}) VALUES ({marks}) "
               f"ON CONFLICT ({', '.join(repr_name(k) for k in keys)}) DO UPDATE SET {updates} "
               f"WHERE excluded.__event > {table}.__event OR "
               f"(excluded.__event = {table}.__event AND excluded.__created > {table}.__created)")
        db = self._db()
        self._table(db, view, keys)
        offered = []  # the keys of each batch, to count distinct keys at the end
        db.execute("BEGIN IMMEDIATE")
        try:
            for window in windows:
                if window.empty:
                    continue
                order = [*keys, "__event", *(["__created"] if "__created" in window else [])]
                newest = window.sort_values(order, kind="stable").drop_duplicates(list(keys), keep="last")
                created = newest["__created"] if "__created" in newest else newest["__event"]
                data = [_python(newest[k]) for k in keys] + [newest["__event"].tolist(), created.tolist()]
                data += [_python(newest[f]) for f in view.features]
                db.executemany(sql, zip(*data))
                offered.append(newest[list(keys)])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(pd.concat(offered).drop_duplicates()) if len(offered) > 1 else sum(map(len, offered))

    def read(self, view: ViewApplied, keys: Sequence[str], names: Sequence[str],
             rows: Sequence[Mapping[str, Any]], now: float) -> list[list[Any]]:
        """Per feature, one value per entity row (None: unknown key, or older than the ttl)."""
        db = self._db()
        columns: list[list[Any]] = [[] for _ in names]
        known = db.execute("SELECT 1 FROM _views WHERE view = ?", (view.name,)).fetchone() is not None
        sql = (f"SELECT __event, {', '.join(repr_name(n) for n in names)} FROM {repr_name(view.name)} "
               f"WHERE {' AND '.join(f'{repr_name(k)} = ?' for k in keys)}")
        oldest = None if view.ttl_seconds is None else int((now - view.ttl_seconds) * 1e9)
        booleans = [view.features[n] == "bool" for n in names]
        for row in rows:
            found = db.execute(sql, tuple(row[k] for k in keys)).fetchone() if known else None
            fresh = found if found is not None and (oldest is None or found[0] >= oldest) else None
            for i, column in enumerate(columns):
                value = fresh[i + 1] if fresh is not None else None
                column.append(bool(value) if booleans[i] and value is not None else value)
        return columns

    def count(self, view: str) -> int:
        db = self._db()
        if db.execute("SELECT 1 FROM _views WHERE view = ?", (view,)).fetchone() is None:
            return 0
        return int(db.execute(f"SELECT COUNT(*) FROM {repr_name(view)}").fetchone()[0])

    def newest(self, view: str) -> int | None:
        """The newest event time (ns) held for a view: how fresh serving is."""
        db = self._db()
        if db.execute("SELECT 1 FROM _views WHERE view = ?", (view,)).fetchone() is None:
            return None
        value = db.execute(f"SELECT MAX(__event) FROM {repr_name(view)}").fetchone()[0]
        return None if value is None else int(value)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def repr_name(name: str) -> str:
    """A quoted SQL identifier (names are checked to be letters, digits and '_' already)."""
    return f'"{name}"'


def _python(column: pd.Series) -> list[Any]:
    """Python values for SQLite, with None for every kind of missing value."""
    values = column.astype(object).tolist()
    return [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v for v in values]
