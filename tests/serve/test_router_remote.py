"""``mltrail serve router --store http://…``: a router on another host than the store.
Its exposures and feedback are spooled and sent to the server in the background; its
admin calls change the server's experiment; the server's analysis counts every unit it
served, once."""

import pytest
from fastapi.testclient import TestClient

import mltrail
from mltrail.serve import router as router_module
from tests.factories import ab_spec, serving_store, wait_for
from tests.serve.test_router import SERVICES, FakeModels, predict


@pytest.fixture
def remote_router(tmp_path, monkeypatch):
    monkeypatch.setattr(router_module, "REFRESH_SECONDS", 0.0)
    monkeypatch.setenv("MLTRAIL_FLUSH_SECONDS", "0.2")
    folder = tmp_path / "central"
    local = mltrail.Store(folder)
    variants = [{"name": "control", "weight": 0.5, "control": True, "url": SERVICES["control"]},
                {"name": "treatment", "weight": 0.5, "url": SERVICES["treatment"]}]
    local.ab.create(ab_spec(variants=variants, mde=0.05)).start()
    with serving_store(folder) as url:
        remote = mltrail.Store(url, spool=tmp_path / "router-spool")
        app = router_module.create_app(remote, upstream=FakeModels(), admin_token="s3cret")
        with TestClient(app) as client:
            yield client, remote, local
        assert remote.close(wait=10) == 0


@pytest.mark.slow
def test_a_router_logs_into_a_server_and_every_unit_arrives_once(remote_router):
    client, remote, local = remote_router
    served = {}
    for i in range(400):
        body = predict(client, f"user-{i}").json()
        served[body["variant"]] = served.get(body["variant"], 0) + 1
        if i % 4 == 0:
            assert client.post("/experiments/ranker-v2/feedback",
                               json={"unit_id": f"user-{i}", "metric": "conversion", "value": 1}).status_code == 200
    # the background uploader sends the router's spooled segments within a few seconds
    wait_for(lambda: local.ab.get("ranker-v2").results().units == served, timeout=20,
             what="the router's exposures on the server")
    table = local.ab.get("ranker-v2").results().table.set_index(["metric", "variant"])
    conversion = table.loc["conversion"]
    assert conversion["units"].sum() == 400 and round((conversion["units"] * conversion["mean"]).sum()) == 100
    # the same analysis read through the server
    assert remote.ab.get("ranker-v2").results().units == served
    # admin calls change the server's experiment
    paused = client.post("/experiments/ranker-v2/pause", headers={"Authorization": "Bearer s3cret"})
    assert paused.status_code == 200 and local.ab.get("ranker-v2").state == "paused"
    again = client.post("/experiments/ranker-v2/pause", headers={"Authorization": "Bearer s3cret"})
    assert again.status_code == 409 and "cannot be paused" in again.json()["detail"]


@pytest.mark.slow
def test_admin_calls_take_user_tokens_and_the_server_checks_manage(tmp_path, monkeypatch):
    monkeypatch.setattr(router_module, "REFRESH_SECONDS", 0.0)
    folder = tmp_path / "central"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name) for name in ("router", "ana", "bob", "dan")}
    variants = [{"name": "control", "weight": 0.5, "control": True, "url": SERVICES["control"]},
                {"name": "treatment", "weight": 0.5, "url": SERVICES["treatment"]}]
    local.ab.create(ab_spec(variants=variants, mde=0.05)).start()
    for user, level in (("router", "edit"), ("ana", "manage"), ("bob", "read")):
        local.access.grant("ab", "ranker-v2", user, level, by="admin")
    with serving_store(folder) as url:
        remote = mltrail.Store(url, token=tokens["router"], spool=tmp_path / "router-spool")
        app = router_module.create_app(remote, upstream=FakeModels(), admin_token=None)
        with TestClient(app) as client:
            assert predict(client, "user-1").status_code == 200  # the router's user may log exposures

            def pause(user):
                return client.post("/experiments/ranker-v2/pause", headers={"Authorization": f"Bearer {tokens[user]}"})

            assert pause("dan").status_code == 404 and "ranker-v2" in pause("dan").json()["detail"]
            denied = pause("bob")
            assert denied.status_code == 403 and "needs manage" in denied.json()["detail"]
            assert local.ab.get("ranker-v2").state == "running"
            assert pause("ana").status_code == 200 and local.ab.get("ranker-v2").state == "paused"
            assert local.ab.lifecycle("ranker-v2")[-1].by == "ana"
            assert client.post("/experiments/ranker-v2/start").status_code == 403  # no token: admin calls disabled
        assert remote.close(wait=10) == 0
