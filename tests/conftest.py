"""Shared fixtures: every test runs in its own folder with a clean MLTRAIL_* environment
(and no MLflow experiment or run taken from it) and its own home, so nothing a test does
(a remote store's default spool under ``~/.cache/mltrail``, a child process it starts)
writes outside ``tmp_path``.

The session checks that promise at its end: a file the suite created or changed in the
repository's working tree, or a name it created in the real home or its ``.cache`` and
``.config``, fails the run and is named (``pytest_sessionfinish`` below). Hypothesis keeps
its example database and constants under the session's temporary folder, not in the
working tree's ``.hypothesis/``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import configuration as hypothesis_configuration

import mltrail
from mltrail import fluent
from mltrail import mlflow as mlflow_api


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("MLTRAIL_"):
            monkeypatch.delenv(name)
    # the experiment and run MLflow's calls (and the shim's) take from the environment: real
    # MLflow's set_experiment leaves MLFLOW_EXPERIMENT_ID set for the rest of the process
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))  # Path.home(), expanduser(), and every child process
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.chdir(tmp_path)
    fluent._stack.clear()  # the active runs (state a user's process has, not a cache): one a failed test left
    monkeypatch.setattr(mlflow_api, "_state", mlflow_api._State())  # set_tracking_uri, set_experiment
    return tmp_path


@pytest.fixture
def store(tmp_path: Path) -> mltrail.Store:
    return mltrail.Store(tmp_path / "store")


# -- nothing written outside tmp_path ------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
# what Python and pytest themselves write in the tree (bytecode, the installed package's
# metadata, pytest's cache when the cacheprovider is on): not the suite's doing
_TOOLING = ("__pycache__/", ".egg-info/", ".pytest_cache/", ".venv")


def _tree_state() -> dict[str, tuple[int, int] | None]:
    """The working tree's files that differ from HEAD or are untracked, ignored ones too,
    with their (size, mtime): git's view, so a test that wrote into ``sample_runs/`` or
    compacted it in place (its ignored ``.cache/``) shows up."""
    out = subprocess.run(["git", "status", "--porcelain", "-z", "--ignored", "--untracked-files=all"],
                         cwd=REPO, capture_output=True, text=True, check=False).stdout
    state: dict[str, tuple[int, int] | None] = {}
    for entry in filter(None, out.split("\0")):
        rel = entry[3:]
        if any(part in f"/{rel}" for part in (f"/{t}" for t in _TOOLING)):
            continue
        try:
            info = os.stat(REPO / rel)
            state[rel] = (info.st_size, info.st_mtime_ns)
        except OSError:
            state[rel] = None
    return state


def _home_names(home: Path) -> set[str]:
    """Names in the real home and two levels of its ``.cache`` and ``.config``: where a
    library writes when it reads the home before a test's HOME is set. New names only
    (other processes on the machine change files there; they rarely make a new one)."""
    names: set[str] = set()
    for folder, depth in ((home, 1), (home / ".cache", 2), (home / ".config", 2)):
        if not folder.is_dir():
            continue
        for path in folder.glob("/".join(["*"] * depth)) if depth > 1 else folder.iterdir():
            names.add(str(path))
        if depth > 1:
            names.update(str(path) for path in folder.iterdir())
    return names


def pytest_sessionstart(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):  # xdist: the controller checks, once
        return
    home = Path(os.path.expanduser("~"))
    session.config.stash[_BEFORE] = (home, _home_names(home), _tree_state())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    home, names, tree = before
    now = _tree_state()
    written = sorted(str(REPO / rel) for rel in now.keys() | tree.keys() if now.get(rel) != tree.get(rel))
    written += sorted(_home_names(home) - names)
    if written:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "the suite wrote outside tmp_path: a test must write only under its tmp_path",
                               red=True, bold=True)
            for path in written[:50]:
                reporter.write_line(path)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[tuple[Path, set[str], dict[str, tuple[int, int] | None]]]()


@pytest.hookimpl(trylast=True)  # after pytest's tmpdir plugin made the session's factory
def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis' example database and constants cache in the session's temporary folder:
    by default it writes ``.hypothesis/`` into the working directory, at collection already
    (so a fixture is too late)."""
    factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
    hypothesis_configuration.set_hypothesis_home_dir(factory.mktemp("hypothesis", numbered=False))
