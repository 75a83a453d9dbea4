"""What tests build: stores (the full sample and the sparse ones users really have), A/B
specs and simulated traffic, child processes and ports. One place, imported by tests;
fixtures that use these live in conftest.py files."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import mltrail

REPO = Path(__file__).resolve().parents[1]

# -- tracking ----------------------------------------------------------------------------


def quiet_run(store: mltrail.Store, experiment: str = "exp", **kwargs: Any) -> mltrail.Run:
    """A run without capture: fast, and independent of the machine's git state."""
    return store.start_run(experiment, log_git=False, log_packages=False, **kwargs)


def sparse_store(root: Path) -> mltrail.Store:
    """A store with every optional field missing somewhere, as users' stores are: an
    experiment without a description; runs without names, groups, metrics, tags,
    artifacts or datasets; a run still RUNNING (no end time); a model without a
    description whose alias moved without a reason; an A/B experiment never started."""
    store = mltrail.Store(root)
    with quiet_run(store, "bare", log_system=False, log_command=False) as run:
        run.log_param("seed", 1)  # no group
        run.log_metric("loss", float("nan"))  # a NaN metric is a value
    with quiet_run(store, "bare", name="nothing", log_system=False, log_command=False):
        pass  # no params, metrics, tags, artifacts, datasets
    with quiet_run(store, "described", experiment_description="has one", name="full") as run:
        run.log_params({"C": 1.0}, group="model")
        run.log_metric("f1", 0.8)
        run.set_tag("team", "growth")
        model = root.parent / "model.pkl"
        model.write_bytes(pickle.dumps({"a": "model"}))
        run.log_artifact(str(model))
    live = quiet_run(store, "bare", name="live")  # still RUNNING: no end time
    live.flush()
    store.registry.create("plain")  # no description, no tags
    store.registry.register("plain", "full")
    store.registry.set_alias("plain", "production", 1)  # no reason
    store.ab.create(ab_spec(key="idle"))  # a draft: no phase started, no exposure
    live.end()
    return store


# -- A/B -----------------------------------------------------------------------------------

AB_SPEC: dict[str, Any] = {
    "key": "ranker-v2",
    "hypothesis": {"null": "the new ranker converts like the old", "alternative": "it converts better"},
    "primary": {"name": "conversion", "kind": "binary", "direction": "increase"},
    "guardrails": [{"name": "latency_ms", "kind": "continuous", "direction": "decrease"}],
    "variants": [{"name": "control", "weight": 0.5, "control": True, "model": "models:/ranker@champion"},
                 {"name": "treatment", "weight": 0.5, "url": "http://127.0.0.1:9001"}],
    "mde": 0.01, "baseline": 0.10, "owner": "ana",
}


def ab_spec(**changes: Any) -> dict[str, Any]:
    """The test experiment's spec with some fields changed."""
    result = copy.deepcopy(AB_SPEC)
    result.update(changes)
    return result


def simulate(exp: mltrail.Experiment, rates: dict[str, float], users: int, seed: int = 1,
             feedback: bool = True) -> dict[str, int]:
    """Users arrive, get assigned, are exposed; each converts with its variant's true rate
    (one RNG, seeded: the same users convert every time)."""
    rng = np.random.default_rng(seed)
    ids = [f"user-{i}" for i in range(users)]
    converted: dict[str, int] = {}
    for unit, variant in zip(ids, exp.assign_batch(ids)):
        if variant is None:
            continue
        exp.log_exposure(unit, variant)
        if feedback and rng.random() < rates[variant]:
            exp.log_feedback(unit, "conversion", 1.0)
            converted[variant] = converted.get(variant, 0) + 1
    return converted


def ab_log_line(kind: str = "exposure", key: str = AB_SPEC["key"], **raw: str) -> bytes:
    """One line of an A/B log segment as a client could send or a hand could write it:
    ``raw`` replaces a field's JSON text as it is (``ts="1e400"``, ``seq=str(2**64)``),
    which no JSON library would write."""
    fields = {"v": "1", "type": json.dumps(kind), "ts": "1700000000.0", "experiment": json.dumps(key),
              "seq": "1", "unit": '"u1"'}
    fields.update({"variant": '"control"', "phase": "1"} if kind == "exposure" else
                  {"metric": '"latency_ms"', "value": "12.5"})
    fields.update(raw)
    return ("{" + ",".join(f'"{name}":{text}' for name, text in fields.items()) + "}\n").encode()


# Log lines outside the bounds the writer keeps (storage/fields.py): each one alone once
# broke every reader or every statistic of its experiment, or would have
AB_LINES_OUT_OF_BOUNDS = {
    "ts in microseconds": ab_log_line(ts="1.7e15"),
    "ts in milliseconds": ab_log_line("feedback", ts="1.7e12"),
    "ts before 1970": ab_log_line(ts="-1.0"),
    "ts past a float": ab_log_line(ts="1e400"),
    "ts NaN": ab_log_line(ts="NaN"),
    "seq negative": ab_log_line(seq="-1"),
    "seq past int64": ab_log_line(seq=str(2**64)),
    "phase past int64": ab_log_line(phase=str(2**63)),
    "phase 0": ab_log_line(phase="0"),
    "value 1e300": ab_log_line("feedback", value="1e300"),
    "value past a float": ab_log_line("feedback", value="-1e400"),
    "value Infinity": ab_log_line("feedback", value="Infinity"),
}


# -- processes, ports, git ------------------------------------------------------------


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a real child process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def spawn_python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def free_port() -> int:
    """A loopback port nothing listens on now (for a service a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git(repo: Path, *args: str) -> str:
    """Run real git in ``repo``; fail the test with git's output if it fails."""
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def wait_for(condition: Any, timeout: float = 30.0, what: str = "the condition") -> Any:
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def wait_for_http(url: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> bytes:
    """Poll ``url`` until it answers 200 and return the body; fail at once, with the
    process's stderr, if the process that should serve it exits first."""
    def answer() -> bytes | None:
        if proc.poll() is not None:
            out, err = proc.communicate()
            output = err or out or ""
            raise AssertionError(f"the process serving {url} exited ({proc.returncode}): {output[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return reply.read() if reply.status == 200 else None
        except OSError:
            return None

    return wait_for(answer, timeout=timeout, what=f"{url} to answer")


@contextlib.contextmanager
def serving_store(folder: Path, token: str | None = None, port: int | None = None, **options: Any) -> Iterator[str]:
    """``mltrail server`` on ``folder`` (a real uvicorn on ``port``, else a free one, in
    this process's thread); yields its URL and stops it after."""
    import uvicorn

    from mltrail.server.app import create_app

    port = port or free_port()
    app = create_app(mltrail.Store(folder), token, **options)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30, what="the server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.state.stopping.set()  # as `mltrail server` on SIGTERM: calls held open answer now
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def served_with_users(tmp_path: Path, names: tuple[str, ...] = ("ana", "bo", "root")
                      ) -> Iterator[tuple[mltrail.Store, dict[str, Any]]]:
    """A store folder behind a real server with users (``root`` an admin): the folder's own
    store, and a client store signed in as each user (closed after)."""
    folder = tmp_path / "store"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name, admin=name == "root") for name in names}
    with serving_store(folder) as url:
        clients = {name: mltrail.Store(url, token=tokens[name], spool=tmp_path / f"spool-{name}") for name in names}
        try:
            yield local, clients
        finally:
            for client in clients.values():
                client.close(wait=5)


# the sample churn model's features (sample_runs/make_samples.py), for the model services
CHURN_FEATURES = {"tenure_months": 0.3, "monthly_charges": 1.2, "total_charges": -0.4, "support_calls": 2.1,
                  "contract_months": -1.0, "late_payments": 0.8, "data_usage_gb": 0.1, "num_products": -0.2}


# -- the dashboard -----------------------------------------------------------------------

APP = str(REPO / "app" / "main.py")


def rendered_page(page: str, selected_runs: list[str] | None = None, run: str | None = None) -> Any:
    """A dashboard page after it ran (Streamlit's AppTest), with runs chosen for Compare
    or a run in the address; the caller checks ``.exception`` and what it shows."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    if selected_runs is not None:
        at.session_state["selected_runs"] = selected_runs
    if run is not None:
        at.query_params["run"] = run
    at.run()
    at.switch_page(page).run()
    return at


def chart_series(chart) -> set[str]:
    """The distinct runs (series) in an Altair chart as AppTest sees it."""
    proto = chart.proto
    runs: set[str] = set()
    for dataset in proto.datasets:
        table = pa.ipc.open_stream(dataset.data.data).read_all()
        if "run" in table.column_names:
            runs |= set(table["run"].to_pylist())
    return runs


def chart_title(chart) -> str:
    return json.loads(chart.proto.spec).get("title")


def raced(save: Callable[[str], object], users: Sequence[str] = ("ana", "eve")) -> dict[str, str]:
    """Each user's ``save(user)`` started at once, one thread each: what each got, "saved"
    or "refused" (PermissionDeniedError). Two users saving one new name: one must win."""
    outcomes: dict[str, str] = {}

    def attempt(user: str) -> None:
        try:
            save(user)
            outcomes[user] = "saved"
        except mltrail.PermissionDeniedError:
            outcomes[user] = "refused"
    threads = [threading.Thread(target=attempt, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
