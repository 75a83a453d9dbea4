"""The server refuses bad input whole, naming what is wrong, and writes nothing."""

import pytest
from fastapi.testclient import TestClient

import mltrail
from mltrail.server.app import create_app
from tests.factories import quiet_run


@pytest.fixture
def sent(tmp_path):
    """The lines of one finished run logged locally, to send to a server."""
    local = mltrail.Store(tmp_path / "local")
    with quiet_run(local, "churn") as run:
        run.log_metrics({"loss": 0.5, "acc": 0.7}, step=0)
    return run.id, run.path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def server(tmp_path):
    store = mltrail.Store(tmp_path / "central")
    store.layout.ensure()
    return store, TestClient(create_app(store, token="s3cret", max_body=10_000))


AUTH = {"Authorization": "Bearer s3cret"}


def _post(client, run_id, body, experiment="churn", headers=AUTH):
    return client.post(f"/api/v1/runs/{run_id}/events", params={"experiment": experiment}, content=body,
                       headers=headers)


def test_lines_are_appended_once_and_a_resend_is_dropped(server, sent):
    store, client = server
    run_id, lines = sent
    first = _post(client, run_id, b"".join(lines[:3]))
    assert first.status_code == 200 and first.json()["written"] == 3
    again = _post(client, run_id, b"".join(lines))  # the first three again, then the rest
    assert again.json() == {"written": len(lines) - 3, "duplicates": 3, "last_seq": again.json()["last_seq"]}
    assert client.get(f"/api/v1/runs/{run_id}/last-seq", headers=AUTH).json()["last_seq"] == again.json()["last_seq"]
    (path,) = store.layout.experiments.glob(f"*/runs/{run_id}.jsonl")
    assert path.read_bytes().splitlines(keepends=True) == lines


@pytest.mark.slow
def test_a_torn_tail_left_by_a_killed_server_is_cut_and_resent(server, sent, tmp_path):
    store, _ = server
    run_id, lines = sent
    path = store.layout.run_file("churn", run_id)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(lines[:2]) + lines[2][:20])  # a write cut short, never acknowledged
    client = TestClient(create_app(store, token="s3cret"))  # a new server process
    assert _post(client, run_id, b"".join(lines)).json()["written"] == len(lines) - 2
    assert path.read_bytes().splitlines(keepends=True) == lines


@pytest.mark.slow
@pytest.mark.parametrize("case, status, message", [
    ("no token", 401, "a valid token is needed"),
    ("too big", 413, "at most 10,000 bytes"),
    ("other run's line", 422, "belongs to run"),
    ("not json", 422, "line 1: not valid JSON"),
    ("bad field", 422, "seq: Input should be greater than or equal to 0"),
    ("not the start", 422, "its first line must be its run_started"),
    ("escaping name", 422, "experiment"),
    ("bad run id", 422, "is not a run ID"),
    ("out of order", 422, "does not follow"),
    ("cut batch", 422, "does not end with a newline"),
])
def test_bad_batches_are_refused_whole(server, sent, case, status, message):
    store, client = server
    run_id, lines = sent
    body, experiment, target, headers = b"".join(lines), "churn", run_id, AUTH
    if case == "no token":
        headers = {"Authorization": "Bearer wrong"}
    elif case == "too big":
        body = body + body.splitlines(keepends=True)[-1] * 200
    elif case == "other run's line":
        target = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    elif case == "not json":
        body = b"{nope\n" + body
    elif case == "bad field":
        body = lines[0] + lines[1].replace(b'"seq":', b'"seq":-', 1)
    elif case == "not the start":
        body = b"".join(lines[1:])
    elif case == "escaping name":
        experiment = "../../etc"
    elif case == "bad run id":
        target = "not-a-ULID"
    elif case == "out of order":
        body = lines[1] + lines[0]
    elif case == "cut batch":
        body = body[:-1]
    answer = _post(client, target, body, experiment, headers)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]
    assert not list(store.layout.experiments.rglob("*.jsonl"))  # nothing written


def test_a_run_filed_under_another_experiment_is_a_conflict_and_blobs_are_checked(server, sent):
    store, client = server
    run_id, lines = sent
    assert _post(client, run_id, b"".join(lines)).status_code == 200
    moved = _post(client, run_id, b"".join(lines), experiment="other")
    assert moved.status_code == 409 and "another experiment" in moved.json()["error"]
    sha = "ab" * 32
    assert client.get(f"/api/v1/blobs/{sha}", headers=AUTH).status_code == 404
    wrong = client.put(f"/api/v1/blobs/{sha}", content=b"not it", headers=AUTH)
    assert wrong.status_code == 422 and "another sha256" in wrong.json()["error"]
    assert client.put("/api/v1/blobs/..%2F..%2Fx", content=b"x", headers=AUTH).status_code in (404, 422)


@pytest.mark.slow
def test_json_queries_name_what_is_wrong_and_a_reason_with_markup_is_kept_as_text(server, sent):
    store, client = server
    run_id, lines = sent
    _post(client, run_id, b"".join(lines[:-1]))  # running on the server: no run_finished yet
    for body, field in ((b"[1]", "the body"), (b'{"run_ids": "x"}', "run_ids"), (b'{"keys": [1]}', "keys.0"),
                        (b'{"nope": 1}', "nope"), (b"{not json", "the body")):
        answer = client.post("/api/v1/metric-history", content=body, headers=AUTH)
        assert answer.status_code == 422 and f"a metric-history query: {field}" in answer.json()["error"], body
    huge = client.post("/api/v1/metric-history", content=b'{"run_ids": ["' + b"x" * 20_000 + b'"]}', headers=AUTH)
    assert huge.status_code == 413 and huge.json()["type"] == "PayloadTooLargeError"
    bad = client.post(f"/api/v1/runs/{run_id}/stop", content=b'{"reason": 3}', headers=AUTH)
    assert bad.status_code == 422 and "a stop request: reason" in bad.json()["error"]
    reason = "<b>loss</b> 'diverged' \"again\""
    asked = client.post(f"/api/v1/runs/{run_id}/stop", json={"reason": reason, "by": "o'brien"}, headers=AUTH)
    assert asked.status_code == 200 and asked.json() == {"run_id": run_id}
    (request,) = client.get(f"/api/v1/runs/{run_id}/stop", headers=AUTH).json()
    assert (request["reason"], request["by"]) == (reason, "o'brien")
    unknown = client.post("/api/v1/runs/nosuchrun/stop", json={}, headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["type"] == "NotFoundError"
