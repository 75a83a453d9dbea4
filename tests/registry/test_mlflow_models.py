"""MLflow model folders in a store load and predict as MLflow's own loaded models do: saved
by MLflow itself (each scikit-learn serialization, XGBoost, LightGBM, a PythonModel), kept
as a run's artifacts and as registered versions, loaded with MLflow importable and with
it hidden; skops' untrusted types are refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import mltrail
from mltrail.registry.mlflow_models import mlflow_folder
from tests.factories import quiet_run
from tests.registry.mlflow_saved import assert_same_predictions, load_with_mltrail, run_python, save_models

pytest.importorskip("mlflow")
pytest.importorskip("skops")

NATIVE = {"sklearn-skops": "sklearn.linear_model._logistic.LogisticRegression",
          "sklearn-pickle": "sklearn.linear_model._logistic.LogisticRegression",
          "sklearn-cloudpickle": "sklearn.linear_model._logistic.LogisticRegression",
          "sklearn-sgd": "sklearn.linear_model._stochastic_gradient.SGDClassifier",
          "sklearn-trusted": "sklearn.pipeline.Pipeline",
          "sklearn-code": "sklearn.pipeline.Pipeline",
          "xgboost-classifier": "xgboost.sklearn.XGBClassifier",
          "xgboost-booster": "xgboost.core.Booster",
          "lightgbm-booster": "lightgbm.basic.Booster",
          "lightgbm-classifier": "lightgbm.sklearn.LGBMClassifier"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The models MLflow saved (one folder each) and what MLflow's loaded models predict."""
    folder = tmp_path_factory.mktemp("mlflow") / "models"
    return folder, save_models(folder)


def needs_skops(expected: dict[str, Any]) -> None:
    if "sklearn-skops" not in expected["models"]:
        pytest.skip(f"MLflow {expected['mlflow']} does not save with skops")


@pytest.fixture
def logged(saved: tuple[Path, dict[str, Any]], store: mltrail.Store) -> tuple[mltrail.Store, str]:
    """Each saved model logged as a folder of one run's artifacts, and registered (the
    folder as a version of the model of its name)."""
    folder, expected = saved
    with quiet_run(store, "mlflow-models", name="saved") as run:
        for name in expected["models"]:
            run.log_artifact(folder / name, name=name)
    for name in expected["models"]:
        store.registry.create(name)
        store.registry.register(name, run.id, name)
    return store, run.id


def uris(run_id: str, names: list[str]) -> dict[str, str]:
    """Each model by a runs:/ URI of its folder and by its registered version."""
    return {**{f"runs:/{run_id}/{n}": n for n in names}, **{f"models:/{n}/1": n for n in names}}


@pytest.mark.slow
@pytest.mark.parametrize("hide_mlflow", [False, True], ids=["with-mlflow", "without-mlflow"])
def test_mlflow_models_load_and_predict_as_mlflow_s_own(saved, logged, tmp_path, hide_mlflow):
    folder, expected = saved
    store, run_id = logged
    asked = uris(run_id, list(expected["models"]))
    done = load_with_mltrail(store.root, folder / "expected.json", list(asked), home=tmp_path / "home",
                             hide_mlflow=hide_mlflow)
    assert done["mlflow_imported"] is not hide_mlflow  # (hidden means never imported)
    for uri, name in asked.items():
        answer = done["answers"][uri]
        if name in ("pyfunc", "sklearn-code") and hide_mlflow:  # a PythonModel is MLflow's own format, and
            # MLflow puts a model's code folder on the import path: these need MLflow
            assert "needs MLflow here" in answer["error"] and "pip install mlflow-skinny" in answer["error"]
            continue
        assert_same_predictions(answer, expected["models"][name], uri)
        # the library's own model, whether MLflow is there or not; MLflow's pyfunc model for the rest
        assert answer["type"] == NATIVE.get(name, "mlflow.pyfunc.PyFuncModel"), uri
        assert answer["type"] == expected["models"][name]["type"], uri  # what mlflow.<flavor>.load_model returns


@pytest.mark.slow
def test_a_version_of_an_mlflow_model_keeps_every_file_and_loads_in_process(saved, logged):
    folder, expected = saved
    needs_skops(expected)
    store, run_id = logged
    version = store.registry.get("sklearn-skops", 1)
    assert {f.path for f in version.files} == {p.relative_to(folder / "sklearn-skops").as_posix()
                                               for p in (folder / "sklearn-skops").rglob("*") if p.is_file()}
    assert version.artifact == "sklearn-skops/MLmodel" and version.source == f"runs:/{run_id}/sklearn-skops"
    sample = pd.DataFrame(**expected["sample"])
    for uri in ("models:/sklearn-skops/1", f"runs:/{run_id}/sklearn-skops", f"runs:/{run_id}/sklearn-skops/MLmodel",
                f"runs:/{run_id}/sklearn-skops/model.skops"):  # the folder, its MLmodel, its model file
        model = store.load_model(uri)
        np.testing.assert_allclose(model.predict_proba(sample)[:, 1], expected["models"]["sklearn-skops"]["proba"])


@pytest.mark.slow
def test_skops_types_no_one_trusted_are_refused_by_name_until_trusted(saved, store, tmp_path, monkeypatch):
    folder, expected = saved
    needs_skops(expected)
    model = tmp_path / "untrusted"
    shutil.copytree(folder / "sklearn-trusted", model)
    spec = yaml.safe_load((model / "MLmodel").read_text())
    assert spec["flavors"]["sklearn"].pop("skops_trusted_types") == ["_operator.neg"]
    (model / "MLmodel").write_text(yaml.safe_dump(spec))  # as a model whose author trusted nothing more
    with quiet_run(store, "mlflow-models", name="untrusted") as run:
        run.log_artifact(model, name="model")
        run.log_artifact(folder / "sklearn-trusted", name="trusted")

    with pytest.raises(mltrail.UntrustedTypesError) as refused:
        store.load_model(f"runs:/{run.id}/model")
    assert refused.value.types == ["_operator.neg"]
    assert "MLTRAIL_SKOPS_TRUSTED_TYPES=_operator.neg" in str(refused.value)

    sample = pd.DataFrame(**expected["sample"])
    wanted = expected["models"]["sklearn-trusted"]["proba"]
    # the model's own list is read as MLflow reads it
    np.testing.assert_allclose(store.load_model(f"runs:/{run.id}/trusted").predict_proba(sample)[:, 1], wanted)
    monkeypatch.setenv("MLTRAIL_SKOPS_TRUSTED_TYPES", "numpy.float64, _operator.neg")
    np.testing.assert_allclose(store.load_model(f"runs:/{run.id}/model").predict_proba(sample)[:, 1], wanted)


@pytest.mark.slow
def test_an_mlflow_model_s_files_are_each_verified(saved, logged):
    store, run_id = logged
    path = store.artifact_path(run_id, "lightgbm-booster/model.lgb")
    path.write_bytes(path.read_bytes().replace(b"tree", b"TREE", 1))
    for uri in (f"runs:/{run_id}/lightgbm-booster", "models:/lightgbm-booster/1"):
        with pytest.raises(mltrail.StoreCorruptError, match="model.lgb.*sha256"):
            store.load_model(uri)


@pytest.mark.slow
def test_an_mlmodel_that_names_what_it_lacks_is_explained(store, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text(yaml.safe_dump({"flavors": {"xgboost": {"data": "model.ubj",
                                                                           "model_class": "os.system"}}}))
    (model / "model.ubj").write_bytes(b"{}")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "MLmodel").write_text(yaml.safe_dump({"flavors": {"onnx": {"data": "model.onnx"}}}))
    with quiet_run(store, "mlflow-models", name="odd") as run:
        run.log_artifact(model, name="model")
        run.log_artifact(tmp_path / "other", name="other")
    with pytest.raises(mltrail.InvalidInputError, match="model_class 'os.system', which is no class of xgboost"):
        store.load_model(f"runs:/{run.id}/model")
    with pytest.raises(mltrail.InvalidInputError, match="flavors onnx, none of which loads here"):
        store.load_model(f"runs:/{run.id}/other")
    with pytest.raises(mltrail.NotFoundError, match="has no artifact 'nope'"):
        store.load_model(f"runs:/{run.id}/nope")


def test_the_folder_of_an_mlflow_model_among_a_run_s_artifacts():
    paths = {"model/MLmodel", "model/model.pkl", "model/data/x.bin", "plot.png", "MLmodel"}
    assert mlflow_folder("model", paths) == "model"
    assert mlflow_folder("model/", paths) == "model"
    assert mlflow_folder("model/model.pkl", paths) == "model"
    assert mlflow_folder("model/MLmodel", paths) == "model"
    assert mlflow_folder("model/data/x.bin", paths) is None  # a file inside is not the model
    assert mlflow_folder("plot.png", paths) == ""  # beside the run's own MLmodel
    assert mlflow_folder("plot.png", paths - {"MLmodel"}) is None
    assert mlflow_folder("nope", paths) is None


IMPORTED = """
import json, sys
import mlflow, mlflow.sklearn, numpy as np, pandas as pd
from sklearn.linear_model import SGDClassifier
mlflow.set_tracking_uri("file:" + sys.argv[1])
rng = np.random.default_rng(1)
X = pd.DataFrame(rng.normal(size=(60, 4)), columns=["acidity", "sugar", "sulphates", "alcohol"])
y = (X["alcohol"] - X["acidity"] > 0).astype(int)
mlflow.sklearn.save_model(SGDClassifier(loss="log_loss", random_state=0).fit(X, y), sys.argv[2],
                          pip_requirements=[])  # MLflow's default serialization (skops since 3.x)
with mlflow.start_run() as run:
    mlflow.log_artifacts(sys.argv[2], "model")
mlflow.register_model(f"runs:/{run.info.run_id}/model", "wine-sgd")
loaded = mlflow.sklearn.load_model("models:/wine-sgd/1")
print(json.dumps({"sample": X.iloc[:10].to_dict(orient="split"),
                  "proba": loaded.predict_proba(X.iloc[:10])[:, 1].tolist()}))
"""


@pytest.mark.slow
def test_a_version_imported_from_mlflow_loads_as_mlflow_loads_it(store, tmp_path):
    """The issue's case: ``load_model("models:/wine-sgd/1")`` of a version imported from an
    mlruns folder answered "not a pickled model" (its file is the folder's MLmodel)."""
    out = run_python(IMPORTED, str(tmp_path / "mlruns"), str(tmp_path / "saved"), home=tmp_path / "home")
    expected = json.loads(out.strip().splitlines()[-1])
    store.import_mlflow(tmp_path / "mlruns")
    model = store.load_model("models:/wine-sgd/1")
    sample = pd.DataFrame(**expected["sample"])
    np.testing.assert_allclose(model.predict_proba(sample)[:, 1], expected["proba"], rtol=1e-9)
