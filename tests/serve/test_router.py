"""The router in process: Starlette's TestClient in front, fake model services behind
(an upstream given to the router through its constructor)."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

import mltrail
from mltrail.serve import router as router_module
from mltrail.serve.upstream import Reply, UpstreamTimeout, UpstreamUnreachable
from tests.factories import ab_spec, spawn_python, wait_for

SERVICES = {"control": "http://control.model", "treatment": "http://treatment.model"}


class FakeModels:
    """Two model services behind the router's upstream interface; each can be made to fail."""

    def __init__(self) -> None:
        self.fail: dict[str, str] = {}
        self.calls: dict[str, int] = {"control": 0, "treatment": 0}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def post(self, url: str, body: bytes) -> Reply:
        variant = url.split("//")[1].split(".")[0]
        self.calls[variant] += 1
        mode = self.fail.get(variant)
        if mode == "down":
            raise UpstreamUnreachable("ClientConnectorError")
        if mode == "slow":
            raise UpstreamTimeout("no answer within 2 s")
        if mode == "500":
            return Reply(500, b'{"detail": "boom"}')
        if mode == "garbage":
            return Reply(200, b"<html>")
        features = json.loads(body)["features"]
        return Reply(200, json.dumps({"prediction": 0.9 if variant == "treatment" else 0.1,
                                      "echo": features}).encode())


@pytest.fixture
def setup(store, monkeypatch):
    monkeypatch.setattr(router_module, "REFRESH_SECONDS", 0.0)
    variants = [{"name": "control", "weight": 0.5, "control": True, "url": SERVICES["control"]},
                {"name": "treatment", "weight": 0.5, "url": SERVICES["treatment"]}]
    exp = store.ab.create(ab_spec(variants=variants, mde=0.05)).start()
    models = FakeModels()
    app = router_module.create_app(store, upstream=models, admin_token="s3cret", max_body_bytes=2_000)
    with TestClient(app) as client:
        yield client, store, exp, models


def predict(client, unit, features=None):
    return client.post("/experiments/ranker-v2/predict", json={"unit_id": unit, "features": features or {"x": 1}})


@pytest.mark.slow
def test_predictions_follow_the_assignment_and_exposures_land(setup, store):
    client, store, exp, _ = setup
    served = {}
    for i in range(600):
        reply = predict(client, f"user-{i}")
        assert reply.status_code == 200
        body = reply.json()
        assert body["variant"] == exp.assign(f"user-{i}") and body["exposed"] and body["phase"] == 1
        assert body["prediction"] == (0.9 if body["variant"] == "treatment" else 0.1)
        served[body["variant"]] = served.get(body["variant"], 0) + 1
    assert 240 < served["control"] < 360  # the split follows the weights
    assert client.post("/experiments/ranker-v2/feedback",
                       json={"unit_id": "user-1", "metric": "conversion", "value": 1}).status_code == 200
    status = client.get("/experiments/ranker-v2").json()
    assert status["state"] == "running" and status["exposures_by_this_router"] == served
    store.ab._logs["ranker-v2"].flush()
    results = mltrail.Store(store.root).ab.get("ranker-v2").results()
    assert sum(results.units.values()) == 600


@pytest.mark.slow
def test_attributes_sent_with_a_prediction_read_results_by_dimension(setup, store):
    client, store, exp, models = setup
    for i in range(200):
        reply = client.post("/experiments/ranker-v2/predict", json={
            "unit_id": f"user-{i}", "features": {"x": 1}, "attributes": {"country": "FR" if i % 2 else "DE", "vip": i < 10}})
        assert reply.status_code == 200
    refused = client.post("/experiments/ranker-v2/predict", json={
        "unit_id": "user-x", "features": {"x": 1}, "attributes": {"country": "x" * 300}})
    assert refused.status_code == 422 and "attribute 'country'" in refused.json()["detail"]
    store.ab._logs["ranker-v2"].flush()
    by_country = mltrail.Store(store.root).ab.get("ranker-v2").results_by("country")
    assert {k: sum(r.units.values()) for k, r in by_country.segments.items()} == {"DE": 100, "FR": 100}


def test_paused_sends_everyone_to_control_without_exposure(setup):
    client, store, exp, _ = setup
    mltrail.Store(store.root).ab.get("ranker-v2").pause()  # from elsewhere: the CLI, a dashboard
    replies = [predict(client, f"user-{i}").json() for i in range(50)]
    assert {r["variant"] for r in replies} == {"control"} and not any(r["exposed"] for r in replies)


def test_stopped_with_a_winner_serves_the_winner(setup):
    client, store, exp, _ = setup
    exp.stop("treatment", "better")
    assert {predict(client, f"u{i}").json()["variant"] for i in range(30)} == {"treatment"}


@pytest.mark.parametrize("mode,status,words", [("down", 502, "unreachable"), ("500", 502, "answered 500"),
                                               ("slow", 504, "timed out"), ("garbage", 502, "without a JSON")])
def test_a_failing_model_service_fails_only_its_variant(setup, mode, status, words):
    client, store, exp, models = setup
    models.fail["treatment"] = mode
    replies = {f"user-{i}": predict(client, f"user-{i}") for i in range(100)}
    for unit, reply in replies.items():
        if exp.assign(unit) == "treatment":
            assert reply.status_code == status
            assert "treatment" in reply.json()["detail"] and words in reply.json()["detail"]
        else:
            assert reply.status_code == 200  # the other variant keeps serving
    models.fail.clear()
    assert all(predict(client, f"user-{i}").status_code == 200 for i in range(100))  # recovered
    metrics = client.get("/metrics").text
    assert 'mltrail_router_upstream_errors_total{experiment="ranker-v2"' in metrics


def test_bad_requests(setup):
    client, *_ = setup
    assert client.post("/experiments/nope/predict", json={"unit_id": "u", "features": {}}).status_code == 404
    assert predict(client, "").status_code == 422
    missing = client.post("/experiments/ranker-v2/predict", json={"features": {}})
    assert missing.status_code == 422 and "unit_id" in missing.text
    assert client.post("/experiments/ranker-v2/predict", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422
    assert predict(client, "u", {"blob": "x" * 5_000}).status_code == 413
    bad_metric = client.post("/experiments/ranker-v2/feedback", json={"unit_id": "u", "metric": "nope", "value": 1})
    assert bad_metric.status_code == 422 and "unknown metric" in bad_metric.json()["detail"]


def test_admin_calls_need_the_token(setup):
    client, store, *_ = setup
    assert client.post("/experiments/ranker-v2/pause").status_code == 401
    assert client.post("/experiments/ranker-v2/pause", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.post("/experiments/ranker-v2/pause", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["state"] == "paused"
    assert mltrail.Store(store.root).ab.get("ranker-v2").state == "paused"
    again = client.post("/experiments/ranker-v2/pause", headers={"Authorization": "Bearer s3cret"})
    assert again.status_code == 409 and "cannot be paused" in again.json()["detail"]
    weights = client.post("/experiments/ranker-v2/weights", headers={"Authorization": "Bearer s3cret"},
                          json={"weights": {"control": 0.2, "treatment": 0.8}})
    assert weights.status_code == 200 and weights.json()["phase"] == 2


@pytest.mark.slow
def test_a_busy_lock_stalls_no_predict_and_is_a_clear_503(setup, monkeypatch, tmp_path):
    """Another process holds the experiment's lock: the admin call waits off the event
    loop (predicts keep being answered) and gives up with a 503 after
    MLTRAIL_LOCK_TIMEOUT, writing nothing."""
    client, store, exp, _ = setup
    monkeypatch.setenv("MLTRAIL_LOCK_TIMEOUT", "1.5")
    holder = spawn_python(f"""
import time
from filelock import FileLock
with FileLock({str(store.layout.lock_file("ab-ranker-v2"))!r}):
    print("held", flush=True)
    time.sleep(120)
""", tmp_path)
    try:
        assert holder.stdout.readline().strip() == "held"
        with ThreadPoolExecutor(1) as pool:
            pause = pool.submit(client.post, "/experiments/ranker-v2/pause",
                                headers={"Authorization": "Bearer s3cret"})
            latencies, deadline = [], time.monotonic() + 20
            while not pause.done() and time.monotonic() < deadline:
                started = time.monotonic()
                assert predict(client, f"user-{len(latencies)}").status_code == 200
                latencies.append(time.monotonic() - started)
            reply = pause.result(timeout=10)
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    assert reply.status_code == 503 and "try again" in reply.json()["detail"]
    assert len(latencies) >= 5 and max(latencies) < 1.0  # answered while the admin call waited
    assert mltrail.Store(store.root).ab.get("ranker-v2").state == "running"  # nothing written


def test_a_log_the_shutdown_cannot_flush_is_logged_and_kept(store, monkeypatch, caplog):
    """At shutdown the router flushes every exposure log; one the disk refuses is said
    through the router's logger (not printed: the application decides where it goes)
    and keeps its events for the next flush."""
    monkeypatch.setenv("MLTRAIL_FLUSH_SECONDS", "3600")  # only the shutdown flushes
    variants = [{"name": "control", "weight": 0.5, "control": True, "url": SERVICES["control"]},
                {"name": "treatment", "weight": 0.5, "url": SERVICES["treatment"]}]
    store.ab.create(ab_spec(variants=variants, mde=0.05)).start()
    blocker = store.ab.log_folder("ranker-v2")
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    with TestClient(router_module.create_app(store, upstream=FakeModels())) as client:
        for i in range(5):
            assert predict(client, f"user-{i}").status_code == 200
    said = [r for r in caplog.records if r.name == "mltrail.serve.router"]
    assert [r.levelname for r in said] == ["WARNING"]
    assert "could not flush the exposure log of 'ranker-v2'" in said[0].getMessage()
    log = store.ab.open_log("ranker-v2")
    assert log.pending == 5
    blocker.unlink()
    log.close()
    assert sum(mltrail.Store(store.root).ab.get("ranker-v2").results().units.values()) == 5


@pytest.mark.slow
def test_a_failing_log_flush_is_retried_counted_and_loses_nothing(setup, monkeypatch, caplog):
    """The exposure log's folder cannot be written (here: a file where the folder goes):
    predictions are still answered, each failed flush is counted in /metrics and logged
    as a warning, and once the disk is back every exposure lands."""
    client, store, exp, _ = setup
    monkeypatch.setenv("MLTRAIL_FLUSH_SECONDS", "0.05")
    blocker = store.ab.log_folder("ranker-v2")
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    for i in range(50):
        assert predict(client, f"user-{i}").status_code == 200
    log = store.ab.open_log("ranker-v2")
    wait_for(lambda: log.failed_flushes >= 2, timeout=10, what="two failed flushes")
    metrics = client.get("/metrics").text
    line = next(m for m in metrics.splitlines() if m.startswith('mltrail_router_log_flush_failures_total{experiment="ranker-v2"}'))
    assert float(line.split()[-1]) >= 2
    assert "could not flush the exposure log of A/B experiment 'ranker-v2'" in caplog.text
    blocker.unlink()
    wait_for(lambda: log.failed_flushes and not log.pending, timeout=10, what="the retried flush")
    assert sum(mltrail.Store(store.root).ab.get("ranker-v2").results().units.values()) == 50


def test_errors_map_to_one_status_each(setup):
    client, *_ = setup
    auth = {"Authorization": "Bearer s3cret"}
    assert client.post("/experiments/nope/pause", headers=auth).status_code == 404
    assert client.get("/experiments/nope").status_code == 404
    bad = client.post("/experiments/ranker-v2/weights", headers=auth, json={"weights": {"control": 1.0}})
    assert bad.status_code == 422
    assert client.post("/experiments/ranker-v2/stop", headers=auth, json={"reason": "done"}).status_code == 200
    assert client.post("/experiments/ranker-v2/pause", headers=auth).status_code == 409
    assert [router_module.status_of(e) for e in (
        mltrail.NotFoundError("x"), mltrail.InvalidInputError("x"), mltrail.AlreadyExistsError("x"),
        mltrail.WrongStateError("x"), mltrail.BusyError("x"), mltrail.UpstreamTimeoutError("x"),
        mltrail.UpstreamError("x"))] == [404, 422, 409, 409, 503, 504, 502]


def test_admin_disabled_without_a_configured_token(store):
    app = router_module.create_app(store, upstream=FakeModels())
    with TestClient(app) as client:
        reply = client.post("/experiments/x/pause", headers={"Authorization": "Bearer anything"})
        assert reply.status_code == 403 and "disabled" in reply.json()["detail"]
        assert client.get("/healthz").json() == {"ok": True}


def test_fallback_to_control_when_the_spec_says_so(store, monkeypatch):
    monkeypatch.setattr(router_module, "REFRESH_SECONDS", 0.0)
    variants = [{"name": "control", "weight": 0.5, "control": True, "url": SERVICES["control"]},
                {"name": "treatment", "weight": 0.5, "url": SERVICES["treatment"]}]
    exp = store.ab.create(ab_spec(variants=variants, mde=0.05, fallback_to_control=True)).start()
    models = FakeModels()
    models.fail["treatment"] = "down"
    with TestClient(router_module.create_app(store, upstream=models)) as client:
        replies = {f"user-{i}": predict(client, f"user-{i}") for i in range(60)}
        assert all(reply.status_code == 200 for reply in replies.values())
        fell_back = [u for u, r in replies.items() if r.json().get("served_by") == "control"]
        assert fell_back and all(exp.assign(u) == "treatment" for u in fell_back)
        for unit in fell_back:  # the control answered, the unit stays in its variant (intention to treat)
            answer = replies[unit].json()
            assert answer["variant"] == "treatment" and answer["exposed"] and answer["prediction"] == 0.1
        models.fail["control"] = "down"  # nothing left to fall back on: the error names the control
        reply = predict(client, fell_back[0])
        assert reply.status_code == 502 and "'control'" in reply.json()["detail"]
        assert 'mltrail_router_fallbacks_total{experiment="ranker-v2",variant="treatment"}' in \
            client.get("/metrics").text


def test_status_names_the_registry_version_each_variant_serves(store, tmp_path):
    import pickle

    from tests.factories import quiet_run

    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(pickle.dumps({"w": 1}))
    with quiet_run(store, "train") as run:
        run.log_artifact(model_file, name="model.pkl")
    store.registry.create("ranker")
    store.registry.register("ranker", run.id)
    store.registry.register("ranker", run.id)
    store.registry.set_alias("ranker", "champion", 2)
    variants = [{"name": "control", "weight": 0.5, "control": True, "url": SERVICES["control"],
                 "model": "models:/ranker@champion"},
                {"name": "treatment", "weight": 0.5, "url": SERVICES["treatment"], "model": "models:/ranker/1"}]
    store.ab.create(ab_spec(variants=variants, mde=0.05))
    with TestClient(router_module.create_app(store, upstream=FakeModels())) as client:
        status = client.get("/experiments/ranker-v2").json()
    assert [(v["name"], v["model"], v["version"]) for v in status["variants"]] == [
        ("control", "models:/ranker@champion", 2), ("treatment", "models:/ranker/1", 1)]


def test_online_features_are_attached_by_entity_key(store, monkeypatch, tmp_path):
    import pandas as pd

    monkeypatch.setattr(router_module, "REFRESH_SECONDS", 0.0)
    now = pd.Timestamp.now(tz="UTC")
    pd.DataFrame({"customer_id": [7, 8], "ts": [now, now], "calls": [3.0, 9.0]}).to_parquet(tmp_path / "a.parquet")
    store.features.apply_entity("customer", join_keys=["customer_id"])
    store.features.apply_view("activity", entity="customer", source=tmp_path / "a.parquet", timestamp_field="ts",
                              ttl="1h", features={"calls": "float"})
    store.features.materialize()
    variants = [{"name": "control", "weight": 0.5, "control": True, "url": SERVICES["control"],
                 "features": ["activity:calls"]},
                {"name": "treatment", "weight": 0.5, "url": SERVICES["treatment"], "features": ["activity:calls"]}]
    store.ab.create(ab_spec(variants=variants, mde=0.05)).start()
    models = FakeModels()
    seen = []
    original = models.post

    async def recording(url, body):
        seen.append(json.loads(body)["features"])
        return await original(url, body)

    models.post = recording
    with TestClient(router_module.create_app(store, upstream=models)) as client:
        only_key = client.post("/experiments/ranker-v2/predict", json={"unit_id": "u1", "entity": {"customer_id": 8}})
        assert only_key.status_code == 200 and seen[-1] == {"calls": 9.0}
        own_value = client.post("/experiments/ranker-v2/predict",
                                json={"unit_id": "u2", "entity": {"customer_id": 8}, "features": {"calls": 1.0}})
        assert own_value.status_code == 200 and seen[-1] == {"calls": 1.0}  # the caller's value wins
        neither = client.post("/experiments/ranker-v2/predict", json={"unit_id": "u3"})
        assert neither.status_code == 422 and "needs calls" in neither.json()["detail"]
        wrong_key = client.post("/experiments/ranker-v2/predict", json={"unit_id": "u4", "entity": {"id": 8}})
        assert wrong_key.status_code == 422 and "customer_id" in wrong_key.json()["detail"]


@pytest.mark.slow
def test_unknown_keys_cost_no_memory_and_odd_keys_are_404(setup):
    import tracemalloc

    client, store, *_ = setup
    assert client.get("/experiments/" + "k" * 5_000).status_code == 404  # longer than a file name may be
    assert client.post("/experiments/../../etc/pause", headers={"Authorization": "Bearer s3cret"}).status_code == 404
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(5_000):
        with pytest.raises(mltrail.NotFoundError):
            store.ab.get(f"nope-{i}")
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    # what mltrail's own code still holds (other libraries' threads, such as a Spark
    # gateway left by an earlier test, allocate meanwhile and are not this test's business)
    ours = [tracemalloc.Filter(True, "*/mltrail/*")]
    grown = sum(stat.size_diff for stat in after.filter_traces(ours).compare_to(before.filter_traces(ours), "filename"))
    assert grown < 200_000, grown  # a folder watcher per unknown key used to stay (~1 kB each)


@pytest.mark.parametrize("body", [
    {"unit_id": "u1", "features": {"x": {"nested": 1}}},
    {"unit_id": "u1", "features": {"x": 1}, "entity": {"driver_id": {"a": 1}}},
    {"unit_id": "u1", "features": {"x": 1}, "entity": {"driver_id": [1, 2]}},
    {"unit_id": "u1", "features": {"x": 1}, "entity": {"driver_id": 2**64}},
])
def test_values_no_model_or_store_can_take_are_422(setup, body):
    client, *_ = setup
    reply = client.post("/experiments/ranker-v2/predict", content=json.dumps(body))
    assert reply.status_code == 422, reply.text


def test_a_feature_past_64_bits_is_a_number_not_a_500(setup):
    client, *_ = setup
    reply = client.post("/experiments/ranker-v2/predict", content=json.dumps({"unit_id": "u1", "features": {"x": 2**70}}))
    assert reply.status_code == 200 and reply.json()["prediction"] in (0.1, 0.9)


def test_a_trickling_body_is_cut_off_with_408(store, monkeypatch):
    import asyncio

    from mltrail.serve import asgi

    monkeypatch.setattr(asgi, "BODY_SECONDS", 0.2)
    app = router_module.create_app(store, upstream=FakeModels())
    sent = []

    async def receive():
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": b" ", "more_body": True}  # one byte at a time, forever

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/experiments/ranker-v2/predict", "headers": []}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=5))
    assert sent[0]["status"] == 408 and b"did not arrive within 0.2 s" in sent[1]["body"]


def test_an_unreadable_experiment_leaves_the_others_listed(setup):
    client, store, *_ = setup
    broken = mltrail.Store(store.root).ab.create(ab_spec(key="broken"))  # not through the router's store
    (created,) = (store.root / "ab" / broken.key / "lifecycle").glob("*.jsonl")
    created.write_bytes(b"{not json")
    with pytest.warns(mltrail.SkippedLinesWarning):
        listed = client.get("/experiments")
    assert listed.status_code == 200 and [e["key"] for e in listed.json()] == ["ranker-v2"]
