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
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONWARNINGS": "ignore",
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


def test_mlflow_s_example_scripts_leave_in_mltrail_what_they_leave_in_mlflow_s_sqlite_store(tmp_path):
    places = {mode: tmp_path / mode for mode in ("sqlite", "plugin", "server")}
    for folder in places.values():
        folder.mkdir()
        for script in SCRIPTS:  # the scripts' own folder is where MLflow records them from
            shutil.copy(EXAMPLES / script, folder / script)
    with serving_store(tmp_path / "served-store") as url:
        uris = {"sqlite": f"sqlite:///{places['sqlite'] / 'mlflow.db'}",
                "plugin": f"mltrail:{places['plugin'] / 'store'}", "server": url}
        with ThreadPoolExecutor(3) as pool:  # the three stores at once, each script after the last
            for script in SCRIPTS:
                list(pool.map(lambda mode: run_script(places[mode] / script, uris[mode], places[mode]), uris))
        with warnings.catch_warnings():  # SQLAlchemy's deprecations inside MLflow's sqlite store, not ours
            warnings.simplefilter("ignore")
            theirs = record(uris["sqlite"])
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
