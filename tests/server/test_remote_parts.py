"""The A/B API, the registry, the feature store and run reads through ``mltrail server``
(a real uvicorn in this process): the same calls as a local store, the same answers as
opening the server's folder, the same errors."""

import pickle
import shutil

import pandas as pd
import pytest

import mltrail
from mltrail.remote.ab import SegmentUpload
from mltrail.errors import NotOnServerError
from mltrail.remote.http import Server
from tests.factories import REPO, ab_spec, quiet_run, serving_store, simulate


@pytest.fixture
def central(tmp_path, monkeypatch):
    """A copy of sample_runs served over HTTP: (URL, the folder's own Store)."""
    folder = tmp_path / "sample_runs"  # its feature view names its source from the repository root
    shutil.copytree(REPO / "sample_runs", folder, ignore=shutil.ignore_patterns("*.py", ".mltrail"))
    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))
    with serving_store(folder) as url:
        yield url, mltrail.Store(folder)
        for store in opened:
            store.close(wait=5)


opened = []


def remote_store(url):
    """A client of the test's server, closed (its last lines sent) before the server stops."""
    opened.append(mltrail.Store(url))
    return opened[-1]


@pytest.mark.slow
def test_runs_read_the_same_through_the_server(central):
    url, local = central
    remote = remote_store(url)
    pd.testing.assert_frame_equal(remote.experiments(), local.experiments())
    for run_id in local.search_runs()["run_id"]:
        here, there = local.get_run(run_id), remote.get_run(run_id)
        assert here["run"] == there["run"] and here["tags"] == there["tags"]
        for part in ("params", "metrics", "artifacts", "datasets"):
            pd.testing.assert_frame_equal(here[part], there[part])
    run_id = local.search_runs(filter="attributes.run_name = 'gb-lr0.2'")["run_id"][0]
    assert remote.resolve_run("gb-lr0.2") == run_id == remote.resolve_run(run_id[:10])
    assert remote.artifact_path("gb-lr0.2", "model.pkl").read_bytes() == local.artifact_path(run_id, "model.pkl").read_bytes()
    assert remote.reproduce_script(run_id) == local.reproduce_script(run_id)
    with pytest.raises(mltrail.NotFoundError, match="no artifact 'nope.pkl'"):
        remote.artifact_path(run_id, "nope.pkl")
    with pytest.raises(mltrail.NotFoundError):
        remote.get_run("no-such-run")


@pytest.mark.slow
def test_an_ab_experiment_runs_its_whole_life_through_the_server(central):
    url, local = central
    remote = remote_store(url)
    with pytest.raises(mltrail.InvalidInputError, match="invalid experiment spec") as refused:
        remote.ab.create(ab_spec(key="ranker-v3", mde=-1))
    with pytest.raises(mltrail.InvalidInputError) as same:
        local.ab.create(ab_spec(key="ranker-v3", mde=-1))
    assert str(refused.value) == str(same.value)  # the same check, the same words

    exp = remote.ab.create(ab_spec(key="ranker-v3"), by="ana")
    assert exp.state == "draft" and local.ab.get("ranker-v3").state == "draft"
    with pytest.raises(mltrail.AlreadyExistsError):
        remote.ab.create(ab_spec(key="ranker-v3"))
    exp = exp.start(by="ana", reason="go")
    assert local.ab.get("ranker-v3").state == "running"
    assert [exp.assign(f"u{i}") for i in range(50)] == [local.ab.get("ranker-v3").assign(f"u{i}") for i in range(50)]

    simulate(exp, {"control": 0.10, "treatment": 0.14}, users=3000)
    result = exp.results()  # this process's log is flushed and sent first
    expected = local.ab.get("ranker-v3").results()
    pd.testing.assert_frame_equal(result.table, expected.table)
    pd.testing.assert_frame_equal(result.daily, expected.daily)
    assert result.units == expected.units and sum(result.units.values()) > 2500
    assert result.recommendation == expected.recommendation
    assert remote.ab.fingerprint("ranker-v3") == local.ab.fingerprint("ranker-v3")

    exp = exp.pause(by="ana")
    with pytest.raises(mltrail.WrongStateError, match="not running"):
        exp.log_exposure("late-user", "control")
    exp = exp.set_weights({"control": 0.3, "treatment": 0.7}, reason="ramp up")
    assert exp.phase.number == 2 and local.ab.get("ranker-v3").phase.weights == {"control": 0.3, "treatment": 0.7}
    with pytest.raises(mltrail.InvalidInputError, match="needs a reason"):
        exp.stop("treatment", " ")
    exp = exp.stop("treatment", "it converts better", by="ana")
    assert local.ab.get("ranker-v3").winner == "treatment"
    with pytest.raises(mltrail.WrongStateError, match="is stopped"):
        exp.start()
    assert "ranker-v3" in remote.ab.keys() and remote.ab.exists("ranker-v3") and not remote.ab.exists("nope")
    pd.testing.assert_frame_equal(remote.ab.list(), local.ab.list())
    with pytest.raises(mltrail.NotFoundError, match="no A/B experiment 'nope'"):
        remote.ab.get("nope")


def test_a_lifecycle_change_with_wrong_fields_is_refused_by_the_server(central):
    url, _ = central
    server = Server(url)
    with pytest.raises(mltrail.InvalidInputError, match="cannot set ts"):
        server.call("POST", "/api/v1/ab/churn-offer-timing/lifecycle", b'{"type": "ab_paused", "fields": {"ts": 1}}')
    with pytest.raises(mltrail.InvalidInputError, match="coverage"):
        server.call("POST", "/api/v1/ab/churn-offer-timing/lifecycle",
                    b'{"type": "ab_coverage", "fields": {"coverage": "lots"}}')
    with pytest.raises(mltrail.InvalidInputError, match="type"):
        server.call("POST", "/api/v1/ab/churn-offer-timing/lifecycle", b'{"type": "ab_created", "fields": {}}')


@pytest.mark.slow
def test_log_segments_are_appended_exactly_once(central, tmp_path):
    url, local = central
    remote = remote_store(url)
    exp = remote.ab.get("churn-offer-timing")
    for i in range(200):
        exp.log_exposure(f"seg-{i}", exp.assign(f"seg-{i}") or exp.control)
    exp.log.flush()
    segment = exp.log.segments[0]
    upload = SegmentUpload(Server(url), exp.key, segment)
    assert upload.send() == segment.stat().st_size
    copy = local.ab.log_folder(exp.key) / segment.name
    assert copy.read_bytes() == segment.read_bytes()
    # a resend of everything, and one from an older offset, add nothing
    again = SegmentUpload(Server(url), exp.key, segment)
    again.offset = 0
    again.send()
    assert copy.read_bytes() == segment.read_bytes()
    server = Server(url)
    where = f"/api/v1/ab/{exp.key}/log/{segment.name}"
    with pytest.raises(mltrail.WrongStateError, match=f"holds {segment.stat().st_size} bytes"):
        server.call("POST", f"{where}?offset={segment.stat().st_size + 10}", segment.read_bytes().split(b"\n")[0] + b"\n")
    # a batch with one bad line is refused whole; a torn tail on the server is cut and resent
    good = b'{"v":1,"type":"exposure","ts":1.0,"experiment":"churn-offer-timing","seq":1,"unit":"x","variant":"control","phase":1}\n'
    with pytest.raises(mltrail.InvalidInputError, match="line 2"):
        server.call("POST", f"{where}?offset={copy.stat().st_size}", good + b'{"v":1,"type":"exposure"}\n')
    with pytest.raises(mltrail.InvalidInputError, match="belongs to experiment"):
        server.call("POST", f"{where}?offset={copy.stat().st_size}", good.replace(b"churn-offer-timing", b"other"))
    with pytest.raises(mltrail.InvalidInputError, match="not a log segment"):
        server.call("POST", f"/api/v1/ab/{exp.key}/log/..x.jsonl?offset=0", good)
    with pytest.raises(mltrail.NotFoundError):  # a path is no segment's name: no route takes it
        server.call("POST", f"/api/v1/ab/{exp.key}/log/..%2F..%2Fx.jsonl?offset=0", good)
    assert not list(local.root.glob("**/x.jsonl"))
    size = copy.stat().st_size
    with open(copy, "ab") as handle:
        handle.write(b'{"v":1,"type":"exp')  # a killed server's half line
    assert server.call("GET", where)["size"] == size and copy.stat().st_size == size
    assert server.call("POST", f"{where}?offset={size}", good)["size"] == size + len(good)


@pytest.mark.slow
def test_the_registry_through_the_server(central, tmp_path):
    url, local = central
    remote = remote_store(url)
    pd.testing.assert_frame_equal(remote.registry.list(), local.registry.list())
    pd.testing.assert_frame_equal(remote.registry.versions("churn"), local.registry.versions("churn"))
    pd.testing.assert_frame_equal(remote.registry.alias_history("churn"), local.registry.alias_history("churn"))
    assert remote.registry.get("churn", alias="production") == local.registry.get("churn", alias="production")
    assert type(remote.load_model("models:/churn@production")) is type(local.load_model("models:/churn@production"))

    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with quiet_run(remote, "remote-training", name="remote-fit") as run:
        run.log_metric("auc", 0.91)
        run.log_artifact(str(model_file))
    assert remote.upload() == 0  # the blob and the lines are on the server

    remote.registry.create("remote-model", description="trained elsewhere", by="ana")
    with pytest.raises(mltrail.AlreadyExistsError, match="names are unique ignoring case"):
        remote.registry.create("Remote-Model")
    version = remote.registry.register("remote-model", run.id, by="ana")
    assert version.number == 1 and version.metrics == {"auc": 0.91}
    assert remote.registry.set_alias("remote-model", "staging", 1, reason="try it").aliases == ("staging",)
    assert local.registry.get("remote-model", alias="staging").run == run.id
    assert remote.load_model("models:/remote-model@staging") == {"weights": [1, 2, 3]}
    assert remote.load_model(f"runs:/{run.id}/model.pkl") == {"weights": [1, 2, 3]}
    with pytest.raises(mltrail.WrongStateError, match="holds alias"):
        remote.registry.archive("remote-model", 1)
    remote.registry.delete_alias("remote-model", "staging", reason="done")
    assert remote.registry.archive("remote-model", "v1").archived
    with pytest.raises(mltrail.InvalidInputError, match="reserved"):
        remote.registry.set_alias("remote-model", "latest", 1)
    with pytest.raises(mltrail.NotFoundError, match="did you mean 'churn'"):
        remote.registry.get("CHURN")


@pytest.mark.slow
def test_promoting_an_ab_winner_through_the_server(central):
    url, local = central
    remote = remote_store(url)
    before = local.registry.alias_history("churn", "production")
    version = remote.promote_winner("churn-offer-v2", alias="winner", by="ana")
    history = local.registry.alias_history("churn", "winner")
    assert version.aliases and "winner" in version.aliases and len(history) == 1
    assert history["experiment"][0] == "churn-offer-v2" and history["by"][0] == "ana"
    assert len(local.registry.alias_history("churn", "production")) == len(before)
    with pytest.raises(mltrail.WrongStateError, match="is running"):
        remote.promote_winner("churn-offer-timing")


@pytest.mark.slow
def test_feature_reads_through_the_server(central):
    url, local = central
    remote = remote_store(url)
    pd.testing.assert_frame_equal(remote.features.entities(), local.features.entities())
    pd.testing.assert_frame_equal(remote.features.datasets(), local.features.datasets())
    assert remote.features.get("customer_activity") == local.features.get("customer_activity")
    pd.testing.assert_frame_equal(remote.features.load_dataset("churn_training"),
                                  local.features.load_dataset("churn_training"))
    view = local.features.get("customer_activity")
    names = [f"customer_activity:{name}" for name in view.features]
    training = local.features.load_dataset("churn_training")
    entity_df = training[["customer_id"]].head(50).assign(event_timestamp=pd.Timestamp.now(tz="UTC"))
    pd.testing.assert_frame_equal(remote.features.get_historical_features(entity_df, names),
                                  local.features.get_historical_features(entity_df, names))
    rows = [{"customer_id": c} for c in entity_df["customer_id"].head(5)]
    assert remote.features.get_online_features(names, rows) == local.features.get_online_features(names, rows)
    with pytest.raises(mltrail.InvalidInputError, match="join key"):
        remote.features.get_online_features(names, [{"nobody": 1}])
    with pytest.raises(NotOnServerError, match="on the server's machine"):
        remote.features.materialize()


@pytest.mark.slow
def test_a_training_set_query_that_is_not_arrow_is_refused(central):
    url, _ = central
    with pytest.raises(mltrail.InvalidInputError, match="not an Arrow IPC stream"):
        Server(url).call("POST", "/api/v1/features/historical?features=customer_activity:x", b"not arrow")


@pytest.mark.slow
def test_a_store_closed_and_used_again_sends_again(central):
    url, local = central
    remote = remote_store(url)
    with quiet_run(remote, "again", name="first"):
        pass
    assert remote.close(wait=10) == 0
    with quiet_run(remote, "again", name="second") as run:
        run.log_metric("loss", 0.5)
    assert remote.close(wait=10) == 0
    assert set(local.search_runs(experiment="again")["run_name"]) == {"first", "second"}


def test_what_a_server_store_does_not_offer_is_one_clear_error(central):
    url, _ = central
    remote = remote_store(url)
    with pytest.raises(NotOnServerError, match="run_edits\\(RUN\\)"):
        remote.run_edits()
    with pytest.raises(NotOnServerError, match="on the server's machine"):
        remote.access.add_user("eve")
    with pytest.raises(NotOnServerError, match="engine='spark'"):
        remote.ab.get("churn-offer-v2").results(engine="spark")


@pytest.mark.slow
def test_results_by_a_dimension_through_the_server(central):
    url, local = central
    remote = remote_store(url)
    exp = remote.ab.create(ab_spec(key="dims-remote", mde=0.05)).start()
    for i in range(400):
        exp.log_exposure(f"u{i}", exp.assign(f"u{i}"), attributes={"platform": "ios" if i % 2 else "web"})
    assert exp.dimensions() == ["platform"]  # this process's exposures are sent first
    there = exp.results_by("platform")
    here = local.ab.get("dims-remote").results_by("platform")
    assert list(there.segments) == list(here.segments) == ["ios", "web"]
    pd.testing.assert_frame_equal(there.table, here.table)
    assert there.segments["ios"].units == here.segments["ios"].units

@pytest.mark.slow
def test_curating_runs_through_the_server_writes_the_folder_s_edit_files(central):
    url, local = central
    remote = remote_store(url)
    run_id = remote.resolve_run("gb-lr0.2")
    remote.set_run_name(run_id, "gb-best", by="ana")
    remote.set_run_notes("gb-best", "the one to ship", by="ana")
    remote.set_tag("gb-best", "review", "done", by="bo")
    remote.delete_tag("gb-best", "review", by="bo")
    remote.delete_run("gb-best", by="bo")
    assert "gb-best" not in set(remote.search_runs()["run_name"])
    assert remote.search_runs(view="deleted")["run_id"].tolist() == [run_id]
    remote.restore_run(run_id, by="bo")
    info = local.get_run(run_id)  # the server wrote what a local store writes
    assert (info["run"]["run_name"], info["run"]["description"], info["run"]["deleted"]) == \
        ("gb-best", "the one to ship", False)
    assert remote.run_edits(run_id)["kind"].tolist() == ["tag", "tag", "tag", "untag", "delete", "restore"]
    assert remote.run_edits(run_id)["by"].tolist() == ["ana", "ana", "bo", "bo", "bo", "bo"]
    with pytest.raises(mltrail.InvalidInputError, match="non-empty"):
        remote.set_run_name(run_id, "")
    with pytest.raises(mltrail.WrongStateError, match="not deleted"):
        remote.restore_run(run_id)
    with pytest.raises(NotOnServerError, match="gc"):
        remote.gc()


@pytest.mark.slow
def test_an_mlflow_model_folder_loads_through_the_server(central, tmp_path):
    """Every file of the folder is fetched (each checked), not only the version's own."""
    skops_io = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression

    url, _ = central
    remote = remote_store(url)
    rows = [[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]]
    fitted = LogisticRegression().fit(rows, [0, 0, 1, 1])
    folder = tmp_path / "model"
    folder.mkdir()
    skops_io.dump(fitted, folder / "model.skops")
    (folder / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: model.skops\n"
                                    "    serialization_format: skops\n    skops_trusted_types: null\n")
    with quiet_run(remote, "remote-training", name="mlflow-format") as run:
        run.log_artifact(str(folder), name="model")
    assert remote.upload() == 0
    remote.registry.create("remote-mlflow")
    version = remote.registry.register("remote-mlflow", run.id, "model")
    assert version.artifact == "model/MLmodel" and {f.path for f in version.files} == {"MLmodel", "model.skops"}
    for uri in ("models:/remote-mlflow/1", f"runs:/{run.id}/model"):
        loaded = remote.load_model(uri)
        assert loaded.predict_proba(rows).tolist() == fitted.predict_proba(rows).tolist()
