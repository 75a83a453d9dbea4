"""The model registry on a copy of the sample store's real runs and models."""

import shutil
import subprocess
import sys

import pandas as pd
import pytest

import mltrail
from mltrail.errors import AlreadyExistsError, InvalidInputError, NotFoundError, StoreCorruptError, WrongStateError
from tests.factories import REPO, ab_spec


@pytest.fixture
def sample(tmp_path):
    copy = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", copy, ignore=shutil.ignore_patterns(".cache", "registry"))
    return mltrail.Store(copy)


@pytest.fixture
def churn(sample):
    sample.registry.create("churn", description="who leaves", tags={"team": "growth"})
    return sample.registry


def files(store) -> list[str]:
    root = store.root / "registry"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.jsonl")) if root.exists() else []


def test_register_snapshots_the_run(churn, sample):
    v1 = churn.register("churn", "logreg-C1", "model.pkl", description="baseline", by="ana")
    run = sample.get_run("logreg-C1")
    assert (v1.number, v1.uri, v1.run, v1.artifact) == (1, "models:/churn/1", run["run"]["run_id"], "model.pkl")
    assert v1.sha256 == run["artifacts"].set_index("path").loc["model.pkl", "sha256"]
    assert v1.params["family"] == "logistic" and v1.params["c"] == "1.0"
    assert v1.metrics["val/auc"] == pytest.approx(run["metrics"].set_index("key").loc["val/auc", "value"])
    assert v1.datasets[0]["name"] == "churn" and v1.datasets[0]["rows"] == 2000
    assert (v1.run_name, v1.experiment, v1.by) == ("logreg-C1", "churn_model_mlops", "ana")
    v2 = churn.register("churn", "gb-lr0.2")
    assert v2.number == 2 and churn.get("churn").number == 2  # latest
    table = churn.versions("churn")
    assert list(table["version"]) == [1, 2] and list(table["run_name"]) == ["logreg-C1", "gb-lr0.2"]
    models = churn.list().set_index("model")
    assert models.loc["churn", "versions"] == 2 and models.loc["churn", "description"] == "who leaves"


@pytest.mark.slow
def test_aliases_move_and_keep_their_history(churn):
    for run in ("logreg-C1", "rf-depth8", "gb-lr0.2"):
        churn.register("churn", run)
    churn.set_alias("churn", "production", 1, reason="first deploy", by="ana")
    churn.set_alias("churn", "candidate", "v3")
    before_move = pd.Timestamp.now(tz="UTC")
    moved = churn.set_alias("churn", "production", 2, reason="better auc", by="ben")
    assert moved.number == 2 and moved.aliases == ("production",)
    assert churn.get("churn", alias="production").number == 2
    assert churn.get("churn", 3).aliases == ("candidate",)  # many aliases per version, one version per alias
    churn.set_alias("churn", "production", 2)  # already there: nothing recorded
    history = churn.alias_history("churn", "production")
    assert list(history["from_version"].astype(object).where(history["from_version"].notna(), None)) == [None, 1]
    assert list(history["to_version"]) == [1, 2] and list(history["by"]) == ["ana", "ben"]
    assert list(history["reason"]) == ["first deploy", "better auc"]
    assert churn.alias_at("churn", "production", before_move).number == 1  # "which version last Tuesday"
    assert churn.alias_at("churn", "production", before_move.timestamp()).number == 1  # epoch seconds too
    assert churn.alias_at("churn", "production", "2000-01-01") is None
    churn.delete_alias("churn", "candidate", reason="dropped")
    assert churn.alias_history("churn", "candidate")["action"].tolist() == ["set", "deleted"]
    with pytest.raises(NotFoundError, match="no alias 'candidate'"):
        churn.get("churn", alias="candidate")


def test_latest_skips_archived_versions(churn):
    churn.register("churn", "logreg-C1")
    churn.register("churn", "gb-lr0.2")
    churn.set_alias("churn", "production", 2)
    with pytest.raises(WrongStateError, match="holds alias"):
        churn.archive("churn", 2)
    churn.set_alias("churn", "production", 1)
    assert churn.archive("churn", 2, reason="leaks the label").archived
    assert churn.get("churn").number == 1 and churn.get("churn", alias="latest").number == 1
    with pytest.raises(WrongStateError, match="archived"):
        churn.set_alias("churn", "candidate", 2)
    with pytest.raises(WrongStateError, match="already archived"):
        churn.archive("churn", 2)


@pytest.mark.parametrize("alias,words", [("latest", "reserved"), ("v3", "reserved"), ("V1", "reserved"),
                                         ("prod uction", "letters"), ("", "letters"), ("a/b", "letters")])
def test_bad_aliases_are_refused_and_nothing_is_written(churn, sample, alias, words):
    churn.register("churn", "logreg-C1")
    before = files(sample)
    with pytest.raises(InvalidInputError, match=words):
        churn.set_alias("churn", alias, 1)
    assert files(sample) == before


def test_bad_input_is_a_clear_error_and_nothing_is_written(churn, sample):
    churn.register("churn", "logreg-C1")
    before = files(sample)
    with pytest.raises(NotFoundError, match="no model 'nope'"):
        churn.register("nope", "logreg-C1")
    with pytest.raises(NotFoundError, match="did you mean 'churn'"):
        churn.get("Churn")
    with pytest.raises(NotFoundError):
        churn.register("churn", "no-such-run")
    with pytest.raises(NotFoundError, match="no artifact 'weights.bin'"):
        churn.register("churn", "logreg-C1", "weights.bin")
    with pytest.raises(AlreadyExistsError, match="ignoring case"):
        churn.create("CHURN")
    with pytest.raises(AlreadyExistsError, match="already exists"):
        churn.create("churn")
    with pytest.raises(InvalidInputError, match="model name"):
        churn.create("../escape")
    with pytest.raises(NotFoundError, match="no version 7"):
        churn.set_alias("churn", "production", 7)
    with pytest.raises(InvalidInputError, match="a version is a number"):
        churn.get("churn", "seven")
    path = sample.artifact_path("gb-lr0.2", "model.pkl")
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(StoreCorruptError, match="sha256"):
        churn.register("churn", "gb-lr0.2")
    assert files(sample) == before


def test_uris_resolve_to_verified_files_and_load(churn, sample):
    churn.register("churn", "logreg-C1")
    churn.register("churn", "gb-lr0.2")
    churn.set_alias("churn", "production", 1)
    assert type(mltrail.load_model("models:/churn@production", sample)).__name__ == "LogisticRegression"
    assert type(mltrail.load_model("models:/churn/2", sample)).__name__ == "GradientBoostingClassifier"
    assert type(mltrail.load_model("models:/churn/latest", sample)).__name__ == "GradientBoostingClassifier"
    run_id = sample.resolve_run("rf-depth8")
    assert type(mltrail.load_model(f"runs:/{run_id}/model.pkl", sample)).__name__ == "RandomForestClassifier"
    for bad in ("churn", "models:/churn/x", "models:/", "s3://bucket/model"):
        with pytest.raises(InvalidInputError, match="model URI|must be a number"):
            mltrail.load_model(bad, sample)
    path = sample.artifact_path("logreg-C1", "model.pkl")
    path.write_bytes(b"not the model")
    with pytest.raises(StoreCorruptError, match="no longer matches"):
        mltrail.load_model("models:/churn@production", sample)


@pytest.mark.slow
def test_load_model_on_the_default_store(churn, sample, monkeypatch):
    churn.register("churn", "logreg-C1")
    monkeypatch.setenv("MLTRAIL_DIR", str(sample.root))
    assert hasattr(mltrail.load_model("models:/churn/1"), "predict_proba")


@pytest.mark.slow
def test_two_processes_registering_at_once_get_distinct_versions(churn, sample, tmp_path):
    code = f"""
import mltrail
registry = mltrail.Store({str(sample.root)!r}).registry
for _ in range(15):
    registry.register("churn", "logreg-C1")
"""
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path) for _ in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    table = churn.versions("churn")
    assert list(table["version"]) == list(range(1, 31)) and table["id"].is_unique


@pytest.mark.slow
def test_promote_the_winner_of_an_ab_experiment(churn, sample):
    churn.register("churn", "logreg-C1")
    churn.register("churn", "gb-lr0.2")
    churn.set_alias("churn", "production", 1)
    churn.set_alias("churn", "candidate", 2)
    variants = [{"name": "control", "weight": 0.5, "control": True, "model": "models:/churn@production"},
                {"name": "treatment", "weight": 0.5, "model": "models:/churn@candidate"}]
    exp = sample.ab.create(ab_spec(key="churn-ab", variants=variants, mde=0.05)).start()
    for i in range(400):
        unit = f"u{i}"
        variant = exp.assign(unit)
        exp.log_exposure(unit, variant)
        exp.log_feedback(unit, "conversion", float(i % (3 if variant == "treatment" else 5) == 0))
    with pytest.raises(WrongStateError, match="is running"):
        sample.promote_winner("churn-ab")
    exp.stop("treatment", "treatment converts more", by="ana")
    promoted = sample.promote_winner("churn-ab", by="ana")
    assert promoted.number == 2 and "production" in promoted.aliases
    last = churn.alias_history("churn", "production").iloc[-1]
    assert (last["from_version"], last["to_version"], last["experiment"]) == (1, 2, "churn-ab")
    assert "won A/B experiment churn-ab" in last["reason"]


@pytest.mark.slow
def test_promotion_is_refused_without_a_winner_or_with_an_srm_alarm(churn, sample):
    churn.register("churn", "logreg-C1")
    churn.register("churn", "gb-lr0.2")
    churn.set_alias("churn", "candidate", 2)
    variants = [{"name": "control", "weight": 0.5, "control": True, "url": "http://control"},
                {"name": "treatment", "weight": 0.5, "model": "models:/churn@candidate"}]
    exp = sample.ab.create(ab_spec(key="skewed", variants=variants, mde=0.05)).start()
    for i in range(600):  # half the control's units never logged: a sample-ratio mismatch
        unit = f"u{i}"
        variant = exp.assign(unit)
        if variant == "treatment" or i % 2:
            exp.log_exposure(unit, variant)
    sample.ab.create(ab_spec(key="no-winner", variants=variants, mde=0.05)).start().stop(None, "inconclusive")
    with pytest.raises(WrongStateError, match="without a winner"):
        sample.promote_winner("no-winner")
    exp.stop("treatment", "looks better")
    with pytest.raises(WrongStateError, match="sample-ratio mismatch"):
        sample.promote_winner("skewed")
    assert "production" not in churn.get("churn", 2).aliases
    forced = sample.promote_winner("skewed", force=True)
    assert forced.aliases == ("candidate", "production")
    promotion = churn.alias_history("churn", "production").iloc[-1]
    assert promotion["experiment"] == "skewed"


def test_a_control_with_a_url_cannot_be_promoted(churn, sample):
    variants = [{"name": "control", "weight": 0.5, "control": True, "url": "http://control"},
                {"name": "treatment", "weight": 0.5, "url": "http://treatment"}]
    sample.ab.create(ab_spec(key="urls", variants=variants, mde=0.05)).start().stop("treatment", "better")
    with pytest.raises(InvalidInputError, match="not a registered model"):
        sample.promote_winner("urls")


@pytest.mark.slow
def test_the_models_commands(sample):
    from click.testing import CliRunner

    from mltrail.cli import main

    def run(*args):
        result = CliRunner().invoke(main, [*args, "--store", str(sample.root)], catch_exceptions=False)
        return result.exit_code, result.output

    assert run("models", "register", "churn", "--run", "logreg-C1")[0] == 1  # no such model yet
    code, out = run("models", "register", "churn", "--run", "logreg-C1", "--create", "--tag", "team=growth")
    assert code == 0 and "churn v1" in out and "models:/churn/1" in out
    assert run("models", "register", "churn", "--run", "gb-lr0.2")[0] == 0
    assert "churn@production -> v1" in run("models", "alias", "churn", "production", "1", "--reason", "first")[1]
    assert "(was v1)" in run("models", "alias", "churn", "production", "v2", "--reason", "auc")[1]
    code, out = run("models")
    assert code == 0 and "production=v2" in out
    code, out = run("models", "show", "churn")
    assert "logreg-C1" in out and "gb-lr0.2" in out and "val/auc" in out
    code, out = run("models", "history", "churn", "production")
    assert "v1" in out and "v2" in out and "auc" in out
    code, out = run("models", "alias", "churn", "latest", "1")
    assert code == 1 and "reserved" in out
    code, out = run("models", "archive", "churn", "1")
    assert code == 0 and sample.registry.get("churn", 1).archived


def test_tags_and_descriptions_set_later_are_events_the_replay_applies(churn, sample):
    churn.register("churn", "logreg-C1", tags={"stage": "dev"})
    churn.set_tag("churn", "owner", "ana")
    churn.delete_tag("churn", "team")
    churn.describe("churn", "who churns")
    churn.set_tag("churn", "stage", "prod", version=1)
    churn.describe("churn", "the baseline", version=1)
    model = churn.model("churn")
    assert (model.tags, model.description) == ({"owner": "ana"}, "who churns")
    assert (model.versions[0].tags, model.versions[0].description) == ({"stage": "prod"}, "the baseline")
    assert model.updated >= model.versions[0].updated > model.versions[0].created
    assert churn.list().set_index("model").loc["churn", "description"] == "who churns"
    with pytest.raises(NotFoundError, match="has no tag 'nope'"):
        churn.delete_tag("churn", "nope", version=1)
    with pytest.raises(NotFoundError, match="no version 2"):
        churn.set_tag("churn", "k", "v", version=2)


def test_a_deleted_version_keeps_its_number_and_history_and_loses_its_aliases(churn, sample):
    churn.register("churn", "logreg-C1")
    churn.register("churn", "gb-lr0.2")
    churn.set_alias("churn", "production", 2)
    churn.delete_version("churn", 2, "deleted through MLflow's API")
    gone = churn.get("churn", 2)
    assert (gone.deleted, gone.archived, gone.aliases) == (True, True, ())
    assert churn.get("churn").number == 1  # latest skips it
    assert list(churn.alias_history("churn")["action"]) == ["set", "deleted"]
    assert churn.register("churn", "rf-depth8").number == 3
    with pytest.raises(NotFoundError, match="version 2 of 'churn' was deleted"):
        churn.delete_version("churn", 2)


def test_a_model_folder_is_registered_with_its_files_and_loads_its_pickle(churn, sample):
    run = sample.get_run("logreg-C1")
    folder = churn.run_folder(run["run"]["run_id"], "")
    version = churn.register_files("churn", run["run"]["run_id"], folder, source="runs:/x/", by="ana")
    assert version.artifact == "model.pkl" and version.source == "runs:/x/"
    assert {f.path for f in version.files} == set(run["artifacts"]["path"])
    assert type(sample.load_model("models:/churn/1")).__name__ == type(sample.load_model(
        f"runs:/{run['run']['run_id']}/model.pkl")).__name__
    with pytest.raises(NotFoundError, match="no artifacts under 'nope'"):
        churn.run_folder(run["run"]["run_id"], "nope")


def test_a_version_file_without_the_new_fields_reads_as_before(churn, sample):
    churn.register("churn", "logreg-C1")
    line = next(p.read_text() for p in (sample.root / "registry" / "churn").glob("*.jsonl")
                if "version_registered" in p.read_text())
    assert '"source"' not in line and '"files"' not in line and '"model_id"' not in line
    assert churn.get("churn", 1).files == ()


def test_a_version_names_its_files_or_says_why_it_has_none():
    from pydantic import ValidationError

    from mltrail.storage.ids import new_id
    from mltrail.storage.registry_events import VersionRegistered

    envelope = {"ts": 1.0, "id": new_id(), "model": "churn"}
    with pytest.raises(ValidationError, match="says why it has none"):
        VersionRegistered(**envelope, run="r", experiment="e", artifact="model.pkl")  # no sha256, no size
    with pytest.raises(ValidationError, match="names no artifact"):
        VersionRegistered(**envelope, artifact="model.pkl", sha256="0" * 64, size=1, missing="gone")
    without = VersionRegistered(**envelope, missing="its source s3://x is elsewhere", source="s3://x")
    assert (without.run, without.artifact, without.sha256) == (None, None, None)


def test_a_version_without_files_is_listed_and_loading_it_says_why(churn, sample):
    from mltrail.storage.eventfiles import write_event_file
    from mltrail.storage.ids import new_id
    from mltrail.storage.registry_events import VersionRegistered

    churn.register("churn", "logreg-C1", "model.pkl")
    version_id = new_id()  # as `mltrail import mlflow` writes one whose source it could not bring
    write_event_file(churn.root / "churn", version_id, VersionRegistered(
        ts=2.0, id=version_id, model="churn", source="s3://nowhere/x", missing="its source s3://nowhere/x is elsewhere"))
    frame = churn.versions("churn")
    assert list(frame["version"]) == [1, 2] and frame["missing"].isna().tolist() == [True, False]
    assert frame["artifact"].isna().tolist() == [False, True] and frame["run"].isna().tolist() == [False, True]
    assert churn.get("churn").number == 2 and churn.list().set_index("model").loc["churn", "latest"] == 2
    with pytest.raises(NotFoundError, match="version 2 of 'churn' was imported from MLflow without its model files, "
                                            "so it cannot be loaded: its source s3://nowhere/x is elsewhere"):
        sample.load_model("models:/churn/2")
    assert sample.load_model("models:/churn/1") is not None
