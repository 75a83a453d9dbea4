"""An import never writes to its source, and is quiet: a sqlite store an older MLflow wrote
(its schema made older with MLflow's own migrations) keeps its bytes and mtime when a newer
MLflow's client reads it, read-only files and folders import, and the output is mltrail's
summary, not MLflow's progress bars and log lines.

MLflow runs in subprocesses, as in :mod:`.test_against_mlflow`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import mltrail
from mltrail.errors import InvalidInputError
from mltrail.migration.mlflow_import import ImportSummary

from .test_against_mlflow import run_python

pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")
pytestmark = pytest.mark.slow

# the newest schema revision MLflow 3.17.2 knows (its db_migrations' head): a store it wrote
OLDER_REVISION = "dc11669786a5"

GRID_SEARCH = """
import sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("cv")
for search in range(2):  # two grid searches: their folds share names, as MLflow allows
    with mlflow.start_run(run_name="search"):
        mlflow.log_param("folds", 2)
        mlflow.log_text("the search", "notes/search.txt")
        for fold in range(2):
            with mlflow.start_run(run_name=f"fold-{fold}", nested=True):
                mlflow.log_metric("acc", 0.5 + fold / 10 + search / 100)
                mlflow.log_text(f"fold {fold}", "notes/fold.txt")
"""

DOWNGRADE = """
import sys
import sqlalchemy
from alembic import command
from mlflow.store.db.utils import _get_alembic_config
engine = sqlalchemy.create_engine(sys.argv[1])
config = _get_alembic_config(sys.argv[1])
with engine.begin() as connection:
    config.attributes["connection"] = connection
    command.downgrade(config, sys.argv[2])
"""


def revision(path: Path) -> str:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        return str(db.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def older_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sqlite store as MLflow 3.17 left it: written by the installed MLflow, then taken
    down to 3.17.2's schema by MLflow's own migrations. Its artifacts are in ./mlruns."""
    import mlflow
    from alembic.script import ScriptDirectory

    migrations = ScriptDirectory(os.path.join(os.path.dirname(mlflow.__file__), "store", "db_migrations"))
    if OLDER_REVISION not in {script.revision for script in migrations.walk_revisions()} \
            or migrations.get_current_head() == OLDER_REVISION:
        pytest.skip(f"the installed MLflow {mlflow.__version__} has no schema newer than 3.17.2's")
    folder = tmp_path_factory.mktemp("older")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    run_python(GRID_SEARCH, uri, cwd=folder)
    run_python(DOWNGRADE, uri, OLDER_REVISION, cwd=folder)
    assert revision(folder / "mlflow.db") == OLDER_REVISION
    return folder


def imported(store: mltrail.Store, source: Any) -> ImportSummary:
    with warnings.catch_warnings():  # MLflow's own deprecation warnings (SQLAlchemy 2.1's among them)
        warnings.simplefilter("ignore")
        return store.import_mlflow(source)


def copied(older_store: Path, target: Path) -> Path:
    """The older store's database and artifacts in ``target`` (artifact URIs are absolute:
    the copy's runs name the module's artifacts, which nothing changes)."""
    target.mkdir(parents=True)
    shutil.copy2(older_store / "mlflow.db", target / "mlflow.db")
    return target / "mlflow.db"


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Files 0444 and folders 0555 while the block runs (root ignores them: the bytes and
    mtimes checked beside are what proves nothing was written)."""
    modes = {path: stat.S_IMODE(path.stat().st_mode) for path in paths}
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


@pytest.mark.parametrize("locked", [False, True], ids=["writable", "read-only"])
def test_a_store_an_older_mlflow_wrote_imports_whole_and_is_left_as_it_was(
        older_store: Path, tmp_path: Path, locked: bool) -> None:
    db = copied(older_store, tmp_path / "source")
    before = fingerprint(db)
    store = mltrail.Store(tmp_path / "store")
    with read_only(db, db.parent) if locked else read_only():
        summary = imported(store, f"sqlite:///{db}")
    assert fingerprint(db) == before and revision(db) == OLDER_REVISION  # not migrated, not touched
    assert sorted(os.listdir(db.parent)) == ["mlflow.db"]  # no journal, no lock file left beside it
    assert summary.runs_new == 6 and not [s for s in summary.skipped if s.what != "experiment"], summary.text()
    runs = store.search_runs("cv")
    assert sorted(runs["run_name"]) == ["fold-0", "fold-0", "fold-1", "fold-1", "search", "search"]
    assert summary.artifacts == 6
    # the copy is gone once the import ends
    assert not list((store.root / ".cache" / "staging").glob("**/mlflow.db"))


def test_a_store_whose_tables_are_all_there_at_an_older_revision_imports(tmp_path: Path) -> None:
    """One migration behind the installed MLflow (no table missing): MLflow's client refuses
    to open it ("out-of-date database schema"); the import reads it, through its copy."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_python(GRID_SEARCH, uri, cwd=tmp_path)
    head = revision(tmp_path / "mlflow.db")
    run_python(DOWNGRADE, uri, "-1", cwd=tmp_path)
    older = revision(tmp_path / "mlflow.db")
    assert older != head
    before = fingerprint(tmp_path / "mlflow.db")
    summary = imported(mltrail.Store(tmp_path / "store"), uri)
    assert summary.runs_new == 6 and summary.artifacts == 6, summary.text()
    assert fingerprint(tmp_path / "mlflow.db") == before and revision(tmp_path / "mlflow.db") == older


def test_a_database_at_another_schema_is_refused_unopened(older_store: Path, tmp_path: Path) -> None:
    """A server's database (PostgreSQL...) cannot be copied: at a schema other than the
    installed MLflow's it is refused, before MLflow's client would migrate it. sqlite
    stands in for the server here: the check is the same SQL."""
    from mltrail.migration.mlflow_client import refuse_migration

    db = copied(older_store, tmp_path / "source")
    before = fingerprint(db)
    with pytest.raises(InvalidInputError, match=f"revision {OLDER_REVISION}.*would migrate it"):
        refuse_migration(f"sqlite:///{db}")
    assert fingerprint(db) == before
    with sqlite3.connect(tmp_path / "empty.db") as empty:
        empty.execute("CREATE TABLE unrelated (x)")
    with pytest.raises(InvalidInputError, match="holds no MLflow store"):
        refuse_migration(f"sqlite:///{tmp_path / 'empty.db'}")


def test_a_sqlite_uri_naming_no_file_is_refused_and_no_file_is_made(tmp_path: Path) -> None:
    store = mltrail.Store(tmp_path / "store")
    with pytest.raises(InvalidInputError, match="there is no file"):
        imported(store, f"sqlite:///{tmp_path / 'typo.db'}")
    assert not (tmp_path / "typo.db").exists()  # MLflow's client would have made an empty store there


def test_an_mlruns_folder_is_only_read(tmp_path: Path) -> None:
    mlruns = tmp_path / "mlruns"
    run_python(GRID_SEARCH, f"file:{mlruns}", cwd=tmp_path)
    tree = sorted(mlruns.rglob("*"))

    def state() -> dict[Path, tuple[int, bytes | None]]:
        return {p: (p.stat().st_mtime_ns, None if p.is_dir() else p.read_bytes()) for p in sorted(mlruns.rglob("*"))}

    before = state()
    store = mltrail.Store(tmp_path / "store")
    with read_only(mlruns, *tree):
        summary = imported(store, mlruns)
    assert state() == before
    assert summary.runs_new == 6 and summary.artifacts == 6, summary.text()


def test_mlflow_s_progress_bars_and_log_lines_are_off_during_an_import_and_back_after(
        older_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    db = copied(older_store, tmp_path / "source")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    level = logging.getLogger("mlflow").level
    summary = imported(mltrail.Store(tmp_path / "store"), f"sqlite:///{db}")
    assert summary.runs_new == 6
    err = capfd.readouterr().err
    assert "Downloading artifacts" not in err and "mlflow" not in err, err[-2000:]
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"  # the user's setting, back
    assert logging.getLogger("mlflow").level == level


def test_the_import_command_prints_its_summary_and_nothing_of_mlflow_s(older_store: Path, tmp_path: Path) -> None:
    db = copied(older_store, tmp_path / "source")
    env = {**os.environ, "GIT_PYTHON_REFRESH": "quiet"}
    for name in ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "PYTHONWARNINGS"):  # as a user has them: bars on
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", "from mltrail.cli import main; main()", "--store",
                           str(tmp_path / "store"), "import", "mlflow", f"sqlite:///{db}"],
                          env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert output.startswith(f"Imported from sqlite:///{db}: 6 new runs"), output[-3000:]
    lines = output.splitlines()
    assert not [line for line in lines if "Downloading artifacts" in line or "INFO" in line
                or "%|" in line or "alembic" in line], output[-3000:]
    assert len(lines) <= 2, output  # the summary, and the note that experiment Default had no runs
