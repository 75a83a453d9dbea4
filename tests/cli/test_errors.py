"""Mistakes get one clear line and exit 1, naming what to do: never a silent success,
never a raw traceback."""

import pickle

import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from tests.factories import quiet_run, sparse_store


@pytest.fixture
def sparse(tmp_path):
    return sparse_store(tmp_path / "sparse")


def invoke(store, *args):
    return CliRunner().invoke(main, [*args, "--store", str(store.root)])


def test_an_unknown_experiment_is_an_error_naming_the_known_ones(sparse):
    result = invoke(sparse, "runs", "-e", "nope")
    assert result.exit_code == 1
    assert "no experiment 'nope'" in result.output and "'bare', 'described'" in result.output


@pytest.mark.slow
def test_registering_into_a_missing_model_hints_at_create(sparse):
    result = invoke(sparse, "models", "register", "churn", "--run", "full")
    assert result.exit_code == 1 and "--create" in result.output and "Traceback" not in result.output
    created = invoke(sparse, "models", "register", "churn", "--run", "full", "--create")
    assert created.exit_code == 0 and "churn v1" in created.output


@pytest.mark.slow
def test_a_file_that_is_no_model_is_refused_at_register_and_explained_at_load(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    (tmp_path / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}))
    with quiet_run(store, "e", name="r") as run:
        run.log_artifact(str(tmp_path / "plot.png"))
        run.log_artifact(str(tmp_path / "model.pkl"))
    store.registry.create("m")
    result = invoke(store, "models", "register", "m", "--run", "r", "--artifact", "plot.png")
    assert result.exit_code == 1 and "not a pickled model" in result.output
    assert store.registry.versions("m").empty  # nothing was registered
    with pytest.raises(mltrail.InvalidInputError, match="not a pickled model"):
        store.load_model("runs:/r/plot.png")
    assert store.load_model("runs:/r/model.pkl") == {"weights": [1, 2]}


def test_an_empty_model_uri_is_refused_as_no_model_uri(sparse):
    # `uri or runs:/...` took the empty --model for a missing one and resolved --run None:
    # a TypeError's traceback
    result = invoke(sparse, "serve", "model", "--model", "")
    assert result.exit_code == 1 and "is not a model URI" in result.output, result.output
    assert isinstance(result.exception, SystemExit)  # (not a TypeError out of the command)


def test_an_unknown_phase_is_an_error(sparse):
    result = invoke(sparse, "ab", "results", "idle", "--phase", "3")
    assert result.exit_code == 1 and "no phase 3" in result.output and "1 to 1" in result.output


@pytest.mark.parametrize("group,words", [
    ("ab", ["create", "start", "pause", "stop", "weights", "results", "mltrail serve router"]),
    ("serve", ["router", "model"]),
])
def test_group_help_describes_the_commands_there_are(group, words):
    help_text = " ".join(CliRunner().invoke(main, [group, "--help"]).output.split())
    for word in words:
        assert word in help_text, word
    assert "next, lifecycle" not in help_text  # the old "(and, next, lifecycle and results)"


def test_router_help_names_its_real_routes():
    help_text = " ".join(CliRunner().invoke(main, ["serve", "router", "--help"]).output.split())
    assert "/experiments/KEY/predict" in help_text and "MLTRAIL_ADMIN_TOKEN" in help_text


@pytest.fixture
def imported_without_files(tmp_path):
    """A store imported from MLflow whose model has a version without a run or files
    (MLflow registered it from s3://) and one deleted there."""
    from tests.migration.mlruns import MlrunsBuilder

    builder = MlrunsBuilder(tmp_path / "mlruns")
    builder.experiment("1", "churn")
    builder.run("1", "a" * 32, name="fit", artifacts={"model/model.pkl": pickle.dumps({"w": 1})})
    builder.model("churn", [{"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model"}, {"source": "s3://nowhere/x"},
                            {"run_id": "a" * 32, "source": f"runs:/{'a' * 32}/model", "deleted": True}])
    store = mltrail.Store(tmp_path / "store")
    assert store.import_mlflow(builder.root).versions_without_files == 2
    return store


def test_models_show_says_why_an_imported_version_has_no_files(imported_without_files):
    result = invoke(imported_without_files, "models", "show", "churn")
    assert result.exit_code == 0, result.output
    assert "(no files)" in result.output and "v2 has no files: its source s3://nowhere/x" in result.output
    assert "v3 has no files: deleted in MLflow" in result.output


def test_serving_a_version_without_files_is_one_line_naming_its_source(imported_without_files):
    result = invoke(imported_without_files, "serve", "model", "--model", "models:/churn/2")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "version 2 of 'churn' was imported from MLflow without its model files" in result.output
    assert "s3://nowhere/x" in result.output
