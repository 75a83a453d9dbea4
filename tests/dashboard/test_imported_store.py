"""The dashboard on a store imported from MLflow: every page renders its runs (MLflow's
tags, a dataset MLflow knew only by digest, NaN and inf points, a run still RUNNING, a
logged model's files) and its registered model (with a version without a run or files, and
one deleted in MLflow), with no exception."""

import math
import pickle

import pytest

import mltrail
from tests.factories import rendered_page
from tests.migration.mlruns import MlrunsBuilder

T0 = 1_700_000_100_000


@pytest.fixture
def imported(tmp_path, monkeypatch):
    builder = MlrunsBuilder(tmp_path / "mlruns")
    builder.experiment("3", "churn", tags={"mlflow.note.content": "from MLflow"})
    builder.run("3", "a" * 32, name="baseline", params={"lr": "0.1", "model/depth": "3"},
                tags={"mlflow.source.git.commit": "abc123", "mlflow.source.name": "train.py"},
                metrics={"loss": [(T0 + s, 1 / (s + 1), s) for s in range(5)],
                         "val/acc": [(T0 + 9, math.nan, 0), (T0 + 10, math.inf, 1)]})
    builder.run("3", "b" * 32, name="live", start_ms=T0 + 100, end_ms=None, status="RUNNING",
                tags={"mlflow.parentRunId": "a" * 32}, metrics={"loss": [(T0 + 101, 0.5, 0)]})
    builder.dataset("3", "a" * 32, "f" * 32, "train", "training", ["x", "y"], 3, "data/train.csv")
    model_id = "m-" + "1" * 32
    builder.logged_model("3", "a" * 32, model_id, "model", {"model.pkl": pickle.dumps({"w": 1}), "MLmodel": b"x: 1\n"})
    builder.model("churn", [{"run_id": "a" * 32, "source": f"models:/{model_id}", "model_id": model_id},
                            {"source": "s3://nowhere/x"},  # no run, no files: kept for its number
                            {"run_id": "a" * 32, "source": f"models:/{model_id}", "deleted": True}],
                  aliases={"prod": 1})
    store = mltrail.Store(tmp_path / "store")
    summary = store.import_mlflow(builder.root)
    assert (summary.runs_new, summary.versions_new, summary.versions_without_files) == (2, 3, 2), summary.text()
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    return store


@pytest.mark.slow
@pytest.mark.parametrize("page", ["runs.py", "compare.py", "live.py", "models.py"])
def test_every_page_renders_an_imported_store(imported, page):
    at = rendered_page(page, selected_runs=list(imported.search_runs()["run_id"]))
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.slow
@pytest.mark.parametrize("run", ["baseline", "live"])
def test_the_run_page_shows_an_imported_run(imported, run):
    at = rendered_page("run.py", run=imported.resolve_run(run))
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(str(m.value) for m in at.markdown)
    assert run in shown


@pytest.mark.slow
def test_the_models_page_shows_why_an_imported_version_has_no_files(imported):
    at = rendered_page("models.py")
    versions = at.dataframe[1].value
    assert list(versions.index) == [1, 2, 3] and versions.loc[1, "artifact"] == "model.pkl"
    assert "s3://nowhere/x" in versions.loc[2, "missing"] and "deleted in MLflow" in versions.loc[3, "missing"]
