"""The server's API fuzzed from its own OpenAPI schema (Schemathesis), as users who may
not see ana's private work: bob has no grant at all, carol may only read ana's
experiment. Whatever they send, and whichever object they name (random names, and ana's
own), the server answers no 500, changes none of ana's files, and no answer names an
object they may not read. Bounded: a few examples an operation (``FUZZ_EXAMPLES``)."""

import hashlib
import json
import os
import pickle
from pathlib import Path

import hypothesis.strategies as st
import orjson
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

import mltrail
from mltrail.server.app import create_app
from tests.factories import ab_spec, quiet_run

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
# ana's objects: the run's ID and her model's blob are added once the world is made
PRIVATE = {"ana-secret", "secret-model", "secret-ab", "secret_view", "ana-secret-run"}
READABLE_BY = {"bob": set(), "carol": {"ana-secret", "ana-secret-run"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """ana's private experiment (with a run, an artifact and an edit), model, A/B experiment
    and feature view on a store with users; the app and the users' tokens."""
    tmp = tmp_path_factory.mktemp("fuzz")
    store = mltrail.Store(tmp / "store")
    tokens = {name: store.access.add_user(name) for name in ("ana", "bob", "carol")}
    model = tmp / "model.pkl"
    model.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with quiet_run(store, "ana-secret", name="ana-secret-run") as run:
        run.log_metric("loss", 0.5)
        run.log_param("lr", 0.1)
        run.log_artifact(str(model))
    store.set_tag(run.id, "reviewed", "yes")
    store.registry.create("secret-model")
    store.registry.register("secret-model", run.id)
    store.ab.create(ab_spec(key="secret-ab")).start()
    source = tmp / "activity.parquet"
    pd.DataFrame({"customer_id": [1], "ts": pd.to_datetime(["2026-01-01"], utc=True), "visits": [3]}).to_parquet(source)
    store.features.apply_entity("customer", ["customer_id"])
    store.features.apply_view("secret_view", "customer", source, "ts", {"visits": "int"})
    for kind, name in (("experiment", "ana-secret"), ("model", "secret-model"), ("ab", "secret-ab"),
                       ("feature_view", "secret_view")):
        store.access.grant(kind, name, "ana", "manage")
    store.access.grant("experiment", "ana-secret", "carol", "read")
    PRIVATE.add(run.id)
    READABLE_BY["carol"].add(run.id)  # she may read ana's experiment, and so its run
    app = create_app(store)
    return {"store": store, "app": app, "tokens": tokens, "run": run.id,
            "files": _files(store.root), "client": TestClient(app)}


# The operations, from the schema alone (no store is opened to make it): one test each.
# (Schemathesis' own pytest integration reaches into pytest internals that pytest 9 removed.)
_SCHEMA = create_app(mltrail.Store(Path("/nonexistent-store"))).openapi()
OPERATIONS = [(path, method.upper()) for path, methods in sorted(_SCHEMA["paths"].items()) for method in sorted(methods)]


@pytest.fixture(scope="module")
def api(world):
    schema = schemathesis.openapi.from_dict(world["app"].openapi())
    schema.app = world["app"]
    return schema


def _files(root: Path) -> dict[str, str]:
    """The store's files as their sha256: runs, edits, stop requests, registry, A/B, features, blobs."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("experiments", "registry", "ab", "features", "blobs", "blobs-large")
            for p in sorted((root / folder).rglob("*")) if p.is_file() and not p.name.startswith(".")}


def _grants_on_private(store):
    """Who may do what to ana's objects (creating an object of one's own adds a grant: fine)."""
    return {key: dict(levels) for key, levels in store.access.state().grants.items() if key[1] in PRIVATE}


@pytest.mark.slow
@pytest.mark.parametrize("path, method", OPERATIONS)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data(), user=st.sampled_from(sorted(READABLE_BY)),
       target=st.sampled_from([None, *sorted(PRIVATE - {"ana-secret-run"}), "RUN"]))
def test_a_user_without_grants_breaks_changes_and_learns_nothing(api, world, path, method, data, user, target):
    case = data.draw(api[path][method].as_strategy())
    if target is not None and case.path_parameters:  # aim at ana's objects, not only random names
        name = world["run"] if target == "RUN" else target
        case.path_parameters = {key: name for key in case.path_parameters}
    if case.query and "wait" in case.query:  # a long poll holds the call by design (up to 30 s)
        case.query = {**case.query, "wait": 0}  # (its bounds: tests/server/test_remote_job.py)
    store = world["store"]
    before, grants = _files(store.root), _grants_on_private(store)
    response = case.call(headers={"Authorization": f"Bearer {world['tokens'][user]}"})
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:500])
    changed = {path for path, digest in _files(store.root).items() if before.get(path) != digest}
    # (bytes a user sends wait out of git until a line of theirs names them: blobs/ never changes here)
    assert not {p for p in changed if "secret" in p or p.startswith("blobs")}, \
        (case.method, case.formatted_path, sorted(changed))
    assert _grants_on_private(store) == grants, (case.method, case.formatted_path)
    text = response.content.decode("utf-8", "replace")
    leaked = {name for name in PRIVATE - READABLE_BY[user] if name in text}
    asked = {str(v) for v in (case.path_parameters or {}).values()} | {str(v) for v in (case.query or {}).values()}
    assert not leaked - asked, (user, case.method, case.formatted_path, response.status_code, text[:500])


# -- any line the server accepts, every reader reads -------------------------------------------

HOSTILE = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([2**63 - 1, -(2**63), 2**63, 2**64, -1, 0]),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e300, -1e300, 1.7e15, 32_503_680_001.0]),
    st.text(max_size=30), st.sampled_from(["", "\n", "churn\n", "a\rb", "../../etc/passwd", "x" * 300]),
    st.none(), st.booleans(), st.lists(st.integers(min_value=-(2**65), max_value=2**65), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2))


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    """A server's store with one user, and a client of it."""
    tmp = tmp_path_factory.mktemp("uploads")
    store = mltrail.Store(tmp / "store")
    store.layout.ensure()
    token = store.access.add_user("bob")
    return store, TestClient(create_app(store)), {"Authorization": f"Bearer {token}"}, tmp


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "12")) * 5, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_line_the_server_accepts_every_reader_reads(uploads, data):
    store, client, auth, tmp = uploads
    local = mltrail.Store(tmp / "local")
    with quiet_run(local, "bob-exp") as run:
        run.log_params({"lr": 0.1})
        run.log_metrics({"loss": 0.5, "acc": 0.9}, step=1)
        run.set_tag("stage", "fuzz")
    lines = [orjson.loads(line) for line in run.path.read_bytes().splitlines()]
    at = data.draw(st.integers(0, len(lines) - 1), label="line")
    field = data.draw(st.sampled_from(sorted(lines[at])), label="field")
    value = data.draw(HOSTILE, label="value")
    if field in ("steps", "values", "dts", "k", "keys") and not isinstance(value, list):
        value = [value] * len(lines[at][field])
    lines[at][field] = value
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()  # (json: integers past 64 bits too)
    answer = client.post(f"/api/v1/runs/{run.id}/events", params={"experiment": "bob-exp"}, content=body,
                         headers=auth)
    assert answer.status_code in (200, 404, 409, 413, 422), answer.text
    result = store.compact()  # what was accepted is read whole, and nothing else broke
    assert not result.bad_lines, (field, value, result.bad_lines)
    runs = store.search_runs()
    store.metric_history(list(runs["run_id"]))
    store.experiments()
    for run_id in runs["run_id"]:
        store.get_run(run_id)
