"""Importing MLflow ``mlruns`` folders written file by file (see :mod:`.mlruns`): every field
lands where mltrail keeps it, importing again adds only what is new, and a bad folder is
reported by path and skipped, never half-imported."""

from __future__ import annotations

import hashlib
import math
import pickle
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

import mltrail
from mltrail.errors import NotFoundError
from mltrail.migration.mlflow_import import mltrail_run_id
from mltrail.migration.mlflow_source import FolderSource, open_source
from tests.factories import quiet_run

from .mlruns import MlrunsBuilder, write_yaml

T0 = 1_700_000_100_000  # ms
MODEL_OBJECT = {"weights": [1, 2, 3]}
MODEL = pickle.dumps(MODEL_OBJECT)
LOGGED = [f"m-{digit * 32}" for digit in "123"]  # MLflow 3's logged model IDs: m- and 32 hex digits


def run_file(store: mltrail.Store, run_id: str) -> Path:
    return store.tracking.run_file(run_id)


def imported_id(store: mltrail.Store, mlflow_run: str) -> str:
    frame = store.search_runs(view="all")
    return frame.loc[frame["tags.mlflow.run_id"] == mlflow_run, "run_id"].item()


@pytest.fixture
def mlruns(tmp_path: Path) -> MlrunsBuilder:
    builder = MlrunsBuilder(tmp_path / "mlruns")
    builder.experiment("0", "Default")
    builder.experiment("17", "churn", tags={"team": "growth", "mlflow.note.content": "churn models"})
    builder.run("17", "a" * 32, name="baseline", params={"lr": "0.1", "model/depth": "3"},
                tags={"stage": "dev", "mlflow.note.content": "the first try", "mlflow.source.git.commit": "abc123",
                      "mlflow.source.name": "train.py"},
                metrics={"loss": [(T0 + 10, 1.0, 0), (T0 + 20, 0.5, 1), (T0 + 30, 0.25, 2)],
                         "val/acc": [(T0 + 40, math.nan, 0), (T0 + 50, math.inf, 1)]},
                artifacts={"model/model.pkl": MODEL, "model/MLmodel": b"flavors: {}\n", "notes.txt": b"hello"})
    builder.run("17", "b" * 32, name="child", start_ms=T0 + 1000, status="FAILED",
                tags={"mlflow.parentRunId": "a" * 32}, metrics={"loss": [(T0 + 1100, 0.9, 0)]})
    builder.run("17", "c" * 32, name="live", start_ms=T0 + 2000, end_ms=None, status="RUNNING",
                metrics={"loss": [(T0 + 2100, 0.8, 0)]})
    builder.run("17", "d" * 32, name="gone", start_ms=T0 + 3000, deleted=True)
    builder.dataset("17", "a" * 32, "f" * 32, "train", "training", ["x", "y"], 3, "data/train.csv")
    return builder


def test_an_mlruns_folder_imports_every_field_where_mltrail_keeps_it(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    summary = store.import_mlflow(mlruns.root)
    assert (summary.runs_new, summary.experiments, summary.points, summary.artifacts) == (3, 1, 7, 3)
    runs = store.search_runs("churn").set_index("tags.mlflow.run_id")
    assert sorted(runs["run_name"]) == ["baseline", "child", "live"]  # the deleted one stays behind
    base = runs.loc["a" * 32]
    assert base["params.lr"] == "0.1" and base["params.model/depth"] == "3"
    assert base["tags.stage"] == "dev" and base["tags.mlflow.experiment_id"] == "17"
    assert base["tags.mlflow.experiment.tag.team"] == "growth"
    assert base["start_time"] == pd.Timestamp(T0, unit="ms", tz="UTC")
    assert base["end_time"] == pd.Timestamp(1_700_000_200_000, unit="ms", tz="UTC")
    assert base["status"] == "FINISHED" and runs.loc["b" * 32, "status"] == "FAILED"
    assert runs.loc["b" * 32, "parent_run_id"] == base["run_id"]  # MLflow's parent, as mltrail's link
    details = store.get_run(base["run_id"])
    assert details["run"]["description"] == "the first try"
    assert details["run"]["experiment_description"] == "churn models"
    assert details["run"]["git_commit"] == "abc123" and details["run"]["user"] == "ana"
    history = store.metric_history([base["run_id"]]).sort_values(["key", "step"])
    loss = history[history["key"] == "loss"]
    assert list(loss["step"]) == [0, 1, 2] and list(loss["value"]) == [1.0, 0.5, 0.25]
    assert list(loss["timestamp"]) == [pd.Timestamp(T0 + d, unit="ms", tz="UTC") for d in (10, 20, 30)]
    acc = history[history["key"] == "val/acc"]["value"].tolist()
    assert math.isnan(acc[0]) and acc[1] == math.inf
    artifacts = details["artifacts"].set_index("path")
    assert artifacts.loc["model/model.pkl", "sha256"] == hashlib.sha256(MODEL).hexdigest()
    assert store.artifact_path(base["run_id"], "notes.txt").read_bytes() == b"hello"
    dataset = details["datasets"].iloc[0]
    assert (dataset["name"], dataset["path"], dataset["rows"], list(dataset["columns"]), dataset["context"]) == (
        "train", "data/train.csv", 3, ["x", "y"], "training")


def test_run_ids_come_from_mlflow_s_so_runs_sort_by_their_start(mlruns: MlrunsBuilder) -> None:
    source = FolderSource(mlruns.root)
    experiment = next(e for e in source.experiments(False) if e.name == "churn")
    runs = {r.id: r for r in source.runs(experiment, False)}
    ids = [mltrail_run_id(runs[k * 32]) for k in "abc"]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert mltrail_run_id(runs["a" * 32]) == mltrail_run_id(runs["a" * 32])


def test_importing_again_changes_nothing_and_reads_as_unchanged(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    store.import_mlflow(mlruns.root)
    files = {p: p.read_bytes() for p in (store.root / "experiments").rglob("*.jsonl")}
    again = store.import_mlflow(mlruns.root)
    assert (again.runs_new, again.runs_updated, again.runs_unchanged, again.points, again.artifacts) == (0, 0, 3, 0, 0)
    assert {p: p.read_bytes() for p in (store.root / "experiments").rglob("*.jsonl")} == files
    assert len(store.search_runs()) == 3


@pytest.mark.slow
def test_points_logged_since_a_finished_run_and_new_runs_are_all_that_is_added(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    store.import_mlflow(mlruns.root)
    live = imported_id(store, "c" * 32)
    before = run_file(store, live).read_bytes()
    mlruns.append_points("17", "c" * 32, "loss", [(T0 + 2200, 0.7, 1), (T0 + 2300, 0.6, 2)])
    mlruns.run("17", "c" * 32, name="live", start_ms=T0 + 2000, end_ms=T0 + 2400, status="KILLED",
               metrics={})  # the job ended since; its meta.yaml says so
    mlruns.run("17", "e" * 32, name="later", start_ms=T0 + 5000, metrics={"loss": [(T0 + 5100, 0.1, 0)]})
    summary = store.import_mlflow(mlruns.root)
    assert (summary.runs_new, summary.runs_updated, summary.runs_unchanged, summary.points) == (1, 1, 2, 3)
    assert run_file(store, live).read_bytes().startswith(before)  # appended, never rewritten
    history = store.metric_history([live])
    assert list(history.sort_values("step")["value"]) == [0.8, 0.7, 0.6]
    info = store.get_run(live)["run"]
    assert info["status"] == "KILLED"
    assert info["end_time"] == pd.Timestamp(T0 + 2400, unit="ms", tz="UTC")
    assert store.import_mlflow(mlruns.root).runs_unchanged == 4
    mlruns.run("17", "c" * 32, name="live", start_ms=T0 + 2000, end_ms=T0 + 9000, status="KILLED", metrics={})
    assert store.import_mlflow(mlruns.root).runs_updated == 1  # resumed in MLflow and killed again, later
    assert store.get_run(live)["run"]["end_time"] == pd.Timestamp(T0 + 9000, unit="ms", tz="UTC")


@pytest.mark.slow
def test_a_repeated_point_is_kept_as_often_as_mlflow_has_it(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    mlruns.run("17", "e" * 32, metrics={"loss": [(T0, 0.5, 0), (T0, 0.5, 0)]})
    store.import_mlflow(mlruns.root, ["churn"])
    mlruns.append_points("17", "e" * 32, "loss", [(T0, 0.5, 0)])
    assert store.import_mlflow(mlruns.root, ["churn"]).points == 1
    assert len(store.metric_history([imported_id(store, "e" * 32)])) == 3


def test_tags_changed_or_removed_in_mlflow_follow_on_the_next_import(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    store.import_mlflow(mlruns.root)
    folder = mlruns.experiments["17"] / ("a" * 32) / "tags"
    (folder / "stage").write_text("prod")
    (folder / "mlflow.source.git.commit").unlink()
    assert store.import_mlflow(mlruns.root).runs_updated == 1
    tags = store.get_run(imported_id(store, "a" * 32))["tags"]
    assert tags["stage"] == "prod" and "mlflow.source.git.commit" not in tags


@pytest.mark.slow
def test_a_run_renamed_in_mlflow_is_renamed_here_and_back(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    store.import_mlflow(mlruns.root)
    run_id = imported_id(store, "a" * 32)
    meta = mlruns.experiments["17"] / ("a" * 32) / "meta.yaml"
    original = meta.read_text()
    meta.write_text(original.replace("run_name: baseline", "run_name: champion"))
    assert store.import_mlflow(mlruns.root).runs_updated == 1
    assert store.get_run(run_id)["run"]["run_name"] == "champion"
    meta.write_text(original)
    store.import_mlflow(mlruns.root)
    assert store.get_run(run_id)["run"]["run_name"] == "baseline"


@pytest.mark.slow
def test_deleted_runs_and_experiments_come_only_when_asked_and_as_deleted(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    mlruns.experiment("18", "old", deleted=True)
    mlruns.run("18", "9" * 32, name="ancient")
    store.import_mlflow(mlruns.root)
    assert set(store.search_runs(view="all")["run_name"]) == {"baseline", "child", "live"}
    summary = store.import_mlflow(mlruns.root, include_deleted=True)
    assert summary.runs_new == 2
    deleted = store.search_runs(view="deleted")
    assert set(deleted["run_name"]) == {"gone"}
    assert "ancient" in set(store.search_runs(view="all")["run_name"])
    assert store.import_mlflow(mlruns.root, include_deleted=True).runs_new == 0  # deleted once, not twice
    assert len(store.run_edits()) == 1


def test_experiments_can_be_chosen_and_an_unknown_one_is_named(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    mlruns.experiment("18", "fraud")
    mlruns.run("18", "9" * 32, name="f1")
    assert store.import_mlflow(mlruns.root, ["fraud"]).runs_new == 1
    assert set(store.search_runs()["experiment"]) == {"fraud"}
    with pytest.raises(NotFoundError, match=r"no experiment 'nope'.*it has: Default, churn, fraud.*nothing was imported"):
        store.import_mlflow(mlruns.root, ["nope", "churn"])
    assert set(store.search_runs()["experiment"]) == {"fraud"}


def test_a_malformed_metric_line_skips_its_run_whole_and_names_the_line(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    bad = mlruns.run("17", "e" * 32, name="bad", params={"p": "1"}, artifacts={"big.bin": b"x" * 100},
                     metrics={"loss": [(T0, 0.5, 0)]})
    with open(bad / "metrics" / "loss", "a") as handle:
        handle.write("17000 not-a-number 1\n")
    summary = store.import_mlflow(mlruns.root)
    assert summary.runs_new == 3
    [skipped] = [s for s in summary.skipped if s.what == "run"]
    assert skipped.where == f"{bad / 'metrics' / 'loss'}:2" and "malformed metric line" in skipped.reason
    assert "bad" not in set(store.search_runs(view="all")["run_name"])
    assert not list((store.root / "experiments").rglob(f"{mltrail_run_id_of(mlruns, 'e' * 32)}*"))
    assert f"skipped run {bad / 'metrics' / 'loss'}:2" in summary.text()


def mltrail_run_id_of(mlruns: MlrunsBuilder, run_id: str) -> str:
    source = FolderSource(mlruns.root)
    experiment = next(e for e in source.experiments(False) if e.name == "churn")
    return next(mltrail_run_id(r) for r in source.runs(experiment, False) if r.id == run_id)


def test_a_run_or_experiment_without_meta_yaml_is_reported_and_the_rest_imported(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    (mlruns.experiments["17"] / ("b" * 32) / "meta.yaml").unlink()
    (mlruns.root / "55").mkdir()
    write_yaml(mlruns.experiments["17"] / ("c" * 32) / "meta.yaml", {"run_id": "c" * 32, "status": "DANCING"})
    summary = store.import_mlflow(mlruns.root)
    assert summary.runs_new == 1
    reasons = {s.where: s.reason for s in summary.skipped}
    assert "missing" in reasons[str(mlruns.experiments["17"] / ("b" * 32) / "meta.yaml")]
    assert "missing" in reasons[str(mlruns.root / "55" / "meta.yaml")]
    assert "not an MLflow run status" in reasons[str(mlruns.experiments["17"] / ("c" * 32) / "meta.yaml")]


def test_old_mlflow_files_metric_lines_without_a_step_and_statuses_as_words(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    folder = mlruns.run("17", "e" * 32, name="v1", status="FINISHED")
    (folder / "metrics" / "loss").write_text(f"{T0} 0.5\n{T0 + 1} 0.25\n")
    meta = (folder / "meta.yaml").read_text().replace("status: 3", "status: FINISHED")
    (folder / "meta.yaml").write_text(meta)
    store.import_mlflow(mlruns.root)
    run_id = imported_id(store, "e" * 32)
    assert list(store.metric_history([run_id])["step"]) == [0, 0]
    assert store.get_run(run_id)["run"]["status"] == "FINISHED"


def test_a_cloned_mlruns_finds_its_artifacts_in_the_run_folder_not_the_old_path(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    mlruns.run("17", "e" * 32, name="moved", artifacts={"a.txt": b"here"},
               artifact_uri="file:///home/someone-else/project/mlruns/17/eeee/artifacts")
    mlruns.run("17", "f" * 32, name="s3", artifact_uri="s3://bucket/17/ffff/artifacts")
    summary = store.import_mlflow(mlruns.root)
    assert store.artifact_path(imported_id(store, "e" * 32), "a.txt").read_bytes() == b"here"
    assert any("s3://bucket/17/ffff/artifacts not copied" in note for note in summary.notes)


def test_registered_models_come_with_versions_aliases_and_lineage(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    mlruns.model("churn-model", [
        {"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model", "tags": {"k": "v"}, "stage": "Production"},
        {"run_id": "a" * 32, "source": f"file://{mlruns.experiments['17']}/{'a' * 32}/artifacts/notes.txt"},
        {"run_id": "d" * 32, "source": f"runs:/{'d' * 32}/model"},  # its run was deleted: not imported
    ], aliases={"champion": 1, "challenger": 3}, tags={"owner": "ana"}, description="the churn model")
    summary = store.import_mlflow(mlruns.root)
    assert (summary.models_new, summary.versions_new, summary.aliases_set) == (1, 3, 2)
    assert summary.versions_without_files == 1 and not [s for s in summary.skipped if "model" in s.what]
    third = store.registry.get("churn-model", alias="challenger")  # kept with its number, without its files
    assert (third.number, third.artifact, third.run) == (3, None, None)
    assert f"its source run {'d' * 32} was not imported" in third.missing
    assert any(f"version 3 imported without its files: its source run {'d' * 32}" in n for n in summary.notes)
    with pytest.raises(NotFoundError, match=f"imported from MLflow without its model files.*runs:/{'d' * 32}/model"):
        store.load_model("models:/churn-model@challenger")
    model = store.registry.list().set_index("model").loc["churn-model"]
    assert model["description"] == "the churn model" and model["tags"] == {"owner": "ana"}
    first = store.registry.get("churn-model", alias="champion")
    assert (first.number, first.artifact, first.run) == (1, "model/model.pkl", imported_id(store, "a" * 32))
    assert first.tags == {"k": "v", "mlflow.version": "1", "mlflow.source": f"runs:/{'a' * 32}/model",
                          "mlflow.current_stage": "Production"}
    assert first.params == {"lr": "0.1", "model/depth": "3"} and first.metrics["loss"] == 0.25
    assert [d["name"] for d in first.datasets] == ["train"]  # the run's datasets, as a version registered here keeps
    assert store.load_model("models:/churn-model@champion") == {"weights": [1, 2, 3]}
    assert store.registry.get("churn-model", 2).artifact == "notes.txt"
    again = store.import_mlflow(mlruns.root)
    assert (again.models_new, again.versions_new, again.aliases_set) == (0, 0, 0)
    assert len(store.registry.versions("churn-model")) == 3


@pytest.mark.slow
def test_mlflow_3_logged_models_come_with_their_id_run_params_tags_metrics_and_files(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    folder = mlruns.logged_model(
        "17", "a" * 32, LOGGED[0], "model", {"model.pkl": MODEL, "MLmodel": b"flavors: {}\n", "env/conda.yaml": b"x"},
        params={"C": "1.0"}, tags={"mlflow.user": "ana", "stage": "dev"}, step=2,
        metrics={"acc": [f"{T0 + 5} 0.9 2 {'a' * 32}", f"{T0 + 6} nan 3 {'a' * 32} train abcd1234"]})
    mlruns.logged_model("17", None, LOGGED[1], "loose", {"model.pkl": pickle.dumps("loose")}, status=3)
    summary = store.import_mlflow(mlruns.root)
    assert summary.logged_models_new == 2, summary.text()
    run_id = imported_id(store, "a" * 32)
    model = store.tracking.logged_models.get(LOGGED[0])
    assert (model.name, model.experiment, model.source_run_id, model.status) == ("model", "churn", run_id, "READY")
    assert model.params == {"C": "1.0"} and model.tags == {"mlflow.user": "ana", "stage": "dev"}
    assert model.outputs_of == {run_id: 2} and model.creation_time == 1_700_000_250
    points = sorted(model.metrics, key=lambda p: p.step)
    assert [(p.key, p.step, p.timestamp, p.run_id, p.dataset_name, p.dataset_digest) for p in points] == [
        ("acc", 2, (T0 + 5) / 1000, run_id, None, None), ("acc", 3, (T0 + 6) / 1000, run_id, "train", "abcd1234")]
    assert points[0].value == 0.9 and math.isnan(points[1].value)
    assert set(model.files) == {"model.pkl", "MLmodel", "env/conda.yaml"}
    assert model.files["model.pkl"].sha256 == hashlib.sha256(MODEL).hexdigest()
    assert store.load_model(f"models:/{LOGGED[0]}") == {"weights": [1, 2, 3]}  # as MLflow 3 reads models:/m-<ID>
    loose = store.tracking.logged_models.get(LOGGED[1])
    assert (loose.source_run_id, loose.status, loose.outputs_of) == (None, "FAILED", {})
    # the run's artifacts are its own, as in MLflow 3: its models are not copied among them
    assert set(store.get_run(run_id)["artifacts"]["path"]) == {"model/model.pkl", "model/MLmodel", "notes.txt"}

    events = sorted(store.root.rglob(f"models/{LOGGED[0]}/*.jsonl"))
    again = store.import_mlflow(mlruns.root)
    assert (again.logged_models_new, again.logged_models_updated) == (0, 0)
    assert sorted(store.root.rglob(f"models/{LOGGED[0]}/*.jsonl")) == events
    (folder / "tags" / "stage").write_text("prod")  # changed in MLflow since: only that comes
    (folder / "tags" / "mlflow.user").unlink()
    with open(folder / "metrics" / "acc", "a") as handle:
        handle.write(f"{T0 + 7} 0.95 4 {'a' * 32}\n")
    third = store.import_mlflow(mlruns.root)
    assert (third.logged_models_new, third.logged_models_updated) == (0, 1)
    model = store.tracking.logged_models.get(LOGGED[0])
    assert model.tags == {"stage": "prod"} and sorted(p.step for p in model.metrics) == [2, 3, 4]
    assert len(list(store.root.rglob(f"models/{LOGGED[0]}/*.jsonl"))) == len(events) + 3  # tags, a tag gone, a point


@pytest.mark.slow
def test_every_version_keeps_its_mlflow_number_with_its_logged_model_or_the_reason_it_has_no_files(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    mlruns.logged_model("17", "a" * 32, LOGGED[0], "model", {"model.pkl": MODEL, "MLmodel": b"flavors: {}\n"})
    mlruns.logged_model("17", "a" * 32, LOGGED[1], "tuned", {"model.pkl": pickle.dumps("tuned")})
    gone = mlruns.logged_model("17", "a" * 32, LOGGED[2], "gone", {"model.pkl": pickle.dumps("gone")})
    shutil.rmtree(gone / "artifacts")  # MLflow keeps the version when its source's files go
    mlruns.model("churn", [
        {"run_id": "a" * 32, "source": f"models:/{LOGGED[0]}", "model_id": LOGGED[0]},
        {"run_id": "a" * 32, "source": f"models:/{LOGGED[1]}"},  # as MLflow's sqlite store: the ID in the source only
        {"run_id": "a" * 32, "source": f"models:/{LOGGED[0]}", "deleted": True},
        {"run_id": "a" * 32, "source": f"models:/{LOGGED[2]}", "model_id": LOGGED[2]},
        {"source": "s3://nowhere/x"},  # MLflow registers a version from any URI, with or without a run
        {"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model"},
    ], aliases={"prod": 2, "old": 4})
    summary = store.import_mlflow(mlruns.root)
    assert (summary.versions_new, summary.versions_without_files) == (6, 3), summary.text()
    versions = store.registry.model("churn").versions
    run_id = imported_id(store, "a" * 32)
    assert [(v.number, v.tags["mlflow.version"]) for v in versions] == [(n, str(n)) for n in range(1, 7)]
    assert [v.model_id for v in versions] == [LOGGED[0], LOGGED[1], None, LOGGED[2], None, None]
    assert [v.run for v in versions] == [run_id, run_id, None, run_id, None, run_id]
    assert [v.artifact for v in versions] == ["model.pkl", "model.pkl", None, None, None, "model/model.pkl"]
    assert [v.deleted for v in versions] == [False, False, True, False, False, False]
    assert {f.path for f in versions[0].files} == {"model.pkl", "MLmodel"}
    assert versions[0].source == f"models:/{LOGGED[0]}" and versions[3].params == {"lr": "0.1", "model/depth": "3"}
    assert "deleted in MLflow" in versions[2].missing
    assert f"models:/{LOGGED[2]}" in versions[3].missing and "has no files" in versions[3].missing
    assert "s3://nowhere/x" in versions[4].missing
    assert store.load_model("models:/churn@prod") == "tuned" and store.load_model("models:/churn/1") == MODEL_OBJECT
    assert store.registry.get("churn", alias="old").number == 4
    for number, source in ((4, f"models:/{LOGGED[2]}"), (5, "s3://nowhere/x")):
        with pytest.raises(NotFoundError, match=f"version {number} of 'churn' was imported from MLflow without its "
                                                f"model files.*{re.escape(source)}"):
            store.load_model(f"models:/churn/{number}")
    assert store.registry.get("churn").number == 6  # latest: the newest live version
    again = store.import_mlflow(mlruns.root)
    assert (again.versions_new, again.aliases_set) == (0, 0)
    assert len(store.registry.model("churn").versions) == 6


def test_versions_registered_in_one_millisecond_or_with_gaps_keep_their_numbers(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    folder = mlruns.model("fast", [{"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/{name}"}
                                   for name in ("notes.txt", "model", "notes.txt", "model", "notes.txt")])
    for number in range(1, 6):  # a script registering in a loop: one creation time for all
        meta = folder / f"version-{number}" / "meta.yaml"
        meta.write_text(meta.read_text().replace(f"creation_timestamp: {1_700_000_300_000 + number}",
                                                 "creation_timestamp: 1700000300000"))
    shutil.rmtree(folder / "version-1")  # as MLflow's client shows a deleted version: a gap
    shutil.rmtree(folder / "version-3")
    summary = store.import_mlflow(mlruns.root)
    versions = store.registry.model("fast").versions
    assert [(v.number, v.artifact, v.deleted) for v in versions] == [
        (1, None, True), (2, "model/model.pkl", False), (3, None, True), (4, "model/model.pkl", False),
        (5, "notes.txt", False)], summary.text()
    assert not any("is version" in note for note in summary.notes)


def test_a_version_registered_in_mltrail_before_mlflow_s_next_one_is_said_to_shift_its_number(
        store: mltrail.Store, mlruns: MlrunsBuilder, tmp_path: Path) -> None:
    versions = [{"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model"}]
    mlruns.model("churn", versions)
    store.import_mlflow(mlruns.root)
    with quiet_run(store, "local", log_system=False, log_command=False) as run:
        (tmp_path / "model.pkl").write_bytes(MODEL)
        run.log_artifact(tmp_path / "model.pkl")
    assert store.registry.register("churn", run.id, "model.pkl").number == 2  # here, after the import
    folder = mlruns.model("churn", versions * 2)  # MLflow's own version 2, registered later there
    meta = folder / "version-2" / "meta.yaml"
    later = int(time.time() * 1000) + 60_000
    meta.write_text(meta.read_text().replace("creation_timestamp: 1700000300002", f"creation_timestamp: {later}"))
    summary = store.import_mlflow(mlruns.root)
    assert summary.versions_new == 1
    assert "version 2 of 'churn' in MLflow is version 3 in mltrail" in " ".join(summary.notes)


def test_an_alias_moved_in_mltrail_after_the_import_stays_where_it_was_put(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    mlruns.model("m", [{"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model"},
                       {"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/notes.txt"}], aliases={"prod": 1})
    store.import_mlflow(mlruns.root)
    store.registry.set_alias("m", "prod", 2, reason="better")
    summary = store.import_mlflow(mlruns.root)
    assert store.registry.get("m", alias="prod").number == 2
    assert any("kept where it is" in note for note in summary.notes)


def test_a_model_name_mltrail_cannot_keep_is_skipped_with_the_reason(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    mlruns.model("churn model", [{"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model"}])
    summary = store.import_mlflow(mlruns.root)
    assert any("is not a folder name mltrail allows" in s.reason for s in summary.skipped)
    assert store.registry.names() == []


def test_an_empty_or_foreign_folder_is_refused_before_anything_is_written(tmp_path: Path, store: mltrail.Store) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(mltrail.InvalidInputError, match="holds no MLflow experiment"):
        store.import_mlflow(tmp_path / "empty")
    with pytest.raises(mltrail.InvalidInputError, match="is not a folder"):
        store.import_mlflow(tmp_path / "nowhere")
    assert not (store.root / "experiments").exists()


def test_a_file_uri_names_the_folder(mlruns: MlrunsBuilder) -> None:
    assert isinstance(open_source(f"file://{mlruns.root}"), FolderSource)


def test_an_experiment_with_no_runs_is_said_to_have_none(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    summary = store.import_mlflow(mlruns.root)
    assert any(s.what == "experiment" and "'Default' has no runs" in s.reason for s in summary.skipped)


def test_progress_is_told_of_each_run(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    seen: list[tuple[int, int]] = []
    store.import_mlflow(mlruns.root, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_the_command_imports_says_what_it_skipped_and_prints_json(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    import json

    from tests.cli.test_runs import invoke

    result = invoke("import", "mlflow", str(mlruns.root), "--experiment", "churn", store=store)
    assert result.exit_code == 0, result.output
    assert "3 new runs, 0 updated, 0 unchanged, in 1 experiments; 7 metric points, 3 artifacts" in result.output
    again = invoke("import", "mlflow", str(mlruns.root), "--include-deleted", "--json", store=store)
    summary = json.loads(again.stdout)
    assert (summary["runs_new"], summary["runs_unchanged"]) == (1, 3)
    assert [s["reason"] for s in summary["skipped"]] == ["'Default' has no runs to import"]
    missing = invoke("import", "mlflow", str(mlruns.root), "-e", "nope", store=store)
    assert missing.exit_code == 1 and "no experiment 'nope'" in missing.output


@pytest.mark.slow
def test_an_import_killed_halfway_then_run_again_gives_what_one_clean_import_gives(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    builder = MlrunsBuilder(tmp_path / "mlruns")
    builder.experiment("3", "big")
    for i in range(200):
        builder.run("3", f"{i:032x}", name=f"r{i}", start_ms=T0 + i, params={f"p{j}": str(j) for j in range(5)},
                    metrics={f"m{k}": [(T0 + i + s, s / 10, s) for s in range(30)] for k in range(3)},
                    artifacts={"a.txt": f"artifact {i}".encode()})
    code = ("import sys, mltrail\n"
            "mltrail.Store(sys.argv[1]).import_mlflow(sys.argv[2], progress=lambda done, total: print(done, flush=True))")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "killed"), str(builder.root)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        if int(line) >= 80:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait()
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    killed = mltrail.Store(tmp_path / "killed")
    assert 80 <= len(list((killed.root / "experiments").rglob("*.jsonl"))) < 200  # it stopped halfway
    summary = killed.import_mlflow(builder.root)
    assert summary.runs_new + summary.runs_unchanged + summary.runs_updated == 200 and not summary.skipped
    clean = mltrail.Store(tmp_path / "clean")
    clean.import_mlflow(builder.root)
    pd.testing.assert_frame_equal(killed.search_runs(), clean.search_runs())
    key = ["run_id", "key", "step"]
    pd.testing.assert_frame_equal(killed.metric_history().sort_values(key).reset_index(drop=True),
                                  clean.metric_history().sort_values(key).reset_index(drop=True))
    assert killed.compact().lines_skipped == 0


def test_against_a_server_the_import_says_where_to_run_it(tmp_path: Path) -> None:
    from mltrail.errors import NotOnServerError

    remote = mltrail.Store("http://127.0.0.1:9", spool=tmp_path / "spool")
    with pytest.raises(NotOnServerError, match="imported where the server's folder is: mltrail --store FOLDER import mlflow"):
        remote.import_mlflow("mlruns")


def test_a_run_with_only_its_meta_yaml_and_nothing_optional_imports(store: mltrail.Store, tmp_path: Path) -> None:
    root = tmp_path / "bare"
    write_yaml(root / "5" / "meta.yaml", {"experiment_id": "5", "name": "bare"})
    write_yaml(root / "5" / ("e" * 32) / "meta.yaml", {"run_id": "e" * 32, "status": 1, "lifecycle_stage": "active"})
    summary = store.import_mlflow(root)
    assert summary.runs_new == 1 and not summary.skipped, summary.text()
    run = store.search_runs("bare").iloc[0]
    assert run["tags.mlflow.run_id"] == "e" * 32 and run["run_name"] == "bare_1"
    assert pd.isna(run["start_time"])  # MLflow had no start time: none here either
    assert store.import_mlflow(root).runs_unchanged == 1


@pytest.mark.slow
def test_imported_runs_sync_to_a_server_like_runs_logged_offline(store: mltrail.Store, mlruns: MlrunsBuilder,
                                                                  tmp_path: Path) -> None:
    from mltrail.server.sync import sync_store
    from tests.factories import serving_store

    store.import_mlflow(mlruns.root)
    with serving_store(tmp_path / "central") as url:
        report = sync_store(store, url)
        assert report.runs_sent == 3 and report.blobs_sent == 3
        central = mltrail.Store(tmp_path / "central")
        key = ["run_id", "key", "step"]
        pd.testing.assert_frame_equal(central.search_runs(), store.search_runs())
        pd.testing.assert_frame_equal(central.metric_history().sort_values(key).reset_index(drop=True),
                                      store.metric_history().sort_values(key).reset_index(drop=True))
        mlruns.append_points("17", "c" * 32, "loss", [(T0 + 2200, 0.7, 1)])
        store.import_mlflow(mlruns.root)
        assert sync_store(store, url).lines_sent == 1  # what the import appended, once


@pytest.mark.slow
def test_importing_again_reads_no_artifact_it_has_seen_and_reads_one_that_changed(
        store: mltrail.Store, mlruns: MlrunsBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrail.migration import mlflow_source
    from mltrail.storage.blobs import BlobStore

    # stat data trusted at once (an import does not trust a file changed in the last RACY_SECONDS:
    # the test's files are new); the change below comes after the mtime granularity
    monkeypatch.setattr(mlflow_source, "RACY_SECONDS", 0.0)
    store.import_mlflow(mlruns.root)
    reads: list[Path] = []
    original = BlobStore.put_file
    monkeypatch.setattr(BlobStore, "put_file", lambda self, source: reads.append(source) or original(self, source))
    assert store.import_mlflow(mlruns.root).runs_unchanged == 3 and reads == []
    notes = mlruns.experiments["17"] / ("a" * 32) / "artifacts" / "notes.txt"
    time.sleep(0.05)
    notes.write_bytes(b"hello again")
    summary = store.import_mlflow(mlruns.root)
    assert reads == [notes] and (summary.runs_updated, summary.artifacts) == (1, 1)
    assert store.import_mlflow(mlruns.root).runs_unchanged == 3 and reads == [notes]
    assert store.artifact_path(imported_id(store, "a" * 32), "notes.txt").read_bytes() == b"hello again"
    monkeypatch.setattr(mlflow_source, "RACY_SECONDS", 2.0)
    notes.write_bytes(b"hello, third")
    reads.clear()
    assert store.import_mlflow(mlruns.root).runs_updated == 1 and notes in reads
    reads.clear()
    assert store.import_mlflow(mlruns.root).runs_unchanged == 3 and notes in reads  # changed just now: not trusted
    monkeypatch.setattr(mlflow_source, "RACY_SECONDS", 0.0)
    (store.root / ".cache" / "mlflow-import" / "stamps.json").unlink()  # derived: lost, every file is read once more
    (store.root / ".cache" / "mlflow-import" / "runs.json").unlink()
    reads.clear()
    assert store.import_mlflow(mlruns.root).runs_unchanged == 3 and len(reads) == 3


def test_names_with_quotes_and_markup_import_as_they_are(store: mltrail.Store, tmp_path: Path) -> None:
    builder = MlrunsBuilder(tmp_path / "odd")
    name = """o'brien "v2" <b>churn</b>"""
    builder.experiment("8", name, tags={"note": "<script>x</script>"})
    builder.run("8", "e" * 32, name="run 'one' <i>", params={"learning rate": "0.1"},
                tags={"q": 'say "hi"'}, metrics={"val loss": [(T0, 0.5, 0)]})
    assert store.import_mlflow(builder.root).runs_new == 1
    run = store.search_runs(name, "params.`learning rate` = '0.1'").iloc[0]
    assert (run["run_name"], run["tags.q"], run["metrics.val loss"]) == ("run 'one' <i>", 'say "hi"', 0.5)
    assert run["tags.mlflow.experiment.tag.note"] == "<script>x</script>"
    assert store.import_mlflow(builder.root).runs_unchanged == 1


# -- a handed-over mlruns folder is read, never trusted ------------------------------------

SECRET = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAsecret\n"


def store_bytes(store: mltrail.Store) -> bytes:
    """Every file the store holds (events, blobs, the compacted cache), concatenated."""
    return b"".join(p.read_bytes() for p in sorted(store.root.rglob("*")) if p.is_file() and not p.is_symlink())


def test_links_and_artifact_uris_out_of_the_folder_are_refused_and_named(
        store: mltrail.Store, mlruns: MlrunsBuilder, tmp_path: Path) -> None:
    home = tmp_path / "home"  # stands in for the importing user's home
    (home / ".ssh").mkdir(parents=True)
    secret = home / ".ssh" / "id_rsa"
    secret.write_bytes(SECRET)
    (home / "loss").write_text(f"{T0} 42.0 0\n")
    (home / "meta.yaml").write_text((mlruns.experiments["17"] / ("a" * 32) / "meta.yaml").read_text())
    planted = mlruns.run("17", "e" * 32, name="planted", params={"lr": "0.1"}, artifacts={"ok.txt": b"fine"},
                         metrics={"acc": [(T0, 0.5, 0)]})
    (planted / "params" / "key").symlink_to(secret)
    (planted / "tags" / "key").symlink_to(secret)
    (planted / "metrics" / "stolen").symlink_to(home / "loss")
    (planted / "artifacts" / "id_rsa").symlink_to(secret)
    (planted / "artifacts" / "ssh").symlink_to(home / ".ssh")  # a folder
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "deep").mkdir(parents=True)
    (elsewhere / "deep" / "id_rsa").write_bytes(SECRET)
    pointed = mlruns.run("17", "f" * 32, name="pointed", artifact_uri=f"file://{elsewhere}",
                         artifacts={"mine.txt": b"its own"})
    model_meta = mlruns.logged_model("17", "f" * 32, LOGGED[0], "model", {"MLmodel": b"flavors: {}\n"}) / "meta.yaml"
    model_meta.write_text(model_meta.read_text().replace(f"{mlruns.experiments['17']}/models/{LOGGED[0]}/artifacts",
                                                         str(elsewhere)))  # MLflow 3's logged model, pointed out
    assert str(elsewhere) in model_meta.read_text()
    linked_meta = mlruns.run("17", "9" * 32, name="linked-meta")
    (linked_meta / "meta.yaml").unlink()
    (linked_meta / "meta.yaml").symlink_to(home / "meta.yaml")
    (mlruns.root / "99").symlink_to(mlruns.experiments["17"], target_is_directory=True)  # inside: read as it is
    (mlruns.root / "98").symlink_to(home, target_is_directory=True)  # outside

    summary = store.import_mlflow(mlruns.root)

    assert SECRET.splitlines()[1] not in store_bytes(store)
    refused = {s.where: s.reason for s in summary.skipped}
    for path in (planted / "params" / "key", planted / "tags" / "key", planted / "metrics" / "stolen",
                 planted / "artifacts" / "id_rsa", planted / "artifacts" / "ssh", linked_meta / "meta.yaml",
                 mlruns.root / "98"):
        assert "outside" in refused[str(path)], (path, refused)
    assert "names a folder outside" in refused[str(elsewhere)]
    assert [s.where for s in summary.skipped].count(str(elsewhere)) == 2  # the run's artifact_uri, the model's
    assert f"skipped file {planted / 'params' / 'key'}" in summary.text()
    # what is inside imports: the planted run without what it linked to, the pointed run from its own folder
    run = store.get_run(imported_id(store, "e" * 32))
    assert set(run["params"]["key"]) == {"lr"} and "key" not in run["tags"]
    assert set(run["metrics"]["key"]) == {"acc"} and list(run["artifacts"]["path"]) == ["ok.txt"]
    assert list(store.get_run(imported_id(store, "f" * 32))["artifacts"]["path"]) == ["mine.txt"]
    assert set(store.tracking.logged_models.get(LOGGED[0]).files) == {"MLmodel"}  # from its own folder
    assert "9" * 32 not in set(store.search_runs(view="all")["tags.mlflow.run_id"])


@pytest.mark.parametrize("field", ["start_time", "end_time"])
def test_a_run_time_in_microseconds_skips_that_run_and_names_it(
        store: mltrail.Store, mlruns: MlrunsBuilder, field: str) -> None:
    bad = mlruns.run("17", "e" * 32, name="micro")
    meta = (bad / "meta.yaml").read_text()
    value = {"start_time": 1_700_000_100_000, "end_time": 1_700_000_200_000}[field]
    (bad / "meta.yaml").write_text(meta.replace(f"{field}: {value}", f"{field}: {value * 1000}"))
    summary = store.import_mlflow(mlruns.root)
    assert summary.runs_new == 3  # every other run
    [skipped] = [s for s in summary.skipped if s.what == "run"]
    assert skipped.where == str(bad / "meta.yaml")
    assert field in skipped.reason and str(value * 1000) in skipped.reason and "microseconds" in skipped.reason


@pytest.mark.parametrize("line", [f"{T0 * 1000} 0.5 0", f"{T0} 0.5 {2**63}", f"{T0} 0.5 {-2**63 - 1}",
                                  f"{2**70} 0.5 0", "-1 0.5 0"])
def test_a_metric_point_out_of_bounds_skips_its_run_and_names_the_line(
        store: mltrail.Store, mlruns: MlrunsBuilder, line: str) -> None:
    bad = mlruns.run("17", "e" * 32, name="bad", metrics={"loss": [(T0, 0.5, 0)]})
    with open(bad / "metrics" / "loss", "a") as handle:
        handle.write(line + "\n")
    summary = store.import_mlflow(mlruns.root)
    assert summary.runs_new == 3
    [skipped] = [s for s in summary.skipped if s.what == "run"]
    assert skipped.where == f"{bad / 'metrics' / 'loss'}:2"


def test_a_model_version_time_out_of_bounds_keeps_only_its_number(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    folder = mlruns.model("churn-model", [{"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model"},
                                          {"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model"},
                                          {"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/notes.txt"}])
    meta = (folder / "version-2" / "meta.yaml").read_text()
    (folder / "version-2" / "meta.yaml").write_text(meta.replace("1700000300002", "1700000300002000"))
    summary = store.import_mlflow(mlruns.root)
    assert (summary.models_new, summary.versions_new, summary.versions_without_files) == (1, 3, 1)
    second = store.registry.get("churn-model", 2)
    assert second.artifact is None and "creation_timestamp" in second.missing
    assert str(folder / "version-2" / "meta.yaml") in second.missing
    assert store.registry.get("churn-model", 3).artifact == "notes.txt"  # still number 3


def test_a_logged_model_that_cannot_be_read_is_named_and_its_version_says_so(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    folder = mlruns.logged_model("17", "a" * 32, LOGGED[0], "model", {"model.pkl": MODEL},
                                 metrics={"acc": [f"{T0} 0.9 0"]})  # MLflow writes the run's ID after the step
    mlruns.model("churn", [{"run_id": "a" * 32, "source": f"models:/{LOGGED[0]}"},
                           {"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model"}])
    summary = store.import_mlflow(mlruns.root)
    [skipped] = [s for s in summary.skipped if s.what == "logged model"]
    assert skipped.where == f"{folder / 'metrics' / 'acc'}:1" and "malformed metric line" in skipped.reason
    first, second = store.registry.model("churn").versions
    assert first.artifact is None and "was not imported" in first.missing and "malformed metric line" in first.missing
    assert (second.number, second.artifact) == (2, "model/model.pkl")
