"""MLflow's example scripts, unchanged, with only the tracking URI set: what they leave in
an mltrail store (through the plugin and through `mltrail server`) is what MLflow's own
sqlite store records for the same scripts.

The scripts in ``examples/`` do what MLflow's ``examples/sklearn_*`` do (ElasticNet with a
registered model, logistic regression with a logged model, autologging of a pipeline and
of a grid search with child runs), on scikit-learn's bundled data instead of a download.
Each store is read back through MLflow's client on its own URI and compared record for
record: runs (matched by experiment, params and parent, since autologging names runs at
random), their status, params, metrics and every point of their histories, tags, artifact
files and dataset inputs; MLflow 3's logged models with their params, metrics, tags and
files; registered models and their versions with lineage. What differs between any two
executions of a script is left out: random run names, run IDs (a parent is compared as
its record's key), and the wall-clock timing metrics (``*_time``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.factories import serving_store

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sklearn")
from mlflow import MlflowClient
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

# twelve MLflow processes (each imports MLflow and scikit-learn): ~1 minute on an idle machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EXAMPLES = Path(__file__).parent / "examples"
SCRIPTS = ["elasticnet.py", "logistic_regression.py", "autolog_pipeline.py", "autolog_grid_search.py"]
# files whose content differs between two executions: their names are compared, not sizes
VARYING_FILES = {"MLmodel": "names the run, the model and the time", "cv_results.csv": "holds fit and score times",
                 "estimator.html": "numbers its elements with a counter of the process"}
VOLATILE_TAGS = {"mlflow.runName", "mlflow.parentRunId", "mlflow.log-model.history"}
MLFLOW_ENV = {"MLFLOW_ALLOW_FILE_STORE": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONWARNINGS": "ignore",
              "GIT_PYTHON_REFRESH": "quiet", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}


def run_script(script: Path, uri: str, cwd: Path) -> None:
    env = {**os.environ, **MLFLOW_ENV, "MLFLOW_TRACKING_URI": uri}
    for name in ("MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_TRACKING_TOKEN"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, script.name], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, f"{script.name} on {uri} failed:\n{done.stderr[-4000:]}"


def _files(list_artifacts: Any, path: str | None = None) -> list[str]:
    found = []
    for info in list_artifacts(path):
        if info.is_dir:
            found += _files(list_artifacts, info.path)
        else:
            found.append(info.path if info.path.rsplit("/", 1)[-1] in VARYING_FILES else f"{info.path} {info.file_size}")
    return found


def _metric(key: str, value: float) -> float | str:
    return "timing" if key.endswith("_time") else value


def _versions_tag(text: str) -> list[tuple[str, int]]:
    """The versions a logged model was registered as. MLflow's client writes the number it
    was answered: an int from a sqlite store, text through any REST server (MLflow's too)."""
    return sorted((v["name"], int(v["version"])) for v in json.loads(text))


def record(uri: str) -> dict[str, Any]:
    """Everything the scripts left in the store at ``uri``, read with MLflow's client."""
    mlflow.set_tracking_uri(uri)  # a server's mlflow-artifacts: locations are read through the tracking URI
    client = MlflowClient(uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    runs = client.search_runs(list(experiments), max_results=1000)
    by_id = {run.info.run_id: run for run in runs}
    keys: dict[str, str] = {}

    def key(run: Any) -> str:
        if run.info.run_id not in keys:
            parent = run.data.tags.get("mlflow.parentRunId")
            keys[run.info.run_id] = json.dumps([experiments[run.info.experiment_id], sorted(run.data.params.items()),
                                                key(by_id[parent]) if parent else None])
        return keys[run.info.run_id]

    found: dict[str, Any] = {}
    for run in runs:
        assert run.info.run_name, f"a run without a name in {uri}"
        found[key(run)] = {
            "status": run.info.status,
            "metrics": {k: _metric(k, v) for k, v in run.data.metrics.items()},
            "history": {k: [(p.step, p.value) for p in client.get_metric_history(run.info.run_id, k)]
                        for k in run.data.metrics if not k.endswith("_time")},
            "tags": {k: v for k, v in run.data.tags.items() if k not in VOLATILE_TAGS},
            "files": sorted(_files(lambda path, run_id=run.info.run_id: client.list_artifacts(run_id, path))),
            "inputs": sorted((i.dataset.name, i.dataset.digest, i.dataset.source_type,
                              sorted((t.key, t.value) for t in i.tags)) for i in run.inputs.dataset_inputs),
            "outputs": len(run.outputs.model_outputs)}
    models = [{"name": m.name, "run": keys.get(m.source_run_id), "params": m.params, "status": str(m.status),
               "metrics": sorted((x.key, _metric(x.key, x.value)) for x in m.metrics or []),
               "tags": {k: _versions_tag(v) if k == "mlflow.modelVersions" else v
                        for k, v in m.tags.items() if k not in VOLATILE_TAGS},
               "files": sorted(_files(get_artifact_repository(m.artifact_location).list_artifacts))}
              for m in client.search_logged_models(list(experiments))]
    versions = [(v.name, int(v.version), keys.get(v.run_id), v.status, str(v.source).startswith("models:/m-"))
                for v in client.search_model_versions()]
    return {"experiments": sorted(experiments.values()), "runs": found,
            "logged_models": sorted(models, key=lambda m: json.dumps(m, sort_keys=True)),
            "registered": sorted(m.name for m in client.search_registered_models()), "versions": sorted(versions)}


def run_scripts(root: Path, uris: dict[str, str]) -> dict[str, Path]:
    """The example scripts, one after another, into each store at once; each store's folder
    (a copy of the scripts: where MLflow records them from, and its ./mlruns)."""
    places = {mode: root / mode for mode in uris}
    for folder in places.values():
        folder.mkdir()
        for script in SCRIPTS:
            shutil.copy(EXAMPLES / script, folder / script)
    with ThreadPoolExecutor(len(uris)) as pool:
        for script in SCRIPTS:
            list(pool.map(lambda mode: run_script(places[mode] / script, uris[mode], places[mode]), uris))
    return places


@pytest.fixture(scope="module")
def mlflow_wrote(tmp_path_factory):
    """The stores MLflow itself writes from the scripts: sqlite, and its file store (an
    ``mlruns`` folder, what older teams have); their URIs."""
    root = tmp_path_factory.mktemp("mlflow-wrote")
    uris = {"sqlite": f"sqlite:///{root / 'sqlite' / 'mlflow.db'}", "mlruns": f"file:{root / 'mlruns' / 'mlruns'}"}
    run_scripts(root, uris)
    return uris


def mlflow_record(uri: str) -> dict[str, Any]:
    with warnings.catch_warnings():  # SQLAlchemy's deprecations inside MLflow's sqlite store, not ours
        warnings.simplefilter("ignore")
        return record(uri)


def test_mlflow_s_example_scripts_leave_in_mltrail_what_they_leave_in_mlflow_s_sqlite_store(tmp_path, mlflow_wrote):
    with serving_store(tmp_path / "served-store") as url:
        uris = {"plugin": f"mltrail:{tmp_path / 'plugin' / 'store'}", "server": url}
        run_scripts(tmp_path, uris)
        theirs = mlflow_record(mlflow_wrote["sqlite"])
        assert len(theirs["runs"]) == 8 and len(theirs["versions"]) == 1 and len(theirs["logged_models"]) == 5
        for mode in ("plugin", "server"):
            ours = record(uris[mode])
            assert ours.keys() == theirs.keys()
            assert differences(ours, theirs) == [], f"{mode} differs from MLflow's sqlite store"


def differences(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Where two records differ, down to the field (what a failure should print)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [d for k in sorted(ours.keys() | theirs.keys(), key=str)
                for d in differences(ours.get(k, "<missing>"), theirs.get(k, "<missing>"), f"{where}/{k}")]
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [d for i, (a, b) in enumerate(zip(ours, theirs)) for d in differences(a, b, f"{where}[{i}]")]
    return [] if ours == theirs else [f"{where}: mltrail {ours!r} != MLflow {theirs!r}"]


# MLflow's filter language on the runs the scripts leave: attributes, params, metrics, tags,
# datasets (what mltrail's search_runs must answer as MLflow answers it on the source)
FILTERS = ["", "params.alpha = '0.5'", "metrics.r2 < 0", "metrics.training_score > 0.9",
           "tags.mlflow.autologging = 'sklearn'", "attributes.status = 'FINISHED'", "params.C = '10'",
           "tags.estimator_name = 'GridSearchCV'", "datasets.context = 'train'", "datasets.name = 'dataset'",
           "metrics.score >= 0.5 and params.C IS NULL"]
ORDERINGS = [["metrics.training_score DESC"], ["params.C ASC"],  # (ties: most runs have neither)
             ["tags.mlflow.autologging ASC", "attributes.run_name DESC"], ["attributes.status ASC"]]


def _sample(model: Any) -> Any:
    """A few rows a fitted model takes: a frame with its feature names when it has them."""
    import numpy as np
    import pandas as pd

    columns = int(model.n_features_in_)
    rows = np.linspace(-1.0, 1.0, 3 * columns).reshape(3, columns)
    names = getattr(model, "feature_names_in_", None)
    return rows if names is None else pd.DataFrame(rows, columns=list(names))


@pytest.mark.parametrize("source", ["mlruns", "sqlite"])
def test_a_store_mlflow_s_example_scripts_wrote_imports_whole_and_answers_as_mlflow(
        tmp_path, mlflow_wrote, source, monkeypatch):
    """Issue 29's proof: every run (autologged ones with dataset-linked metric lines too),
    every metric point with its dataset link, MLflow's filters answered alike, every
    registered version with its number, and every logged model loads and predicts as MLflow's."""
    import mltrail

    uri = mlflow_wrote[source]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads its file store only when allowed
    store = mltrail.Store(tmp_path / "store")
    with warnings.catch_warnings():  # MLflow's own deprecations while it reads its stores
        warnings.simplefilter("ignore")
        summary = store.import_mlflow(uri.removeprefix("file:"))
        client = MlflowClient(uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        theirs = client.search_runs(experiments, max_results=1000)
        answers = {f: {r.info.run_id for r in client.search_runs(experiments, f, max_results=1000)} for f in FILTERS}
        orders = {tuple(o): [r.info.run_id for r in client.search_runs(experiments, "", order_by=o, max_results=1000)]
                  for o in ORDERINGS}
        histories = {(r.info.run_id, key): sorted((p.step, p.value, p.dataset_name, p.dataset_digest)
                                                  for p in client.get_metric_history(r.info.run_id, key))
                     for r in theirs for key in r.data.metrics}
        mlflow.set_tracking_uri(uri)
        models = {m.model_id: mlflow.sklearn.load_model(f"models:/{m.model_id}")
                  for m in client.search_logged_models(experiments)}
        versions = sorted((v.name, int(v.version)) for v in client.search_model_versions())
        registered = mlflow.sklearn.load_model("models:/ElasticnetDiabetesModel/1")
    assert [s for s in summary.skipped if s.what != "experiment"] == [], summary.text()
    assert summary.runs_new == len(theirs) == 8

    ours = store.search_runs(view="all")
    mlflow_id = dict(zip(ours["run_id"], ours["tags.mlflow.run_id"]))
    for filter_string, expected in answers.items():
        found = store.search_runs(filter=filter_string or None, view="all")
        assert {mlflow_id[r] for r in found["run_id"]} == expected, filter_string
    for order_by, expected_order in orders.items():
        found = store.search_runs(order_by=list(order_by), view="all")
        assert [mlflow_id[r] for r in found["run_id"]] == expected_order, order_by
    points = store.metric_history()
    got: dict[tuple[str, str], list] = {}
    for row in points.itertuples():
        got.setdefault((mlflow_id[row.run_id], row.key), []).append(
            (row.step, row.value, row.dataset_name if isinstance(row.dataset_name, str) else None,
             row.dataset_digest if isinstance(row.dataset_digest, str) else None))
    assert {k: sorted(v) for k, v in got.items()} == histories

    assert sorted((v.model, v.number) for m in store.registry.names()
                  for v in store.registry.model(m).versions) == versions == [("ElasticnetDiabetesModel", 1)]
    assert len(models) == 5
    for model_id, model in models.items():  # skops (the elastic net's default), pickle and cloudpickle
        sample = _sample(model)
        assert store.load_model(f"models:/{model_id}").predict(sample).tolist() == model.predict(sample).tolist()
    sample = _sample(registered)
    assert store.load_model("models:/ElasticnetDiabetesModel/1").predict(sample).tolist() == \
        registered.predict(sample).tolist()
