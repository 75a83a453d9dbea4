"""What a member of a team server cannot do to another's work (issue 26): move a run into
an experiment they may not write, break every query with one line, date an edit past all
others, learn private names from errors, read a training set no grant covers, inherit a
removed user's grants, open the store by removing its users, become a second manager of
an experiment someone else made, or plant a line the readers cannot read.

Each test here failed before its fix. Users are ana (who owns private work), bob (a
member with no grant on it) and root (an admin); calls are raw HTTP, as an attacker's."""

import threading
import time
import urllib.error
import urllib.request

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

import mltrail
from mltrail.errors import InvalidInputError
from mltrail.server.app import create_app
from mltrail.storage.ids import new_id
from tests.factories import ab_spec, quiet_run, serving_store


@pytest.fixture
def central(tmp_path):
    """A server's store with users ana, bob and root (an admin), and a client of it."""
    store = mltrail.Store(tmp_path / "central")
    tokens = {name: store.access.add_user(name, admin=(name == "root")) for name in ("ana", "bob", "root")}
    return store, TestClient(create_app(store)), tokens


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def run_lines(tmp_path, experiment, name="model", points=2):
    """The lines of one finished run logged in a folder of its own, to send to a server."""
    local = mltrail.Store(tmp_path / f"local-{new_id()}")
    with quiet_run(local, experiment, name=name) as run:
        for step in range(points):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    return run.id, run.path.read_bytes().splitlines(keepends=True)


def last_seq(lines):
    event = orjson.loads(lines[-1])
    return event["seq"] + (len(event["steps"]) - 1 if event["type"] == "metrics" else 0)


def post_run(client, token, run_id, experiment, body):
    return client.post(f"/api/v1/runs/{run_id}/events", params={"experiment": experiment}, content=body,
                       headers=auth(token))


def ana_has_a_private_run(tmp_path, client, tokens, experiment="ana-secret"):
    run_id, lines = run_lines(tmp_path, experiment, name="churn-model")
    assert post_run(client, tokens["ana"], run_id, experiment, b"".join(lines)).status_code == 200
    return run_id


# -- 1. a run's experiment is its first line's -------------------------------------------------

def test_a_later_run_started_cannot_move_a_run_into_another_experiment(central, tmp_path):
    store, client, tokens = central
    ana_has_a_private_run(tmp_path, client, tokens)
    run_id, lines = run_lines(tmp_path, "bob-exp", name="churn-model")
    moved = orjson.loads(lines[0]) | {"seq": last_seq(lines) + 1, "experiment": "ana-secret", "ts": 1.0}
    answer = post_run(client, tokens["bob"], run_id, "bob-exp", b"".join(lines) + orjson.dumps(moved) + b"\n")
    assert answer.status_code == 422 and "run_started is its run's first line" in answer.json()["error"]
    assert not list(store.layout.experiments.glob(f"*/runs/{run_id}.jsonl"))  # nothing of the batch written
    runs = store.search_runs(experiment="ana-secret")
    assert list(runs["run_name"]) == ["churn-model"]


@pytest.mark.slow
def test_compaction_keeps_a_run_where_its_first_line_put_it(store):
    with quiet_run(store, "bob-exp", name="churn-model") as run:
        run.log_metric("loss", 0.5)
    with quiet_run(store, "ana-secret", name="churn-model") as hers:
        hers.log_metric("loss", 0.1)
    lines = run.path.read_bytes().splitlines(keepends=True)
    moved = orjson.loads(lines[0]) | {"seq": last_seq(lines) + 1, "experiment": "ana-secret", "ts": 1.0}
    with open(run.path, "ab") as handle:  # written by hand, past every writer's checks
        handle.write(orjson.dumps(moved) + b"\n")
    with pytest.warns(mltrail.SkippedLinesWarning):
        runs = store.search_runs()
    assert dict(zip(runs["run_id"], runs["experiment"])) == {run.id: "bob-exp", hers.id: "ana-secret"}
    assert store.get_run(hers.id)["run"]["run_name"] == "churn-model"  # hers keeps its name
    assert any("second run_started" in bad.reason for bad in store.compact(rebuild=True).bad_lines)


# -- 2, 3. bounded times, whatever the route ---------------------------------------------------

def _dense_line(run_id, seq, dts):
    return orjson.dumps({"v": 2, "type": "metrics", "ts": time.time(), "run": run_id, "seq": seq,
                         "keys": ["loss"], "k": [0], "steps": [0], "values": [0.5], "dts": [dts]}) + b"\n"


@pytest.mark.slow
def test_a_point_time_past_year_3000_is_refused_by_the_server(central, tmp_path):
    store, client, tokens = central
    ana_has_a_private_run(tmp_path, client, tokens)
    run_id, lines = run_lines(tmp_path, "bob-exp")
    body = b"".join(lines) + _dense_line(run_id, last_seq(lines) + 1, 2**63 - 1)
    answer = post_run(client, tokens["bob"], run_id, "bob-exp", body)
    assert answer.status_code == 422 and "between 1970 and 3000" in answer.json()["error"]
    assert client.get("/api/v1/experiments", headers=auth(tokens["root"])).status_code == 200


def test_a_point_time_past_year_3000_in_a_file_is_skipped_not_fatal(store):
    with quiet_run(store, "exp") as run:
        run.log_metric("loss", 0.5, step=0)
    lines = run.path.read_bytes().splitlines(keepends=True)
    with open(run.path, "ab") as handle:
        handle.write(_dense_line(run.id, last_seq(lines) + 1, 2**63 - 1))
    with pytest.warns(mltrail.SkippedLinesWarning):
        assert len(store.search_runs()) == 1
    assert list(store.metric_history([run.id])["value"]) == [0.5]
    assert len(store.experiments()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("ts, reason", [(1e300, "less than or equal to"), ("future", "in the future")])
def test_a_synced_edit_has_a_bounded_time_not_in_the_future(central, tmp_path, ts, reason):
    store, client, tokens = central
    run_id = ana_has_a_private_run(tmp_path, client, tokens)
    edit_id = new_id()
    edit = {"v": 1, "type": "run_tags", "ts": time.time() + 86400 if ts == "future" else ts, "id": edit_id,
            "run": run_id, "tags": {"mltrail.name": "mine-forever"}}
    answer = client.put(f"/api/v1/runs/{run_id}/edits/{edit_id}", content=orjson.dumps(edit),
                        headers=auth(tokens["ana"]))
    assert answer.status_code == 422 and reason in answer.json()["error"]
    assert not list(store.layout.experiments.glob("*/edits/*.jsonl"))
    assert list(store.search_runs()["run_name"]) == ["churn-model"]


def test_an_edit_file_id_is_never_a_path(central, tmp_path):
    _, client, tokens = central
    run_id = ana_has_a_private_run(tmp_path, client, tokens)
    for bad_id in (".hidden", "x" * 26, "0" * 25 + "!"):
        edit = {"v": 1, "type": "run_deleted", "ts": time.time(), "id": bad_id, "run": run_id}
        answer = client.put(f"/api/v1/runs/{run_id}/edits/{bad_id}", content=orjson.dumps(edit),
                            headers=auth(tokens["ana"]))
        assert answer.status_code == 422 and "id" in answer.json()["error"], answer.text


# -- 8, 19. errors and answers name nothing the caller may not read ------------------------------

@pytest.mark.slow
def test_a_404_names_no_private_object(central, tmp_path):
    store, client, tokens = central
    ana_has_a_private_run(tmp_path, client, tokens, experiment="ana-secret-project")
    ana = mltrail.Store(store.root)
    ana.registry.create("Acquisition-Target-2027")
    ana.ab.create(ab_spec(key="secret-pricing"))
    for kind, name in (("experiment", "x"), ("model", "acquisition-target-2027"), ("ab", "pricing")):
        store.access.grant(kind, name, "bob", "read")  # a grant on a name nothing has yet
    bob = auth(tokens["bob"])
    answers = [client.get("/api/v1/search", params={"experiment": "x"}, headers=bob),
               client.get("/api/v1/models/acquisition-target-2027/events", headers=bob),
               client.get("/api/v1/ab/pricing/lifecycle", headers=bob)]
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert "secret" not in answer.text.lower()  # ana's experiment and A/B experiment
        assert "Acquisition" not in answer.text  # her model (bob asked for the lower-case name)
    root = auth(tokens["root"])  # an admin still gets the hint
    assert "ana-secret-project" in client.get("/api/v1/search", params={"experiment": "x"}, headers=root).text


def test_a_run_id_alone_tells_nothing_of_its_experiment(central, tmp_path):
    _, client, tokens = central
    run_id = ana_has_a_private_run(tmp_path, client, tokens)
    bob = auth(tokens["bob"])
    for answer in (client.get(f"/api/v1/runs/{run_id}/last-seq", headers=bob),
                   client.get(f"/api/v1/runs/{run_id}/stop", headers=bob),
                   post_run(client, tokens["bob"], run_id, "bob-exp", b"")):
        assert answer.status_code == 404 and "ana-secret" not in answer.text, answer.text


def test_compaction_results_are_for_an_admin(central, tmp_path):
    _, client, tokens = central
    ana_has_a_private_run(tmp_path, client, tokens)
    answer = client.post("/api/v1/compact", headers=auth(tokens["bob"]))
    assert answer.status_code == 403 and "files" not in answer.text
    assert client.post("/api/v1/compact", headers=auth(tokens["root"])).json()["files_seen"] == 1
    assert "generation" in client.post("/api/v1/refresh", headers=auth(tokens["bob"])).json()


# -- 9. a training set made from no view -------------------------------------------------------

def test_a_training_set_without_feature_refs_is_not_everyones(central):
    store, client, tokens = central
    saved = store.features.save_dataset("ana_private_rows", pd.DataFrame({"x": [1, 2, 3]}))
    for user, sees in (("bob", False), ("root", True)):
        events = client.get("/api/v1/features/events", headers=auth(tokens[user])).json()
        assert any(e.get("name") == "ana_private_rows" for e in events) is sees
        content = client.get(f"/api/v1/blobs/{saved.sha256}/content", headers=auth(tokens[user]))
        assert content.status_code == (200 if sees else 404)


# -- 10, 11. users come and go ----------------------------------------------------------------

@pytest.mark.slow
def test_a_removed_users_grants_do_not_pass_to_the_next_of_that_name(central, tmp_path):
    store, client, tokens = central
    ana_has_a_private_run(tmp_path, client, tokens)
    store.access.grant("experiment", "ana-secret", "bob", "read")
    store.access.remove_user("bob")
    new_bob = store.access.add_user("bob")
    assert store.access.level(store.access.user("bob"), "experiment", "ana-secret") is None
    assert client.get("/api/v1/search", params={"experiment": "ana-secret"}, headers=auth(new_bob)).status_code == 404


def test_removing_the_last_user_does_not_open_the_store(central, tmp_path):
    store, client, tokens = central
    ana_has_a_private_run(tmp_path, client, tokens)
    for name in ("ana", "bob", "root"):
        store.access.remove_user(name)
    for headers in ({}, auth(tokens["root"])):
        answer = client.get("/api/v1/experiments", headers=headers)
        assert answer.status_code == 401, answer.text
    assert client.get("/api/v1/health").status_code == 200


# -- 14. one manager for a new experiment ------------------------------------------------------

@pytest.mark.slow
def test_two_first_uploads_to_a_new_experiment_make_one_manager(tmp_path):
    folder = tmp_path / "central"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name) for name in ("ana", "bob")}
    with serving_store(folder) as url:
        for attempt in range(3):
            experiment = f"new-{attempt}"
            bodies = {name: run_lines(tmp_path, experiment) for name in tokens}
            start = threading.Barrier(2)
            codes = {}

            def send(name):
                run_id, lines = bodies[name]
                request = urllib.request.Request(
                    f"{url}/api/v1/runs/{run_id}/events?experiment={experiment}", data=b"".join(lines),
                    method="POST", headers=auth(tokens[name]))
                start.wait()
                try:
                    with urllib.request.urlopen(request, timeout=30) as reply:
                        codes[name] = reply.status
                except urllib.error.HTTPError as exc:
                    codes[name] = exc.code

            threads = [threading.Thread(target=send, args=(name,)) for name in tokens]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            managers = [u for u in tokens if local.access.level(local.access.user(u), "experiment", experiment)]
            assert len(managers) == 1, (codes, managers)
            assert sorted(codes.values()) == [200, 404]


# -- 21, 23. lines and names every reader reads the same way ------------------------------------

def test_lines_split_by_a_lone_carriage_return_are_refused(central, tmp_path):
    store, client, tokens = central
    run_id, lines = run_lines(tmp_path, "bob-exp")
    body = lines[0].rstrip(b"\n") + b"\r" + b"".join(lines[1:])
    answer = post_run(client, tokens["bob"], run_id, "bob-exp", body)
    assert answer.status_code == 422
    assert not list(store.layout.experiments.glob(f"*/runs/{run_id}.jsonl"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["churn\n", "churn\r", "chu\x00rn", "\t"])
def test_names_with_control_characters_are_refused_everywhere(store, central, tmp_path, name):
    with pytest.raises(InvalidInputError, match="control characters|non-empty"):
        store.start_run(experiment=name)
    with pytest.raises(InvalidInputError, match="control characters|non-empty"):
        store.start_run(experiment="exp", name=name)
    with pytest.raises(InvalidInputError):
        store.registry.create(name)
    with pytest.raises(InvalidInputError):
        store.ab.create(ab_spec(key=name))
    server, client, tokens = central
    run_id, lines = run_lines(tmp_path, "exp")
    answer = post_run(client, tokens["bob"], run_id, name, b"".join(lines))
    assert answer.status_code == 422
    assert not list(server.layout.experiments.glob("*/runs/*.jsonl"))


# -- 4. limits count decoded bytes ------------------------------------------------------------

def _ipc(table, compression=None):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@pytest.fixture
def views(central, tmp_path):
    """``central`` with a feature view bob may read."""
    store, client, tokens = central
    source = tmp_path / "activity.parquet"
    pd.DataFrame({"customer_id": [1, 2], "ts": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
                  "visits": [3, 4]}).to_parquet(source)
    store.features.apply_entity("customer", ["customer_id"])
    store.features.apply_view("activity", "customer", source, "ts", {"visits": "int"})
    store.access.grant("feature_view", "activity", "bob", "read")
    return store, TestClient(create_app(store, max_body=1 << 20)), tokens


def _historical(client, token, body):
    return client.post("/api/v1/features/historical", params={"features": ["activity:visits"]}, content=body,
                       headers=auth(token))


@pytest.mark.slow
@pytest.mark.parametrize("bomb", ["zstd zeros", "lz4 strings", "a column of nulls"])
def test_a_compressed_or_bufferless_bomb_is_refused_before_it_is_decoded(views, bomb):
    _, client, tokens = views
    rows = 4_000_000
    if bomb == "a column of nulls":  # no buffer at all, and pandas would give each row a slot
        body = _ipc(pa.table({"event_timestamp": pa.nulls(rows * 50), "customer_id": pa.nulls(rows * 50)}))
    else:
        codec, column = bomb.split()[0], (pa.array(np.zeros(rows, dtype=np.int64)) if "zeros" in bomb
                                          else pa.array(["x" * (8 << 20)] * 8))
        body = _ipc(pa.table({"customer_id": column}), codec)
    assert len(body) < 1 << 20  # the body passes the limit: only what it decodes to does not
    answer = _historical(client, tokens["bob"], body)
    assert answer.status_code == 413 and "decoded" in answer.json()["error"], answer.text


@pytest.mark.slow
def test_an_honest_entity_frame_still_gets_its_features(views):
    _, client, tokens = views
    entities = pa.table({"customer_id": [1, 2], "event_timestamp": pa.array(
        pd.to_datetime(["2026-02-01", "2026-02-01"], utc=True))})
    for codec in (None, "zstd"):
        answer = _historical(client, tokens["bob"], _ipc(entities, codec))
        assert answer.status_code == 200, answer.text
        assert pa.ipc.open_stream(answer.content).read_all().column("visits").to_pylist() == [3, 4]


@pytest.mark.slow
@pytest.mark.parametrize("body", [b"", b"not arrow at all", b"\xff\xff\xff\xff\x10\x00\x00\x00" + b"\x00" * 16])
def test_a_broken_stream_is_a_clear_refusal(views, body):
    _, client, tokens = views
    answer = _historical(client, tokens["bob"], body)
    assert answer.status_code == 422 and "not an Arrow IPC stream" in answer.json()["error"], answer.text


# -- the access log ----------------------------------------------------------------------------

@pytest.mark.slow
def test_the_access_log_says_who_did_what_to_which_object_and_how_it_ended(central, tmp_path, caplog):
    _, client, tokens = central
    run_id = ana_has_a_private_run(tmp_path, client, tokens)
    with caplog.at_level("INFO", logger="mltrail.server.access"):
        client.get(f"/api/v1/runs/{run_id}", headers=auth(tokens["bob"]))
        client.get("/api/v1/experiments", headers=auth("mlt_not-a-token"))
    lines = [record.getMessage() for record in caplog.records if record.name == "mltrail.server.access"]
    assert len(lines) == 2
    assert f" bob GET /api/v1/runs/{run_id} 404 " in lines[0]
    assert " - GET /api/v1/experiments 401 " in lines[1]
    assert not any(token in line for line in lines for token in tokens.values())


@pytest.mark.slow  # calls held open on a real server
def test_a_user_cannot_tie_up_the_server_with_waiting_stop_watches(tmp_path, monkeypatch):
    """Each stop-requests call may be held open 30 s (a job's watcher holds one); a user
    opening them without end would hold the server's connections. Past a per-user limit
    the server answers 503 at once; other users' watches, and the user's own later ones,
    are held as before."""
    from mltrail.server import tracking_routes

    monkeypatch.setattr(tracking_routes, "STOP_WATCHES_PER_USER", 2)
    store = mltrail.Store(tmp_path / "central")
    tokens = {name: store.access.add_user(name) for name in ("ana", "bob")}
    with serving_store(tmp_path / "central") as url:
        def watch(token, wait):
            request = urllib.request.Request(f"{url}/api/v1/stop-requests?run=01JZZZZZZZZZZZZZZZZZZZZZZZ&wait={wait}",
                                             headers=auth(token))
            started = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return answer.status, time.monotonic() - started
            except urllib.error.HTTPError as exc:
                return exc.code, time.monotonic() - started

        held = [threading.Thread(target=watch, args=(tokens["ana"], 3)) for _ in range(2)]
        for thread in held:
            thread.start()
        time.sleep(0.5)  # (the two calls are open on the server: they answer after 3 s)
        status, took = watch(tokens["ana"], 3)
        assert (status, took < 1.0) == (503, True)
        assert watch(tokens["bob"], 0.5)[0] == 200  # another user's watch is held as before
        for thread in held:
            thread.join()
        status, took = watch(tokens["ana"], 0.5)  # ana's own, once hers have ended
        assert status == 200 and took >= 0.5


@pytest.mark.slow  # calls held open on a real server
def test_without_users_the_stop_watch_limit_is_per_host(tmp_path, monkeypatch):
    """A store without users has one shared token: the limit counts by the caller's host,
    so one machine's jobs cannot use up every other machine's watches."""
    from mltrail.server import tracking_routes

    monkeypatch.setattr(tracking_routes, "STOP_WATCHES_PER_USER", 1)
    with serving_store(tmp_path / "central") as url:
        where = f"{url}/api/v1/stop-requests?run=01JZZZZZZZZZZZZZZZZZZZZZZZ&wait=3"
        held = threading.Thread(target=lambda: urllib.request.urlopen(where, timeout=30).read())
        held.start()
        time.sleep(0.5)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(where, timeout=30)
        assert refused.value.code == 503 and b"host 127.0.0.1 holds 1 " in refused.value.read()
        held.join()
