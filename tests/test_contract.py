"""One contract for a store, local or remote (:mod:`mltrail.contract`).

Every member of every part's protocol is called on a folder and on a real server of an
equal folder: on the folder it works; on the server it works too, answering the same kind
of value, or it raises the one :class:`NotOnServerError`, which says where to run it. A
member added to a protocol without a call here fails the test, as does a call that
reaches the wrong part. A remote store's spool takes only what its writers put there (a
run's lines and blobs, an A/B log's segments, fetched blobs): no part reads or writes
anything else of it (``store.features.online`` once opened ``<spool>/.cache/features``).
Signatures that hand arguments on are their target's (``Store.start_run`` and the
fluent ``mltrail.start_run``/``log_metric`` are the tracker's and the run's).
"""

from __future__ import annotations

import inspect
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mltrail
from mltrail import contract
from mltrail.errors import NotOnServerError
from mltrail.remote.store import RemoteStore
from mltrail.storage import ab_events
from mltrail.tracking.run import Run
from mltrail.tracking.tracker import Tracker
from tests.factories import REPO, ab_spec, serving_store
from tests.migration.mlruns import MlrunsBuilder

REFUSED = object()  # what a member the server leaves to its own machine answered


@dataclass
class Caller:
    """Calls members of one part of one store, and remembers which and what they answered."""

    part: Any
    remote: bool
    answers: dict[str, Any] = field(default_factory=dict)

    def __call__(self, member: str, call: Callable[[Any], Any]) -> Any:
        if not self.remote:
            self.answers[member] = call(self.part)
            return self.answers[member]
        try:
            self.answers[member] = call(self.part)
        except NotOnServerError as exc:
            assert "server" in str(exc), f"{member}: {exc} does not say where to run it"
            self.answers[member] = REFUSED
        return self.answers[member]


@dataclass
class Context:
    run_id: str  # a sample run with a model artifact
    artifact: str
    sha256: str
    mlruns: Path
    file: Path
    activity: Path  # a feature view's source file
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Context, Path]]:
    """Two equal copies of sample_runs, each with users root (admin) and ana: one opened as a
    folder, one behind a real server (the client signed in as root); and the spool."""
    base = tmp_path_factory.mktemp("contract")
    folders = {}
    for kind in ("local", "served"):
        folder = base / kind / "sample_runs"  # its feature view's source is named from the folder's parent
        shutil.copytree(REPO / "sample_runs", folder, ignore=shutil.ignore_patterns("*.py", ".mltrail"))
        folders[kind] = folder
    local, served = mltrail.Store(folders["local"]), mltrail.Store(folders["served"])
    tokens = {}
    for store in (local, served):
        tokens["root"] = store.access.add_user("root", admin=True)
        store.access.add_user("ana")
    version = local.registry.get("churn", 1)
    mlruns = MlrunsBuilder(base / "mlruns")
    mlruns.experiment("0", "Default")
    mlruns.run("0", "a" * 32, name="imported", metrics={"loss": [(1_700_000_000_000, 0.5, 0)]})
    somefile = base / "notes.txt"
    somefile.write_text("a file to put into the blobs")
    context = Context(version.run, version.artifact, version.sha256, base / "mlruns", somefile,
                      folders["local"] / "data" / "customer_activity.parquet", tokens)
    spool = base / "spool"
    with serving_store(folders["served"]) as url:
        remote = mltrail.Store(url, token=tokens["root"], spool=spool)
        yield {"local": local, "remote": remote}, context, spool
        remote.close(wait=10)


def tracking(c: Caller, ctx: Context) -> None:
    quiet = {"log_git": False, "log_command": False, "log_system": False, "log_packages": False}
    run = c("start_run", lambda s: s.start_run("contract", name="parity", **quiet))
    run.log_metric("loss", 0.5)
    run.log_histogram("weights", [0.1, 0.2, 0.4])
    c("request_stop", lambda s: s.request_stop(run.id, "parity"))
    run.end()
    c("close", lambda s: s.close(wait=10))
    for member in ("root", "crash_after", "ab", "registry", "features", "access", "views", "reports"):
        c(member, lambda s, member=member: getattr(s, member))
    c("search_runs", lambda s: s.search_runs(filter="metrics.loss >= 0"))
    c("metric_history", lambda s: s.metric_history([run.id]))
    c("grouped_history", lambda s: s.grouped_history({run.id: "parity"}, ["loss"], band="minmax"))
    c("histograms", lambda s: s.histograms([run.id]))
    c("experiments", lambda s: s.experiments())
    c("get_run", lambda s: s.get_run(run.id))
    c("resolve_run", lambda s: s.resolve_run("parity"))
    c("set_run_name", lambda s: s.set_run_name(run.id, "parity-2"))
    c("set_run_notes", lambda s: s.set_run_notes(run.id, "both ways"))
    c("set_tag", lambda s: s.set_tag(run.id, "checked", "yes"))
    c("delete_tag", lambda s: s.delete_tag(run.id, "checked"))
    c("delete_run", lambda s: s.delete_run(run.id))
    c("restore_run", lambda s: s.restore_run(run.id))
    c("run_edits", lambda s: s.run_edits(run.id))
    c("gc", lambda s: s.gc(dry_run=True))
    c("import_mlflow", lambda s: s.import_mlflow(ctx.mlruns))
    c("artifact_path", lambda s: s.artifact_path(ctx.run_id, ctx.artifact))
    c("reproduce_script", lambda s: s.reproduce_script(ctx.run_id))
    c("compact", lambda s: s.compact())
    c("refresh", lambda s: s.refresh())
    c("put_file", lambda s: s.put_file(ctx.file))
    c("blob", lambda s: s.blob(ctx.sha256))
    c("load_model", lambda s: s.load_model("models:/churn/1"))
    c("promote_winner", lambda s: s.promote_winner("churn-offer-v2", alias="parity"))


def ab(c: Caller, ctx: Context) -> None:
    exp = c("create", lambda a: a.create(ab_spec(key="parity-ab")))
    c("list", lambda a: a.list())
    c("keys", lambda a: a.keys())
    c("exists", lambda a: a.exists("parity-ab"))
    c("lifecycle", lambda a: a.lifecycle("parity-ab"))
    c("append", lambda a: a.append("parity-ab", ab_events.Started, by="ana", reason="parity"))
    exp = c("get", lambda a: a.get("parity-ab"))
    c("log", lambda a: a.log("parity-ab"))
    for i in range(200):
        exp.log_exposure(f"u{i}", exp.assign(f"u{i}"), attributes={"platform": "ios" if i % 2 else "web"})
        if i % 5 == 0:
            exp.log_feedback(f"u{i}", "conversion", 1.0)
    c("open_log", lambda a: a.open_log("parity-ab"))
    c("log_folder", lambda a: a.log_folder("parity-ab"))
    c("fingerprint", lambda a: a.fingerprint("parity-ab"))
    c("dimensions", lambda a: a.dimensions(exp))
    c("results", lambda a: a.results(exp))
    c("results_by", lambda a: a.results_by(exp, "platform"))
    c("log_tables", lambda a: a.log_tables(exp))


def registry(c: Caller, ctx: Context) -> None:
    c("names", lambda r: r.names())
    c("list", lambda r: r.list())
    c("exists", lambda r: r.exists("churn"))
    c("events", lambda r: r.events("churn"))
    c("get", lambda r: r.get("churn", 1))
    c("versions", lambda r: r.versions("churn"))
    c("alias_history", lambda r: r.alias_history("churn"))
    c("alias_at", lambda r: r.alias_at("churn", "production", time.time()))
    c("create", lambda r: r.create("parity-model"))
    c("register", lambda r: r.register("parity-model", ctx.run_id, ctx.artifact))
    c("set_alias", lambda r: r.set_alias("parity-model", "staging", 1))
    c("delete_alias", lambda r: r.delete_alias("parity-model", "staging"))
    c("archive", lambda r: r.archive("parity-model", 1))
    c("resolve", lambda r: r.resolve("models:/churn/1"))
    c("load", lambda r: r.load("models:/churn/1"))


def views(c: Caller, ctx: Context) -> None:
    c("save", lambda v: v.save("parity-view", experiments=["churn_model_mlops"], filter="metrics.f1 > 0",
                               charts=["f1"]))
    c("names", lambda v: v.names())
    c("all", lambda v: v.all())
    c("list", lambda v: v.list())
    c("exists", lambda v: v.exists("parity-view"))
    c("get", lambda v: v.get("parity-view"))
    c("delete", lambda v: v.delete("parity-view"))


def reports(c: Caller, ctx: Context) -> None:
    c("save", lambda r: r.save("parity-report", "# Parity\n\n```mltrail runs\nlimit: 2\n```\n"))
    c("names", lambda r: r.names())
    c("list", lambda r: r.list())
    c("exists", lambda r: r.exists("parity-report"))
    c("get", lambda r: r.get("parity-report"))
    c("delete", lambda r: r.delete("parity-report"))


def features(c: Caller, ctx: Context) -> None:
    c("events", lambda f: f.events())
    c("list", lambda f: f.list())
    c("entities", lambda f: f.entities())
    c("datasets", lambda f: f.datasets())
    c("exists", lambda f: f.exists("customer_activity"))
    view = c("get", lambda f: f.get("customer_activity"))
    c("apply_entity", lambda f: f.apply_entity("parity", ["parity_id"]))
    c("apply_view", lambda f: f.apply_view("parity_activity", "customer", ctx.activity, view.timestamp_field,
                                           view.features))
    names = [f"customer_activity:{name}" for name in view.features]
    training = c("load_dataset", lambda f: f.load_dataset("churn_training"))
    entity_df = training[["customer_id"]].head(20).assign(event_timestamp=pd.Timestamp.now(tz="UTC"))
    c("get_historical_features", lambda f: f.get_historical_features(entity_df, names))
    c("materialize", lambda f: f.materialize(views=["customer_activity"]))
    c("get_online_features", lambda f: f.get_online_features(names, [{"customer_id": 1}]))
    c("online", lambda f: f.online)
    c("save_dataset", lambda f: f.save_dataset("parity_set", entity_df))


def access(c: Caller, ctx: Context) -> None:
    c("enabled", lambda x: x.enabled())
    c("whoami", lambda x: x.whoami())
    c("my_level", lambda x: x.my_level("model", "churn"))
    c("grant", lambda x: x.grant("model", "churn", "ana", "read"))
    c("show", lambda x: x.show("model", "churn"))
    c("revoke", lambda x: x.revoke("model", "churn", "ana"))
    c("users", lambda x: x.users())
    c("groups", lambda x: x.groups())
    c("history", lambda x: x.history())
    c("add_user", lambda x: x.add_user("bo"))
    token = c("rotate_token", lambda x: x.rotate_token("bo"))
    c("add_members", lambda x: x.add_members("team", ["bo"]))
    c("remove_member", lambda x: x.remove_member("team", "bo"))
    user = c("user", lambda x: x.user("root"))
    c("authenticate", lambda x: x.authenticate(ctx.tokens["root"] if token is REFUSED else token))
    c("level", lambda x: x.level(user, "model", "churn"))
    c("state", lambda x: x.state())
    c("remove_user", lambda x: x.remove_user("bo"))


SCENARIOS = {"store": tracking, "ab": ab, "registry": registry, "features": features, "access": access,
             "views": views, "reports": reports}


def spool_files(spool: Path) -> set[str]:
    return {p.relative_to(spool).as_posix() for p in spool.rglob("*") if p.is_file()}


def written_by_a_writer(path: str) -> bool:
    """A run's lines and stop requests, blobs, an A/B log's segments, the spool's user and .gitignore
    (the tracking writer's), upload and lock files."""
    parts = path.split("/")
    return (parts[0] in ("experiments", "blobs", "blobs-large") or path in ("spool.json", ".gitignore")
            or (parts[0] == "ab" and len(parts) > 2 and parts[2] == "log")
            or parts[:2] == [".cache", "uploads"] or parts[:2] == [".cache", "locks"])


@pytest.mark.slow  # a real server, every call of the store once each way
@pytest.mark.parametrize("part", list(SCENARIOS))
def test_every_call_of_a_part_works_on_a_server_or_says_where_to_run_it(stores, part):
    both, ctx, spool = stores
    callers = {kind: Caller(store if part == "store" else getattr(store, part), kind == "remote")
               for kind, store in both.items()}
    before = spool_files(spool)
    for caller in callers.values():
        SCENARIOS[part](caller, ctx)
    protocol = contract.PARTS[part]
    for kind, caller in callers.items():  # every member called, nothing beside them
        assert set(caller.answers) == contract.members(protocol), kind
    refused = {m for m, answer in callers["remote"].answers.items() if answer is REFUSED}
    for member, answer in callers["remote"].answers.items():
        if member in contract.PARTS:  # a part: its own protocol's members, whichever its class
            assert contract.members(contract.PARTS[member]) <= set(dir(answer)), member
        elif answer is not REFUSED:
            here = callers["local"].answers[member]
            where = (Path, str)  # a folder's root is its path, a server's its URL
            assert isinstance(answer, type(here)) or isinstance(here, type(answer)) or \
                (isinstance(here, where) and isinstance(answer, where)), (member, type(here), type(answer))
    added = spool_files(spool) - before
    assert {path for path in added if not written_by_a_writer(path)} == set(), part
    # what a server leaves to its own machine, as designed (a change here is a decision)
    assert refused == {"store": {"gc", "import_mlflow", "put_file"},
                       "ab": {"log_tables"},
                       "registry": set(),
                       "views": set(),
                       "reports": set(),
                       "features": {"apply_entity", "apply_view", "materialize", "online", "save_dataset"},
                       "access": {"users", "groups", "history", "add_user", "rotate_token", "add_members",
                                  "remove_member", "user", "authenticate", "level", "state",
                                  "remove_user"}}[part]


def _parameters(call: Callable[..., Any], drop_self: bool) -> list[inspect.Parameter]:
    parameters = list(inspect.signature(call).parameters.values())
    return parameters[1:] if drop_self else parameters


def test_calls_that_hand_their_arguments_on_take_their_target_s_parameters():
    tracker = _parameters(Tracker.start_run, drop_self=True)
    assert _parameters(mltrail.Store.start_run, drop_self=True) == tracker
    assert _parameters(RemoteStore.start_run, drop_self=True) == tracker
    assert _parameters(mltrail.start_run, drop_self=False) == tracker
    assert _parameters(mltrail.search_runs, drop_self=False) == _parameters(mltrail.Store.search_runs, drop_self=True)
    for name in ("log_metric", "log_metrics", "log_param", "log_params", "set_tag", "set_tags", "log_artifact",
                 "log_dataset", "log_dict", "log_text", "log_table", "log_image", "log_figure"):
        assert _parameters(getattr(mltrail, name), drop_self=False) == \
            _parameters(getattr(Run, name), drop_self=True), name
    assert "timestamp" in inspect.signature(mltrail.log_metric).parameters  # the one a copy had lost


def test_the_fluent_log_metric_takes_a_timestamp(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_DIR", str(tmp_path / "store"))
    with mltrail.start_run("fluent", log_git=False, log_command=False, log_system=False, log_packages=False) as run:
        mltrail.log_metric("loss", 0.5, step=3, timestamp=1_700_000_000.0)
    history = mltrail.Store(tmp_path / "store").metric_history([run.id])
    assert history["timestamp"].tolist() == [pd.Timestamp(1_700_000_000.0, unit="s", tz="UTC")]
