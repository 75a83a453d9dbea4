"""Opening an MLflow tracking URI for an import: without writing to it, and quietly.

MLflow's client is not only a reader. Its database store migrates the schema of a database
an older MLflow wrote when it opens it (``SqlAlchemyStore`` upgrades one that lacks a table
the installed MLflow has, and refuses one whose tables are all there at an older revision),
and the MLflow that wrote it refuses it after that. An import leaves its source as it was:

- a sqlite file is copied into a private folder (SQLite's online backup, read through a
  read-only connection, so a read-only file or folder imports, and a copy taken while
  MLflow writes is whole), the copy is brought to the installed MLflow's schema as
  ``mlflow db upgrade`` would, and the client opens the copy. The file's bytes and mtime
  stay as they were.
- a server's database (PostgreSQL, MySQL, SQL Server) cannot be copied here: it is opened
  only when its schema is the installed MLflow's, else refused, saying what to do.
- an ``http(s)://`` tracking server owns its database: its client only reads.

While the client is open, MLflow's own progress bars (one per artifact it downloads) and
its INFO lines are off; both are as they were after.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import InvalidInputError

PROGRESS_BAR_VARIABLE = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # mlflow.environment_variables
SERVER_DATABASES = ("postgresql", "mysql", "mssql")  # MLflow's database stores besides sqlite
QUIETED_LOGGERS = ("mlflow", "alembic")  # alembic: the schema upgrade of a private copy


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's artifact progress bars and INFO logging off until the block ends, then as
    they were (the variable unset again when it was unset). Call it after importing
    ``mlflow``: importing it sets its logger's level."""
    before = os.environ.get(PROGRESS_BAR_VARIABLE)
    loggers = [logging.getLogger(name) for name in QUIETED_LOGGERS]
    levels = [logger.level for logger in loggers]
    os.environ[PROGRESS_BAR_VARIABLE] = "false"
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PROGRESS_BAR_VARIABLE, None)
        else:
            os.environ[PROGRESS_BAR_VARIABLE] = before
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def database_kind(uri: str) -> str | None:
    """``sqlite``, ``postgresql``, ``mysql`` or ``mssql`` for a database URI MLflow's
    database store takes (``postgresql+psycopg2://...`` too), else None."""
    kind = urlparse(uri).scheme.partition("+")[0]
    return kind if kind == "sqlite" or kind in SERVER_DATABASES else None


def private_copy(uri: str, folder: Path) -> str:
    """The URI of a copy, in ``folder``, of the sqlite database ``uri`` names, at the
    installed MLflow's schema. The source file is only read."""
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise InvalidInputError(f"{uri!r} names no sqlite file to import (give sqlite:///path/to/mlflow.db)")
    path = Path(database).expanduser()
    if not path.is_file():  # MLflow would create an empty store there
        raise InvalidInputError(f"{uri!r}: there is no file {path} (an MLflow sqlite store is a file; "
                                "sqlite:////abs/path.db for an absolute path)")
    copy = folder / "mlflow.db"
    try:
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise InvalidInputError(f"{uri!r}: {path} cannot be read as a sqlite database ({exc})") from None
    copy_uri = url.set(database=str(copy)).render_as_string(hide_password=False)
    _upgrade(copy_uri, uri)
    return copy_uri


def _upgrade(copy_uri: str, source_uri: str) -> None:
    """The copy at the installed MLflow's schema, by MLflow's own ``mlflow db upgrade``
    (a no-op when it is there already)."""
    import mlflow
    from mlflow.db import upgrade

    try:
        upgrade.callback(copy_uri)  # type: ignore[misc]  # (click's callback is the command's function)
    except Exception as exc:  # noqa: BLE001 (alembic's and MLflow's errors alike: the schema is not one it knows)
        raise InvalidInputError(
            f"{source_uri!r}: MLflow {mlflow.__version__} cannot read this database's schema "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); a store written by a "
            "newer MLflow needs that MLflow installed (the file was not changed)") from None


def refuse_migration(uri: str) -> None:
    """Raise unless the database at ``uri`` is at the installed MLflow's schema: opening it
    would migrate it (or create MLflow's tables in a database without them)."""
    import mlflow
    import sqlalchemy
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    # the folder MLflow's own alembic config names (mlflow.store.db.utils._get_alembic_config)
    migrations = ScriptDirectory(os.path.join(os.path.dirname(mlflow.__file__), "store", "db_migrations"))
    try:
        engine = sqlalchemy.create_engine(uri)
    except ModuleNotFoundError as exc:
        raise InvalidInputError(f"reading {_safe(uri)} needs its database driver, as MLflow's client does: "
                                f"pip install {exc.name}") from None
    try:
        with engine.connect() as connection:
            found = MigrationContext.configure(connection).get_current_revision()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise InvalidInputError(f"{_safe(uri)} cannot be read ({type(exc).__name__}: {first})") from None
    finally:
        engine.dispose()
    head = migrations.get_current_head()
    if found == head:
        return
    if found is None:
        raise InvalidInputError(f"{_safe(uri)} holds no MLflow store (no schema revision): nothing to import, "
                                "and MLflow's client would create its tables there")
    raise InvalidInputError(
        f"{_safe(uri)} has MLflow's schema revision {found}, not {head} of the installed MLflow "
        f"{mlflow.__version__}: opening it would migrate it, after which the MLflow that wrote it refuses it. "
        "An import never writes to its source: import from a copy of the database, or with the MLflow "
        "version that wrote it installed")


def _safe(uri: str) -> str:
    """A database URI without its password, for a message."""
    from sqlalchemy.engine import make_url

    return repr(make_url(uri).render_as_string(hide_password=True))


def dispose(client: Any) -> None:
    """Close the database connections MLflow's stores keep for ``client`` (MLflow caches an
    engine per database URI for the process): a private copy's file is then freed when its
    folder goes, not when the process ends. Best effort: these are MLflow's internals."""
    stores = [getattr(getattr(client, "_tracking_client", None), "store", None),
              getattr(getattr(client, "_registry_client_lazy", None), "store", None)]
    for store in stores:
        engine = getattr(store, "engine", None)
        if engine is not None and hasattr(engine, "dispose"):
            engine.dispose()
