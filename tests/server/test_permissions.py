"""Users and permissions on a server (issue 16): a generated matrix of every guarded
call × the level it needs × the level granted (none, read, edit, manage) × how (directly,
through a group, granted then revoked). An allowed call succeeds; one above the user's
level is a PermissionDeniedError (403); one on an object they may not read is a
NotFoundError (404) that names nothing else; a refused call writes nothing. Then what a
user without access can learn (nothing), and tokens (wrong, rotated, removed, missing)."""

import hashlib
import itertools
import pickle
import uuid

import pandas as pd
import pytest

import mltrail
from mltrail.remote.http import Server
from tests.factories import ab_spec, quiet_run, serving_store

LEVELS = ["none", "read", "edit", "manage"]
RANK = {level: i for i, level in enumerate(LEVELS)}
VIAS = ["direct", "group", "revoked"]
EXPOSURE = (b'{"v":1,"type":"exposure","ts":1.0,"experiment":"secret-ab","seq":1,"unit":"u1",'
            b'"variant":"control","phase":1}\n')


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A server's store with users (ana makes everything private through the server),
    its URL, the users' tokens, and the objects' IDs."""
    tmp = tmp_path_factory.mktemp("permissions")
    folder = tmp / "store"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name, admin=(name == "root")) for name in ("ana", "bob", "cat", "dan", "root")}
    local.access.add_members("team", ["cat"])
    local.access.add_members("everyone", ["bob", "cat", "dan"])
    source = tmp / "activity.parquet"
    pd.DataFrame({"customer_id": [1, 2], "ts": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
                  "visits": [3, 4]}).to_parquet(source)
    local.features.apply_entity("customer", ["customer_id"])
    local.features.apply_view("secret_view", "customer", source, "ts", {"visits": "int"})
    local.features.materialize(start="2025-01-01")
    with serving_store(folder) as url:
        ana = mltrail.Store(url, token=tokens["ana"], spool=tmp / "spool-ana")
        model_file = tmp / "model.pkl"
        model_file.write_bytes(pickle.dumps({"weights": [1]}))
        ids = {}
        notes = tmp / "notes.txt"
        notes.write_text("only in the private experiment")
        ids["secret_blob"] = hashlib.sha256(notes.read_bytes()).hexdigest()
        for experiment in ("secret-exp", "shared-exp"):
            with quiet_run(ana, experiment, name=f"{experiment}-run") as run:
                run.log_metric("loss", 0.5)
                run.log_histogram("weights", [0.1, 0.2, 0.3])
                run.log_artifact(str(model_file))
                if experiment == "secret-exp":
                    run.log_artifact(str(notes))
            ids[experiment] = run.id
        assert ana.upload() == 0
        ana.access.grant("experiment", "shared-exp", to="everyone", level="read")
        ana.registry.create("secret-model")
        ana.registry.register("secret-model", ids["secret-exp"])
        ana.ab.create(ab_spec(key="secret-ab")).start()
        ana.views.save("secret-view", experiments=["secret-exp"], filter="metrics.loss < 1")
        yield {"url": url, "folder": folder, "tokens": tokens, "ids": ids, "local": local, "tmp": tmp}
        ana.close(wait=5)


def client(world, user):
    return mltrail.Store(world["url"], token=world["tokens"][user], spool=world["tmp"] / f"spool-{user}")


# (kind, object, level the call needs, the call, as bob or cat); each returns something truthy
CALLS = {
    ("experiment", "read", "search"): lambda s, w: len(s.search_runs(experiment="secret-exp")) == 1,
    ("experiment", "read", "get_run"): lambda s, w: s.get_run(w["ids"]["secret-exp"])["run"]["run_name"],
    ("experiment", "read", "artifact"): lambda s, w: s.artifact_path(w["ids"]["secret-exp"], "model.pkl"),
    ("experiment", "edit", "log"): lambda s, w: _log_a_run(s, w),
    ("experiment", "edit", "curate"): lambda s, w: s.set_tag(w["ids"]["secret-exp"], "checked", "yes")
    == w["ids"]["secret-exp"],
    ("experiment", "manage", "grant"): lambda s, w: _granted(s, "experiment", "secret-exp"),
    ("ab", "read", "get"): lambda s, w: s.ab.get("secret-ab").state,
    ("ab", "read", "results"): lambda s, w: s.ab.get("secret-ab").results().phase,
    ("ab", "read", "results by"): lambda s, w: s.ab.get("secret-ab").results_by("country").dimension,
    ("ab", "read", "dimensions"): lambda s, w: s.ab.get("secret-ab").dimensions() == [],
    ("ab", "edit", "log"): lambda s, w: Server(w["url"], w["token"]).call(
        "POST", "/api/v1/ab/secret-ab/log/01M8AAAAAAAAAAAAAAAAAAAAAA-0001.jsonl?offset=0", EXPOSURE)["size"],
    ("ab", "manage", "coverage"): lambda s, w: s.ab.get("secret-ab").set_coverage(1.0).coverage,
    ("model", "read", "get"): lambda s, w: s.registry.get("secret-model").number,
    ("model", "read", "load"): lambda s, w: s.load_model("models:/secret-model/1"),
    ("model", "edit", "register"): lambda s, w: s.registry.register("secret-model", w["ids"]["shared-exp"]).number,
    ("model", "manage", "alias"): lambda s, w: s.registry.set_alias("secret-model", "staging", 1).aliases,
    ("feature_view", "read", "online"): lambda s, w: s.features.get_online_features(
        ["secret_view:visits"], [{"customer_id": 1}])["visits"],
    ("feature_view", "read", "get"): lambda s, w: s.features.get("secret_view").name,
    ("feature_view", "manage", "grant"): lambda s, w: _granted(s, "feature_view", "secret_view"),
}


def _granted(store, kind, name):
    """Grant dan read on an object; true when the grant shows (its effect, not its call)."""
    store.access.grant(kind, name, "dan", "read")
    return {"user": "dan", "level": "read", "via": "direct"} in store.access.show(kind, name).to_dict("records")


def _log_a_run(store, world):
    """A run logged into the private experiment, sent as the job's uploader sends it."""
    from mltrail.remote.upload import RunUpload

    run = store.tracking.start_run("secret-exp", log_git=False, log_packages=False, log_system=False)
    run.log_metric("loss", 0.1)
    run.end()
    return RunUpload(store.server, run.path).send()


# calls whose answer leaves out what the user may not read, rather than refusing
HIDING = {
    ("experiment", "read", "history"): lambda s, w: len(s.metric_history([w["ids"]["secret-exp"]])),
    ("experiment", "read", "histograms"): lambda s, w: len(s.histograms([w["ids"]["secret-exp"]])),
    ("experiment", "read", "grouped"): lambda s, w: len(s.grouped_history({w["ids"]["secret-exp"]: "g"}, ["loss"])),
    ("experiment", "read", "listed"): lambda s, w: "secret-exp" in set(s.experiments()["experiment"]),
    ("experiment", "read", "searched"): lambda s, w: "secret-exp-run" in set(
        s.search_runs(filter="metrics.loss < 1")["run_name"]),
    ("experiment", "read", "views listed"): lambda s, w: "secret-view" in s.views.names(),
    ("ab", "read", "listed"): lambda s, w: "secret-ab" in s.ab.keys(),
    ("model", "read", "listed"): lambda s, w: "secret-model" in s.registry.names(),
    ("feature_view", "read", "listed"): lambda s, w: "secret_view" in set(s.features.list()["view"]),
}
CALLS.update({
    ("experiment", "read", "reproduce"): lambda s, w: s.reproduce_script(w["ids"]["secret-exp"]),
    ("experiment", "read", "view"): lambda s, w: s.views.get("secret-view").filter == "metrics.loss < 1",
    ("experiment", "read", "save a view"): lambda s, w: s.views.save(
        f"v{uuid.uuid4().hex[:12]}", experiments=["secret-exp"]).author in ("bob", "cat"),
    ("ab", "read", "fingerprint"): lambda s, w: s.ab.fingerprint("secret-ab"),
    ("model", "read", "versions"): lambda s, w: len(s.registry.versions("secret-model")),
    ("feature_view", "read", "historical"): lambda s, w: len(s.features.get_historical_features(
        pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2026-06-01", tz="UTC")]}),
        ["secret_view:visits"])),
    **HIDING,
})
NAMES = {"experiment": "secret-exp", "ab": "secret-ab", "model": "secret-model", "feature_view": "secret_view"}
CASES = [(call, level, via) for call, level, via in itertools.product(CALLS, LEVELS, VIAS)
         if not (level == "none" and via != "direct")]


def _written(folder):
    """The store's files that a call could write (not the derived cache or the grants)."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")
            if p.is_file() and not p.relative_to(folder).parts[0] in (".cache", ".secrets", "access")}


@pytest.mark.slow
@pytest.mark.parametrize("call,level,via", CASES, ids=[f"{k}-{n}-{a}-as-{lv}-{v}" for (k, n, a), lv, v in CASES])
def test_the_permission_matrix(world, call, level, via):
    kind, needed, _ = call
    name, local = NAMES[kind], world["local"]
    grantee = {"direct": "bob", "group": "team", "revoked": "bob"}[via]
    user = "cat" if via == "group" else "bob"
    if level != "none":
        local.access.grant(kind, name, grantee, level, by="ana")
        if via == "revoked":
            local.access.revoke(kind, name, grantee, by="ana")
    effective = "none" if via == "revoked" else level
    store = client(world, user)
    before = _written(world["folder"])
    try:
        if RANK[effective] >= RANK[needed]:
            assert CALLS[call](store, {**world, "token": world["tokens"][user]})
        elif call in HIDING:  # not refused: left out
            assert not CALLS[call](store, {**world, "token": world["tokens"][user]})
        else:
            expected = mltrail.NotFoundError if effective == "none" else mltrail.PermissionDeniedError
            with pytest.raises(expected) as refused:
                CALLS[call](store, {**world, "token": world["tokens"][user]})
            if expected is mltrail.NotFoundError:  # it names what was asked, and nothing else
                for other in set(NAMES.values()) - {name}:
                    assert other not in str(refused.value)
            assert _written(world["folder"]) == before, "a refused call wrote something"
    finally:
        for principal in ("bob", "team", "dan"):
            if principal in local.access.state().grants.get((kind, name), {}):
                local.access.revoke(kind, name, principal, by="ana")
        store.close(wait=0)


def test_a_user_without_access_learns_no_private_name(world):
    dan = client(world, "dan")
    secret = ["secret-exp", "secret-ab", "secret-model", "secret_view"]

    def says_nothing(frame_or_list):
        assert not any(name in str(frame_or_list) for name in secret), frame_or_list

    says_nothing(dan.search_runs().to_dict())  # shared-exp only
    assert list(dan.search_runs()["experiment"]) == ["shared-exp"]
    assert list(dan.experiments()["experiment"]) == ["shared-exp"]
    says_nothing(dan.search_runs(filter="metrics.loss < 1").to_dict())
    assert set(dan.metric_history()["run_id"]) == {world["ids"]["shared-exp"]}
    says_nothing(dan.ab.keys())
    says_nothing(dan.ab.list().to_dict())
    says_nothing(dan.registry.names())
    says_nothing(dan.registry.list().to_dict())
    says_nothing(dan.features.list().to_dict())
    says_nothing(dan.features.events())
    says_nothing(dan.views.list().to_dict())
    with pytest.raises(mltrail.PermissionDeniedError):  # what it read would count the store's runs
        dan.compact()
    for call in (lambda: dan.get_run("secret-exp-run"), lambda: dan.get_run(world["ids"]["secret-exp"]),
                 lambda: dan.search_runs(experiment="secret-expX"), lambda: dan.ab.get("secret-abX"),
                 lambda: dan.registry.get("Secret-Model"), lambda: dan.access.show("model", "secret-model")):
        with pytest.raises(mltrail.NotFoundError) as refused:
            call()
        says_nothing(str(refused.value).replace("secret-expX", "").replace("secret-abX", "")
                     .replace("Secret-Model", "").replace("'secret-model'", "").replace("secret-exp-run", ""))
    with pytest.raises(mltrail.NotFoundError, match="no experiment 'secret-exp'$"):
        dan.search_runs(experiment="secret-exp")
    with pytest.raises(mltrail.NotFoundError) as refused:
        dan.get_run("nothing-like-it")
    assert str(world["folder"]) not in str(refused.value) and "the store" in str(refused.value)
    dan.close(wait=0)


def test_blobs_are_read_through_what_names_them(world):
    dan, ana = client(world, "dan"), client(world, "ana")
    model = ana.get_run(world["ids"]["secret-exp"])["artifacts"].set_index("path").loc["model.pkl", "sha256"]
    assert dan.blob(model) == ana.blob(model)  # the same file is an artifact of the shared run too
    for sha256 in (world["ids"]["secret_blob"], "0" * 64):  # named only by the private run; named by nothing
        with pytest.raises(mltrail.NotFoundError):
            dan.blob(sha256)
    assert ana.blob(world["ids"]["secret_blob"]) == b"only in the private experiment"
    dan.close(wait=0)
    ana.close(wait=0)


def test_the_creator_manages_and_admins_see_everything(world):
    shown = world["local"].access.show("experiment", "secret-exp")
    assert {"user": "ana", "level": "manage", "via": "direct"} in shown.to_dict("records")
    assert {"user": "root", "level": "manage", "via": "admin"} in shown.to_dict("records")
    history = world["local"].access.history()
    created = history[(history["event"] == "granted") & (history["name"] == "secret-model")].iloc[0]
    assert (created["to"], created["level"], created["by"], created["reason"]) == ("ana", "manage", "ana", "created it")
    root = client(world, "root")
    assert set(root.experiments()["experiment"]) == {"secret-exp", "shared-exp"}
    assert "secret-ab" in root.ab.keys() and "secret-model" in root.registry.names()
    assert root.access.whoami() == {"user": "root", "admin": True, "groups": [], "users": True}
    root.close(wait=0)


def test_an_event_written_for_a_user_names_them_whatever_the_request_says(world):
    ana = client(world, "ana")
    ana.registry.set_alias("secret-model", "candidate", 1, reason="try", by="somebody-else")
    history = world["local"].registry.alias_history("secret-model", "candidate")
    assert list(history["by"]) == ["ana"]
    ana.close(wait=0)


def test_tokens_wrong_missing_rotated_and_removed(world, tmp_path):
    url, local = world["url"], world["local"]
    for token in ("wrong", None, ""):
        with pytest.raises(mltrail.InvalidInputError, match="a valid user token is needed"):
            Server(url, token).call("GET", "/api/v1/experiments", raw=True)
    token = local.access.add_user("eve")
    assert Server(url, token).call("GET", "/api/v1/whoami")["user"] == "eve"
    rotated = local.access.rotate_token("eve")
    with pytest.raises(mltrail.InvalidInputError, match="valid user token"):
        Server(url, token).call("GET", "/api/v1/whoami")
    assert Server(url, rotated).call("GET", "/api/v1/whoami")["user"] == "eve"
    local.access.remove_user("eve")
    with pytest.raises(mltrail.InvalidInputError, match="valid user token"):
        Server(url, rotated).call("GET", "/api/v1/whoami")
    assert "tokens.json" not in " ".join(p.name for p in (world["folder"] / "access").iterdir())
    assert (world["folder"] / ".secrets" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert rotated not in (world["folder"] / ".secrets" / "tokens.json").read_text()


def test_a_job_without_permission_is_told_once_and_keeps_its_lines(world, caplog):
    dan = client(world, "dan")
    with quiet_run(dan, "secret-exp", name="not-allowed") as run:
        run.log_metric("loss", 1.0)
    assert dan.upload() == 1 and dan.upload() == 1  # refused once, not retried, and not on the server
    err = caplog.text  # (warnings of mltrail.remote.store)
    assert err.count("refused") == 1 and "NotFoundError" in err and str(run.path.parent) in err
    assert run.path.exists()
    dan.close(wait=0)


def test_an_admin_token_may_act_as_a_user_and_nobody_else_may(world):
    url, tokens = world["url"], world["tokens"]
    as_dan = mltrail.Store(url, token=tokens["root"], acting_as="dan", spool=world["tmp"] / "spool-as-dan")
    assert as_dan.access.whoami()["user"] == "dan"
    assert list(as_dan.experiments()["experiment"]) == ["shared-exp"]  # dan's view, not root's
    with pytest.raises(mltrail.NotFoundError):
        as_dan.registry.get("secret-model")
    with pytest.raises(mltrail.PermissionDeniedError, match="only an admin's token may act as another user"):
        mltrail.Store(url, token=tokens["bob"], acting_as="ana", spool=world["tmp"] / "s").access.whoami()
    with pytest.raises(mltrail.InvalidInputError, match="no user 'nobody'"):
        mltrail.Store(url, token=tokens["root"], acting_as="nobody", spool=world["tmp"] / "s").access.whoami()
    as_dan.close(wait=0)
