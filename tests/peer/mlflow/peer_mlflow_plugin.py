"""The pytest plugin that runs MLflow's own tracking tests against a chosen backend.

``scripts/peer_mlflow.py`` loads it (``-p peer_mlflow_plugin --peer-mode NAME``) on MLflow's
test files, which it keeps out of git under ``upstream/`` (see README.md). It promises:

- every test gets its own folder (the working directory, ``tmp_path``) and an MLflow
  environment with no ``MLFLOW_*`` variable left over from the caller or an earlier test;
- one backend a test, chosen by ``--peer-mode``: a mode is one function in ``MODES`` that
  points the test at a fresh store (``mlflow``: MLflow's own sqlite store; ``shim``:
  ``mltrail.mlflow`` on a fresh mltrail folder; ``plugin``: real MLflow with the tracking URI
  ``mltrail:<a fresh folder>``; ``server``: real MLflow on a live ``mltrail server``;
  ``mlflow-server``: real MLflow on MLflow's own server, the server mode's baseline);
- the same exclusions for every mode (``EXCLUDED``: test id -> why), deselected before the
  run and listed by the runner, so a pass rate never hides what it left out;
- MLflow's files are run as MLflow wrote them. The shim mode adapts them mechanically, in
  ``_shim_rebind`` (below), never by editing a file.

The fixtures MLflow's tests take from MLflow's own conftests (``reset_active_experiment``,
``monkeypatch.setenvs``, a fresh tracking URI a test) are written again here, after what
they do in MLflow's repository, so that MLflow's conftest (which imports most of MLflow's
test tree and its optional dependencies) is not needed.
"""

from __future__ import annotations

import ast
import importlib
import os
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# A test that needs what this machine cannot have (Databricks, a network service, Spark, a
# cloud account) is excluded for every mode, with the reason. Ids are relative to the
# upstream checkout's root, as pytest prints them there.
EXCLUDED: dict[str, str] = {
    "tests/tracking/test_tracking.py::test_get_artifact_uri_appends_to_local_path_component_correctly_on_windows":
        "Windows only (MLflow skips it elsewhere)",
    "tests/tracking/fluent/test_fluent.py::test_registry_uri_from_spark_conf":
        "imports pyspark (mltrail's `spark` extra, not the `test` extra the peer suite runs with)",
}

# Tests a mode cannot pass by design, found by what their code does, with the reason. On
# `mltrail:` runs' artifacts are content-addressed in the store (its blobs, deduplicated and
# committed to git), not a folder MLflow writes into; MLflow's client reads and writes them
# through the artifact repository, as it does with an MLflow server whose artifacts are in
# an object store, on which these tests fail the same way.
EXCLUDED_BY_CODE: dict[str, dict[str, str]] = {
    "plugin": {"local_file_uri_to_path(": "reads the run's artifact URI as a local folder (mltrail keeps "
                                          "artifacts content-addressed; MLflow's client reaches them through "
                                          "its artifact repository)"},
    "server": {"local_file_uri_to_path(": "reads the run's artifact URI as a local folder (a server's "
                                          "artifacts go through its artifact proxy, as with `mlflow server "
                                          "--serve-artifacts`)",
               "_assert_get_artifact_uri_appends_to_uri_path_component_correctly(":
                   "creates experiments whose artifacts live outside the server (artifact_location s3://..., "
                   "mysql://..., a local folder): mltrail's server keeps every run's artifacts itself, behind its "
                   "grants, and refuses such a location"},
    # The shim mode binds the names a test module took from MLflow to the shim's, but a mock
    # put in MLflow's module by its dotted name (mock.patch("mlflow.tracking.fluent.X")) is
    # in the real MLflow whatever the test's names are: a test asserting that MLflow's search
    # called it can pass on MLflow alone.
    "shim": {"local_file_uri_to_path(": "reads the run's artifact URI as a local folder (mltrail keeps "
                                        "artifacts content-addressed; the shim's artifact URI is runs:/<run id>)",
             "_assert_get_artifact_uri_appends_to_uri_path_component_correctly(":
                 "expects artifact URIs under the experiment's artifact_location (s3://..., a folder), built by "
                 "MLflow's private artifact_utils; the shim's are runs:/<run id>/<path> (artifacts content-addressed)",
             **{needle: f"reaches MLflow's private internals ({needle.strip('.(')}), which the shim, another "
                        "implementation of MLflow's public calls, does not have"
                for needle in ("artifact_utils.", "tracking._get_store(", "TrackingServiceClient")},
             "mlflow.tracking.fluent._get_experiment_id.assert_": "asserts that MLflow's own search_runs called "
                                                                   "mocks it put in MLflow's module by their dotted "
                                                                   "names (mock.patch(\"mlflow.tracking.fluent."
                                                                   "_get_experiment_id\")), which no other "
                                                                   "implementation calls",
             **dict.fromkeys(("_get_experiment_id() == notebook_id", "_get_experiment_id() == job_exp_id"),
                             "expects the experiment of a Databricks notebook or job, which MLflow's "
                             "default-experiment registry answers (here a mock put in MLflow's module: "
                             "mlflow.tracking.fluent.default_experiment_registry); the shim has no "
                             "Databricks context")},
}

Backend = Callable[[Path, pytest.MonkeyPatch], None]


def _mlflow_backend(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own default for its tests: a fresh sqlite store in the test's folder."""
    import mlflow

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)


def _shim_backend(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``mltrail.mlflow`` on a fresh folder store. What the tests still reach of real MLflow
    (its private helpers, its entities) gets a sqlite store of its own, so nothing leaks into
    the working directory."""
    from mltrail import fluent
    from mltrail import mlflow as shim

    _mlflow_backend(folder, monkeypatch)
    monkeypatch.setenv("MLTRAIL_DIR", str(folder / "mltrail_runs"))
    # the shim's state is module-level; a test starts with none of it (as tests/conftest.py does)
    fluent._stack.clear()
    fluent._stores.clear()
    monkeypatch.setattr(shim, "_state", shim._State())


def _plugin_backend(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real MLflow on mltrail's tracking-store plugin: ``MLFLOW_TRACKING_URI=mltrail:<folder>``,
    a fresh mltrail folder store in the test's folder, set where the ``mlflow`` mode sets its
    sqlite URI."""
    import mlflow

    uri = f"mltrail:{folder / 'mltrail_runs'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)


_servers: list[Callable[[], None]] = []  # how to stop the server a test's backend started


def _server_backend(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real MLflow on a live ``mltrail server`` (a real uvicorn on loopback, its own folder
    store, started for the test and stopped after it): ``MLFLOW_TRACKING_URI=http://...``,
    MLflow's RestStore speaking MLflow's REST API."""
    import socket
    import threading
    import time

    import mlflow
    import uvicorn

    import mltrail
    from mltrail.server.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(mltrail.Store(folder / "mltrail_runs"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)

    def stop() -> None:
        app.state.stopping.set()
        server.should_exit = True
        thread.join(timeout=30)

    _servers.append(stop)
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)


MLFLOW_SERVER_PYTHON = Path(__file__).resolve().parents[3] / "benchmarks" / ".cache" / "mlflow-server" / "bin" / "python"


def _mlflow_server_backend(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real MLflow on MLflow's own server (``mlflow server``, a sqlite store in the test's
    folder, artifacts proxied), started for the test and stopped after it: the server mode's
    baseline, since a test MLflow's REST client fails before it sends a request fails on any
    server. The server runs from a full MLflow installation (the test extra has only
    mlflow-skinny, without the server): ``$PEER_MLFLOW_SERVER_PYTHON``, else the one
    ``benchmarks/bench_mlflow_bridge.py`` makes in ``benchmarks/.cache/mlflow-server``."""
    import shutil
    import socket
    import subprocess
    import time
    import urllib.request

    import mlflow

    python = Path(os.environ.get("PEER_MLFLOW_SERVER_PYTHON", MLFLOW_SERVER_PYTHON))
    if not python.is_file():
        pytest.exit(f"no MLflow server installation at {python}: run benchmarks/bench_mlflow_bridge.py once "
                    "(it makes one) or set PEER_MLFLOW_SERVER_PYTHON", returncode=2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shm = Path("/dev/shm")
    before = set(shm.iterdir()) if shm.is_dir() else set()
    log = open(folder / "mlflow-server.log", "w")  # noqa: SIM115 (closed with the server, below)
    server = subprocess.Popen(
        [str(python), "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
         "--artifacts-destination", str(folder / "server-artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, cwd=folder,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")})
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                log.close()
                raise RuntimeError(f"mlflow server did not start: {(folder / 'mlflow-server.log').read_text()[-2000:]}")
            time.sleep(0.1)

    def stop() -> None:
        server.terminate()
        server.wait(60)
        log.close()
        # mlflow server keeps its job queue (huey) in a tmp folder of /dev/shm it leaves behind
        for left in (set(shm.iterdir()) - before) if shm.is_dir() else ():
            if left.name.startswith("tmp") and left.is_dir() and all(
                    p.name.endswith(".mlflow-huey-store") for p in left.iterdir()):
                shutil.rmtree(left, ignore_errors=True)

    _servers.append(stop)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)


MODES: dict[str, Backend] = {
    "mlflow": _mlflow_backend,
    "mlflow-server": _mlflow_server_backend,
    "plugin": _plugin_backend,
    "server": _server_backend,
    "shim": _shim_backend,
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--peer-mode", choices=sorted(MODES), default="mlflow",
                     help="which backend MLflow's tests run against (tests/peer/mlflow/README.md)")


def excluded_by_code(root: Path, mode: str) -> dict[str, str]:
    """The tests under ``root`` (an upstream checkout) that ``EXCLUDED_BY_CODE`` excludes in
    ``mode``: ``<file>::<test function>`` -> why."""
    rules = EXCLUDED_BY_CODE.get(mode, {})
    found: dict[str, str] = {}
    for path in sorted(root.rglob("test_*.py")) if rules else []:
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                code = ast.get_source_segment(source, node) or ""
                why = next((why for needle, why in rules.items() if needle in code), None)
                if why is not None:
                    found[f"{path.relative_to(root).as_posix()}::{node.name}"] = why
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    by_code = excluded_by_code(Path(str(config.rootpath)), config.getoption("--peer-mode"))
    for item in items:
        why = by_code.get(item.nodeid.split("[")[0])
        if why is not None:
            EXCLUDED[item.nodeid] = why
    excluded = [item for item in items if item.nodeid in EXCLUDED]
    if excluded:
        config.hook.pytest_deselected(items=excluded)
        items[:] = [item for item in items if item.nodeid not in EXCLUDED]
    if config.getoption("--peer-mode") == "shim":
        _shim_rebind(items)


def _shim_rebind(items: list[pytest.Item]) -> None:
    """The shim mode's whole adaptation: ``import mlflow`` read as ``import mltrail.mlflow as
    mlflow``. In each test module, the name ``mlflow`` and every name the module took from an
    MLflow module are bound to the shim's: the attribute of that name in the shim's module of
    the same path (``mlflow.tracking.fluent._get_experiment_id`` ->
    ``mltrail.mlflow.tracking.fluent._get_experiment_id``), else, for a public name
    (``start_run``, ``MlflowClient``, ``MlflowException``, ...), ``mltrail.mlflow``'s; names the
    shim lacks stay MLflow's. The binding holds for
    the test functions and the module's helper functions; the module's fixtures keep the real
    names, since they reset MLflow's own internals, not the API under test."""
    from mltrail import mlflow as shim

    rebound: dict[types.ModuleType, dict[str, object]] = {}
    for item in items:
        if not isinstance(item, pytest.Function) or item.module is None:
            continue
        module = item.module
        if module not in rebound:
            rebound[module] = _shim_globals(module, shim)
        original = item.obj
        if getattr(original, "__globals__", None) is module.__dict__:
            item.obj = rebound[module].get(original.__name__, original)


def _shim_globals(module: types.ModuleType, shim: types.ModuleType) -> dict[str, object]:
    import mlflow

    names = dict(module.__dict__)
    for name, value in module.__dict__.items():
        if value is mlflow:
            names[name] = shim
        elif isinstance(value, types.ModuleType) and value.__name__.startswith("mlflow."):
            counterpart = _counterpart_module(value.__name__, shim)  # from mlflow import tracking
            if counterpart is not None:
                names[name] = counterpart
        elif not _from_mlflow(value):
            continue
        elif hasattr(_counterpart(value, shim), name):  # mlflow.tracking.fluent._get_experiment_id
            names[name] = getattr(_counterpart(value, shim), name)
        elif not name.startswith("_") and hasattr(shim, name):
            names[name] = getattr(shim, name)
    for name, value in module.__dict__.items():
        if isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            copy = types.FunctionType(value.__code__, names, value.__name__, value.__defaults__,
                                      value.__closure__)
            copy.__kwdefaults__ = value.__kwdefaults__
            copy.__dict__.update(value.__dict__)  # pytest's marks (parametrize, skipif)
            names[name] = copy
    return names


def _counterpart(value: object, shim: types.ModuleType) -> types.ModuleType | None:
    """The shim's module standing for the MLflow module ``value`` was defined in
    (``mlflow.tracking.fluent`` -> ``mltrail.mlflow.tracking.fluent``), or None."""
    return _counterpart_module(str(getattr(value, "__module__", "")), shim)


def _counterpart_module(name: str, shim: types.ModuleType) -> types.ModuleType | None:
    try:
        return importlib.import_module(shim.__name__ + name.removeprefix("mlflow"))
    except ImportError:
        return None


def _from_mlflow(value: object) -> bool:
    module = getattr(value, "__module__", None)
    return isinstance(module, str) and (module == "mlflow" or module.startswith("mlflow."))


class _MonkeyPatch(pytest.MonkeyPatch):
    """MLflow's tests call ``monkeypatch.setenvs({...})``, which MLflow's conftest adds."""

    def setenvs(self, envs: dict[str, object], prepend: str | None = None) -> None:
        for name, value in envs.items():
            self.setenv(name, str(value), prepend)


@pytest.fixture
def monkeypatch() -> Iterator[_MonkeyPatch]:
    patch = _MonkeyPatch()
    yield patch
    patch.undo()


@pytest.fixture
def reset_active_experiment() -> Iterator[None]:
    """MLflow's tests/tracking/conftest.py: forget the active experiment after the test."""
    yield
    import mlflow

    mlflow.tracking.fluent._active_experiment_id = None


@pytest.fixture(autouse=True)
def peer_backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: _MonkeyPatch) -> Iterator[Path]:
    """A folder and a fresh store for each test, in the mode asked for; afterwards no run is
    left active and no tracking URI is left set (what MLflow's tests/conftest.py does)."""
    import mlflow

    for name in list(os.environ):
        if name.startswith("MLFLOW_") or name.startswith("MLTRAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    MODES[request.config.getoption("--peer-mode")](tmp_path, monkeypatch)
    yield tmp_path
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.tracking.fluent._active_experiment_id = None
    mlflow.set_tracking_uri(None)
    while _servers:
        _servers.pop()()
    if request.config.getoption("--peer-mode") == "shim":
        from mltrail import mlflow as shim

        while shim.active_run() is not None:
            shim.end_run()
