"""Against MLflow itself: a store MLflow 3 wrote with autologging and dataset inputs (an
``mlruns`` folder whose metric lines name their dataset) imports whole, every metric point
with its dataset, and ``search_runs`` answers MLflow's ``datasets.*`` filters with the runs
``mlflow.search_runs`` gives on the source."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import mltrail

from .test_against_mlflow import run_python

pytest.importorskip("mlflow")
pytest.importorskip("sklearn")
pytestmark = pytest.mark.slow

MAKE_STORE = """
import json, sys
import numpy as np, pandas as pd
import mlflow, mlflow.data
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
mlflow.set_tracking_uri(sys.argv[1])
rng = np.random.default_rng(7)
X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
y = (X["a"] + 0.3 * X["b"] > 0).astype(int)
mlflow.set_experiment("autolog")
mlflow.sklearn.autolog(log_models=False)
with mlflow.start_run(run_name="grid"):  # a parent and a child run per candidate, every metric on a dataset
    GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0, 10.0]}, cv=3).fit(X, y)
with mlflow.start_run(run_name="single"):
    LogisticRegression(C=0.5).fit(X, y)
mlflow.sklearn.autolog(disable=True)
mlflow.set_experiment("manual")
train = mlflow.data.from_pandas(X.assign(y=y).iloc[:40], name="train", targets="y")
test = mlflow.data.from_pandas(X.assign(y=y).iloc[40:], name="test", targets="y")
wine = mlflow.data.from_pandas(X.iloc[:5], name="wine quality")  # a name with a space (no metric names it)
for i, inputs in enumerate([[(train, "training"), (test, "evaluation")], [(train, "training")], [(test, None)],
                            [(wine, "training")], []]):
    with mlflow.start_run(run_name=f"manual-{i}"):
        mlflow.log_param("i", i)
        for dataset, context in inputs:
            mlflow.log_input(dataset, context=context)
            if dataset is not wine:  # MLflow's file store could not read such a line back
                mlflow.log_metric("score", 0.5 + i / 10, step=i, dataset=dataset)
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
print(json.dumps({"train": train.digest, "test": test.digest}))
"""

SEARCH = """
import json, sys
import mlflow
from mlflow import MlflowClient
from mlflow.entities import ViewType
mlflow.set_tracking_uri(sys.argv[1])
names = ["autolog", "manual"]
out = {"runs": sorted(mlflow.search_runs(experiment_names=names, run_view_type=ViewType.ALL)["run_id"]), "filters": []}
for text in json.loads(sys.argv[2]):
    out["filters"].append(sorted(mlflow.search_runs(experiment_names=names, filter_string=text)["run_id"]))
client = MlflowClient(sys.argv[1])
out["points"] = sorted([run_id, m.key, m.timestamp, m.value, m.dataset_name, m.dataset_digest, m.step]
                       for run_id in out["runs"] for key in client.get_run(run_id).data.metrics
                       for m in client.get_metric_history(run_id, key))
print(json.dumps(out))
"""


def filters(digests: dict[str, str]) -> list[str]:
    return [
        "datasets.name = 'train'", "datasets.name = 'dataset'", "datasets.name = 'wine quality'",
        f"datasets.digest = '{digests['test']}'", f"datasets.digest IN ('{digests['train']}', '{digests['test']}')",
        "datasets.context = 'training'", "datasets.context = 'train'", "datasets.context != 'training'",
        "datasets.name != 'train'", "datasets.name IN ('train', 'test')", "datasets.name NOT IN ('dataset', 'test')",
        "datasets.name LIKE 'tr%'", "datasets.name LIKE '%quality'", "datasets.context ILIKE 'EVAL%'",
        "datasets.name = 'dataset' and metrics.training_score > 0.5", "datasets.name = 'train' and params.i = '1'",
        "datasets.digest = 'no-such-digest'",
    ]


def test_an_autologged_store_imports_whole_and_answers_dataset_filters_as_mlflow_does(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    digests = json.loads(run_python(MAKE_STORE, f"file:{root}", cwd=tmp_path).strip().splitlines()[-1])
    store = _imported_as_mlflow_answers(tmp_path, f"file:{root}", root, digests)
    history = store.metric_history()
    # the steps MLflow's reader loses
    assert sorted(history.loc[history["key"] == "score", "step"].unique()) == [0, 1, 2]
    assert history["dataset_name"].notna().sum() >= 20  # autologging named datasets


def test_a_sqlite_store_imports_through_mlflow_s_client_and_answers_dataset_filters_as_mlflow_does(
        tmp_path: Path) -> None:
    """MLflow's sqlite store keeps a dataset link for a logged model's points only, not a
    run's: through its client a run's points come without one, and are imported so."""
    pytest.importorskip("alembic")
    probe = subprocess.run([sys.executable, "-c", "import mlflow.store.db.utils"], capture_output=True, text=True,
                           check=False)
    if probe.returncode:  # MLflow 2.12's database code predates SQLAlchemy 2.1, which pip may pair with it
        pytest.skip(f"this MLflow cannot open a database store: {probe.stderr.strip().splitlines()[-1]}")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    digests = json.loads(run_python(MAKE_STORE, uri, cwd=tmp_path).strip().splitlines()[-1])
    with warnings.catch_warnings():  # MLflow's own deprecation and pandas warnings
        warnings.simplefilter("ignore")
        _imported_as_mlflow_answers(tmp_path, uri, uri, digests)


def _imported_as_mlflow_answers(tmp_path: Path, uri: str, source: Path | str, digests: dict[str, str]) -> mltrail.Store:
    """The store imported from ``source``: every run, every point with its dataset as MLflow's
    client gives it, and the runs ``mlflow.search_runs`` finds for each filter."""
    texts = filters(digests)
    theirs = json.loads(run_python(SEARCH, uri, json.dumps(texts), cwd=tmp_path).strip().splitlines()[-1])
    store = mltrail.Store(tmp_path / "store")
    summary = store.import_mlflow(source)
    assert [s for s in summary.skipped if s.what != "experiment"] == []
    runs = store.search_runs(["autolog", "manual"], view="all")
    mlflow_id = dict(zip(runs["run_id"], runs["tags.mlflow.run_id"]))
    assert sorted(mlflow_id.values()) == theirs["runs"] and len(theirs["runs"]) == 10  # every run, none skipped
    for text, expected in zip(texts, theirs["filters"]):
        ours = sorted(store.search_runs(["autolog", "manual"], filter=text)["tags.mlflow.run_id"])
        assert ours == expected, text
    assert sum(1 for found in theirs["filters"] if found) >= 14  # the filters do find runs
    # every point, with its dataset; MLflow's file store reads the step of a point that names
    # a dataset as 0 (its reader takes a step only from a three-field line): ours is the file's
    history = store.metric_history(list(mlflow_id))
    ours = sorted([mlflow_id[r.run_id], r.key, int(r.timestamp.value // 1_000_000), r.value,
                   r.dataset_name if isinstance(r.dataset_name, str) else None,
                   r.dataset_digest if isinstance(r.dataset_digest, str) else None,
                   0 if isinstance(r.dataset_name, str) else int(r.step)] for r in history.itertuples())
    assert ours == [list(p) for p in theirs["points"]]
    return store
