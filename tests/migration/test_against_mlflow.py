"""The proof against MLflow itself (mlflow-skinny, a test dependency): a store MLflow wrote,
once imported, answers ``search_runs`` as MLflow answers it on the source; and a training
script run with ``import mlflow`` and with ``import mltrail.mlflow as mlflow`` leaves the
same params, metrics and tags.

MLflow runs in subprocesses: its file store needs ``MLFLOW_ALLOW_FILE_STORE`` (3.x), its
warnings would fail this suite (warnings are errors here), and its fluent API keeps state
in the process.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mltrail
from mltrail import mlflow as shim
from mltrail.errors import NotFoundError

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow

T0 = 1_790_000_000_000  # ms: each run starts at its own known time, so no two tie


def run_python(code: str, *args: str, shim_import: bool = False, cwd: Path | None = None) -> str:
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "PYTHONWARNINGS": "ignore",
           "GIT_PYTHON_REFRESH": "quiet", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
    # (MLflow's set_experiment leaves MLFLOW_EXPERIMENT_ID in the environment of the process
    # that called it, for its children: an earlier test's experiment, unknown to this store)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    if shim_import:
        env["USE_MLTRAIL"] = "1"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env, capture_output=True,
                          text=True, timeout=240, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


MAKE_STORE = """
import sys, math
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
client = MlflowClient(sys.argv[1])
t0 = int(sys.argv[2])
experiments = {name: client.create_experiment(name) for name in ("churn", "fraud")}
runs = []
for i in range(24):
    exp = experiments["churn" if i % 4 else "fraud"]
    run = client.create_run(exp, start_time=t0 + i * 1000, run_name=f"run-{i}",
                            tags={"team": "growth" if i % 3 else "risk", **({"stage": "prod"} if i % 5 == 0 else {})})
    rid = run.info.run_id
    params = [Param("lr", str([0.1, 0.01, 0.001][i % 3])), Param("depth", str(3 + i % 4)),
              Param("optimizer", "adam" if i % 2 else "sgd")]
    if i % 7 == 0:
        params.append(Param("model/dropout", "0.5"))
    metrics = []
    for step in range(5):
        metrics.append(Metric("loss", 1.0 / (i + step + 1), t0 + i * 1000 + step, step))
        metrics.append(Metric("acc", round(0.5 + (i * 7 % 24) / 50 + step / 100, 4), t0 + i * 1000 + step, step))
    if i % 6 == 0:
        metrics.append(Metric("val/auc", float("nan") if i == 6 else 0.6 + i / 100, t0 + i * 1000 + 9, 0))
    client.log_batch(rid, metrics=metrics, params=params)
    if i == 2:  # artifacts, a dataset input and a registered model, for the client route to fetch too
        import os, pickle, tempfile
        import pandas as pd
        import mlflow.data
        from mlflow.entities import DatasetInput, InputTag
        client.log_text(rid, "hello", "notes/readme.txt")
        folder = tempfile.mkdtemp()
        with open(os.path.join(folder, "model.pkl"), "wb") as handle:
            pickle.dump({"weights": [1, 2]}, handle)
        client.log_artifact(rid, os.path.join(folder, "model.pkl"), "model")
        dataset = mlflow.data.from_pandas(pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), source="data/train.csv",
                                          name="train")
        client.log_inputs(rid, [DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", "training")])])
        client.create_registered_model("churn-model", tags={"owner": "ana"}, description="churn")
        version = client.create_model_version("churn-model", f"runs:/{rid}/model", run_id=rid, tags={"k": "v"})
        client.set_registered_model_alias("churn-model", "champion", version.version)
    status = "FAILED" if i % 8 == 3 else "KILLED" if i == 10 else "FINISHED"
    client.set_terminated(rid, status, end_time=t0 + i * 1000 + 500)
    runs.append(rid)
client.delete_run(runs[5])
child = client.create_run(experiments["churn"], start_time=t0 + 90_000, run_name="child",
                          tags={"mlflow.parentRunId": runs[1]})
client.log_metric(child.info.run_id, "loss", 0.05, timestamp=t0 + 90_001, step=0)
client.set_terminated(child.info.run_id, "FINISHED", end_time=t0 + 90_500)
"""

SEARCH = """
import json, sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
answers = []
for case in json.loads(sys.argv[2]):
    frame = mlflow.search_runs(experiment_names=case["experiments"], filter_string=case["filter"],
                               order_by=case["order_by"], max_results=case["max_results"])
    answers.append(json.loads(frame.drop(columns=["artifact_uri", "experiment_id"]).to_json(orient="records", double_precision=15,
                                                                                            date_unit="ms")))
print(json.dumps(answers))
"""

CASES = [  # (experiments, filter, order_by, max_results): MLflow's language as its file store takes it (AND only)
    (["churn", "fraud"], "", None, 1000),
    (["churn"], "metrics.acc > 0.8", ["metrics.acc DESC"], 1000),
    (["churn", "fraud"], "params.optimizer = 'adam' and metrics.loss < 0.1", ["metrics.loss ASC"], 1000),
    (["churn", "fraud"], "tags.team = 'risk'", ["attributes.start_time ASC"], 1000),
    (["churn", "fraud"], "attributes.status = 'FAILED'", None, 1000),
    (["churn", "fraud"], "params.depth = '3'", ["metrics.acc ASC"], 5),
    (["churn"], "tags.mlflow.runName LIKE 'run-1%'", ["attributes.end_time DESC"], 1000),
    (["churn", "fraud"], "attributes.run_name ILIKE 'RUN-2%'", None, 1000),
    (["churn", "fraud"], "params.lr != '0.1'", ["metrics.loss DESC"], 1000),
    (["churn", "fraud"], "params.`model/dropout` = '0.5'", None, 1000),
    (["churn", "fraud"], "metrics.`val/auc` >= 0.6", ["metrics.`val/auc` DESC"], 1000),
    (["churn", "fraud"], f"attributes.start_time > {T0 + 15_000}", ["attributes.start_time DESC"], 3),
    (["fraud"], "tags.stage = 'prod' and metrics.acc > 0.1", ["metrics.acc DESC", "attributes.start_time ASC"], 1000),
    (["churn", "fraud"], "metrics.loss > 0.1", ["params.optimizer ASC", "metrics.loss DESC"], 1000),
    # ties, ordered as MLflow orders them after the keys it was given (start time, newest first, then ID)
    (["churn", "fraud"], "", ["params.optimizer ASC"], 1000),
    (["churn", "fraud"], "", ["tags.team DESC"], 7),
    (["churn", "fraud"], "", ["attributes.status ASC", "params.depth DESC"], 1000),
    (["churn", "fraud"], "", ["params.no_such_param ASC"], 1000),
]


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mlflow") / "mlruns"
    run_python(MAKE_STORE, f"file:{root}", str(T0), cwd=root.parent)
    return root


def _same(ours: Any, theirs: Any) -> bool:
    ours, theirs = (None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in (ours, theirs))
    if isinstance(ours, float) and isinstance(theirs, (int, float)):
        return math.isclose(ours, theirs, rel_tol=1e-13)  # JSON of 15 significant digits
    return ours == theirs


def test_search_runs_on_an_imported_store_gives_mlflow_s_runs_and_values(tmp_path: Path, mlflow_store: Path) -> None:
    store = mltrail.Store(tmp_path / "store")
    summary = store.import_mlflow(mlflow_store)
    assert (summary.runs_new, summary.skipped) == (24, [s for s in summary.skipped if s.what == "experiment"])
    _answers_as_mlflow_does(store, f"file:{mlflow_store}")


def test_a_sqlite_store_imports_through_mlflow_s_client_and_answers_as_mlflow_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("alembic")  # MLflow's database stores need it (and SQLAlchemy)
    probe = subprocess.run([sys.executable, "-c", "import mlflow.store.db.utils"], capture_output=True, text=True)
    if probe.returncode:  # MLflow 2.12's database code predates SQLAlchemy 2.1, which pip may pair with it
        pytest.skip(f"this MLflow cannot open a database store: {probe.stderr.strip().splitlines()[-1]}")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_python(MAKE_STORE, uri, str(T0), cwd=tmp_path)  # its artifacts go to ./mlruns there
    store = mltrail.Store(tmp_path / "store")
    with warnings.catch_warnings():  # MLflow's own deprecation and pandas warnings
        warnings.simplefilter("ignore")
        summary = store.import_mlflow(uri)
    assert (summary.runs_new, summary.versions_new, summary.aliases_set) == (24, 1, 1), summary.text()
    _answers_as_mlflow_does(store, uri)
    assert store.load_model("models:/churn-model@champion") == {"weights": [1, 2]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert store.import_mlflow(uri).runs_unchanged == 24


def _answers_as_mlflow_does(store: mltrail.Store, uri: str) -> None:
    cases = [{"experiments": e, "filter": f, "order_by": o, "max_results": m} for e, f, o, m in CASES]
    theirs_all = json.loads(run_python(SEARCH, uri, json.dumps(cases)))
    for (experiments, filter, order_by, max_results), theirs in zip(CASES, theirs_all):
        ours = store.search_runs(experiments, filter or None, order_by, max_results)
        assert list(ours["tags.mlflow.run_id"]) == [row["run_id"] for row in theirs], (filter, order_by)
        assert len(theirs) > 0 or filter.startswith("attributes.status"), filter
        for (_, mine), row in zip(ours.iterrows(), theirs):
            for column, value in row.items():
                if column.startswith(("metrics.", "params.", "tags.")) and value is not None:
                    assert _same(mine.get(column), value), (filter, row["run_id"], column, mine.get(column), value)
            assert mine["status"] == row["status"]
            assert mine["start_time"] == pd.Timestamp(row["start_time"], unit="ms", tz="UTC")
            assert mine["end_time"] == pd.Timestamp(row["end_time"], unit="ms", tz="UTC")


def test_an_imported_run_s_metric_history_is_mlflow_s_point_for_point(tmp_path: Path, mlflow_store: Path) -> None:
    store = mltrail.Store(tmp_path / "store")
    store.import_mlflow(mlflow_store)
    theirs = json.loads(run_python("""
        import json, sys
        from mlflow import MlflowClient
        client = MlflowClient("file:" + sys.argv[1])
        out = {}
        for exp in client.search_experiments():
            for run in client.search_runs([exp.experiment_id]):
                out[run.info.run_id] = sorted([m.key, m.step, m.timestamp, None if m.value != m.value else m.value]
                                              for key in run.data.metrics for m in client.get_metric_history(run.info.run_id, key))
        print(json.dumps(out))
    """, str(mlflow_store)))
    runs = store.search_runs().set_index("run_id")["tags.mlflow.run_id"]
    history = store.metric_history()
    assert set(runs) == set(theirs)
    for run_id, mlflow_id in runs.items():
        points = history[history["run_id"] == run_id]
        ours = sorted([r.key, int(r.step), int(r.timestamp.value // 1_000_000), None if r.value != r.value else r.value]
                      for r in points.itertuples())
        assert ours == theirs[mlflow_id]


def test_importing_through_mlflow_s_client_gives_what_reading_the_files_gives(
        tmp_path: Path, mlflow_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrail.migration.mlflow_import import MlflowImport
    from mltrail.migration.mlflow_source import ClientSource

    by_files = mltrail.Store(tmp_path / "files")
    by_files.import_mlflow(mlflow_store)
    by_client = mltrail.Store(tmp_path / "client")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    with warnings.catch_warnings():  # MLflow's own deprecation and pandas warnings
        warnings.simplefilter("ignore")
        with ClientSource(f"file:{mlflow_store}") as source:
            MlflowImport(by_client.tracking, by_client.registry, source).run()
    frames = [s.search_runs().sort_values("run_id").reset_index(drop=True) for s in (by_files, by_client)]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    histories = [s.metric_history().sort_values(["run_id", "key", "step", "timestamp"]).reset_index(drop=True)
                 for s in (by_files, by_client)]
    pd.testing.assert_frame_equal(histories[0], histories[1])
    for table in ("artifacts", "datasets"):
        run_id = frames[0].loc[frames[0]["run_name"] == "run-2", "run_id"].item()
        pair = [s.get_run(run_id)[table].sort_values(["path" if table == "artifacts" else "name"])
                .drop(columns=["source"], errors="ignore").reset_index(drop=True) for s in (by_files, by_client)]
        assert len(pair[0]) >= 1
        pd.testing.assert_frame_equal(pair[0], pair[1])
    versions = [s.registry.versions("churn-model").drop(columns=["created"]) for s in (by_files, by_client)]
    pd.testing.assert_frame_equal(versions[0], versions[1])
    assert by_client.load_model("models:/churn-model@champion") == {"weights": [1, 2]}


TRAINING_SCRIPT = """
import os, sys, tempfile
if os.environ.get("USE_MLTRAIL"):
    import mltrail.mlflow as mlflow
else:
    import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("training")
with mlflow.start_run(run_name="train", tags={"team": "growth"}, description="first try") as run:
    mlflow.log_param("lr", 0.1)
    mlflow.log_params({"layers": [64, 32], "optimizer": "adam", "shuffle": True, "epochs": 5, "decay": None})
    for epoch in range(5):
        mlflow.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        mlflow.log_metrics({"acc": 0.5 + epoch / 10, "val/acc": 0.4 + epoch / 10}, step=epoch)
    mlflow.log_metric("final_score", 3)
    mlflow.log_metric("odd", float("nan"))
    mlflow.set_tag("stage", "dev")
    mlflow.set_tags({"attempt": 2, "note": "ok"})
    mlflow.log_dict({"a": 1, "b": [1, 2]}, "config/params.json")
    mlflow.log_dict({"a": 1, "b": [1, 2], "c": {"d": "e"}}, "config/params.yaml")
    mlflow.log_text("hello", "notes.txt")
    mlflow.log_table({"x": [1, 2], "z": ["02108", "b"]}, "eval/table.json")
    mlflow.log_table({"x": [3], "z": ["c"]}, "eval/table.json")  # appended to the first
    folder = tempfile.mkdtemp()
    os.makedirs(os.path.join(folder, "sub"))
    open(os.path.join(folder, "sub", "x.csv"), "w").write("a,b\\n1,2\\n")
    open(os.path.join(folder, "y.txt"), "w").write("y")
    mlflow.log_artifacts(folder, artifact_path="outputs")
    mlflow.log_artifact(os.path.join(folder, "y.txt"))
    mlflow.log_artifact(os.path.join(folder, "sub"), artifact_path="whole")  # a folder: whole/sub/...
    with mlflow.start_run(run_name="fold-1", nested=True):
        mlflow.log_metric("fold_score", 0.7)
    assert mlflow.active_run().info.run_id == run.info.run_id
with mlflow.start_run(run_name="broken"):
    mlflow.log_param("x", 1)
    mlflow.end_run("FAILED")
print(run.info.run_id)
"""

READ_MLFLOW = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
exp = client.get_experiment_by_name("training")
out = {}
def artifacts(run_id, path=None):
    for item in client.list_artifacts(run_id, path):
        yield from artifacts(run_id, item.path) if item.is_dir else [item.path]
for run in client.search_runs([exp.experiment_id]):
    history = sorted([m.key, m.step, None if m.value != m.value else m.value]
                     for key in run.data.metrics for m in client.get_metric_history(run.info.run_id, key))
    out[run.info.run_name] = {"params": run.data.params, "tags": run.data.tags, "status": run.info.status,
                              "metrics": {k: None if v != v else v for k, v in run.data.metrics.items()},
                              "history": history, "artifacts": sorted(artifacts(run.info.run_id)),
                              "run_id": run.info.run_id}
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
frame = mlflow.search_runs(experiment_names=["training"], order_by=["attributes.start_time ASC"])
out["search"] = {"columns": list(frame.columns), "rows": json.loads(frame.to_json(orient="records", double_precision=15))}
print(json.dumps(out))
"""

_DIFFERENT_BY_DESIGN = ("mlflow.source.git.", "mlflow.log-model.history")  # git: MLflow looks at the cwd's repository


def test_one_training_script_under_mlflow_and_under_mltrail_mlflow_leaves_the_same_record(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAINING_SCRIPT)
    mlflow_uri = f"file:{tmp_path / 'mlruns'}"
    run_python(f"import runpy, sys; sys.argv = [{str(script)!r}, {mlflow_uri!r}]; runpy.run_path(sys.argv[0], run_name='__main__')")
    run_python(f"import runpy, sys; sys.argv = [{str(script)!r}, {str(tmp_path / 'store')!r}]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')", shim_import=True)
    theirs = json.loads(run_python(READ_MLFLOW, mlflow_uri))
    their_search = theirs.pop("search")
    shim.set_tracking_uri(tmp_path / "store")
    store = mltrail.Store(tmp_path / "store")
    ours = {row["run_name"]: row for row in store.search_runs("training").to_dict("records")}
    assert set(ours) == set(theirs) == {"train", "fold-1", "broken"}
    for name, expected in theirs.items():
        run = shim.get_run(ours[name]["run_id"])
        assert run.data.params == expected["params"], name
        assert {k: None if v != v else v for k, v in run.data.metrics.items()} == expected["metrics"], name
        assert run.info.status == expected["status"]
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mltrail.")}
        their_tags = {k: v for k, v in expected["tags"].items() if not k.startswith(_DIFFERENT_BY_DESIGN)}
        if "mlflow.parentRunId" in their_tags:  # each names its own parent's ID
            assert tags.pop("mlflow.parentRunId") == ours["train"]["run_id"]
            assert their_tags.pop("mlflow.parentRunId") == theirs["train"]["run_id"]
        assert tags == their_tags, name
        history = store.metric_history([run.info.run_id])
        assert sorted([r.key, int(r.step), None if r.value != r.value else r.value]
                      for r in history.itertuples()) == [list(p) for p in expected["history"]], name
        assert sorted(store.get_run(run.info.run_id)["artifacts"]["path"]) == expected["artifacts"], name
    our_search = shim.search_runs(experiment_names=["training"], order_by=["attributes.start_time ASC"])
    kept = [c for c in their_search["columns"] if not c.startswith("tags." + _DIFFERENT_BY_DESIGN[0])]
    by_kind = [sorted(c for c in kept if c.startswith(kind)) for kind in ("metrics.", "params.", "tags.")]
    assert [c for c in our_search.columns if not c.startswith("tags.mltrail.")] == kept[:6] + sum(by_kind, [])
    for mine, row in zip(our_search.to_dict("records"), their_search["rows"]):
        for column in kept:
            if column.startswith(("metrics.", "params.", "tags.")) and column != "tags.mlflow.parentRunId":
                assert _same(mine[column], row[column]), (column, mine[column], row[column])
        assert mine["status"] == row["status"]
    for name in ("config/params.json", "config/params.yaml", "eval/table.json"):  # MLflow's file rules, byte for byte
        assert store.artifact_path(ours["train"]["run_id"], name).read_bytes() == (tmp_path / "mlruns").joinpath(
            *_artifact_parts(theirs["train"]["run_id"], tmp_path / "mlruns"), *name.split("/")).read_bytes(), name


def _artifact_parts(run_id: str, mlruns: Path) -> tuple[str, ...]:
    [folder] = list(mlruns.glob(f"*/{run_id}"))
    return (folder.parent.name, run_id, "artifacts")


LOG_MODELS = """
import shutil, sys
from urllib.parse import unquote, urlparse
import mlflow
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("churn")
client = MlflowClient()
for i, serialization in enumerate(["cloudpickle", "pickle", "cloudpickle", "pickle"]):
    with mlflow.start_run(run_name=f"fit-{i}"):
        mlflow.log_param("C", str(1.0 + i))
        mlflow.log_metric("acc", 0.9 + i / 100)
        info = mlflow.sklearn.log_model(LogisticRegression(C=1.0 + i).fit(X, y), name="model",
                                        registered_model_name="churn", serialization_format=serialization,
                                        params={"C": 1.0 + i})
location = urlparse(client.get_logged_model(info.model_id).artifact_location)
shutil.rmtree(unquote(location.path))  # version 4's source, gone: MLflow keeps the version
client.create_model_version("churn", source="s3://nowhere/x")  # version 5: a source outside the store
client.set_registered_model_alias("churn", "champion", "2")
"""

MODELS_REPORT = """
import hashlib, json, os, sys, tempfile
import mlflow
from mlflow import MlflowClient
uri = sys.argv[1]
mlflow.set_tracking_uri(uri)
client = MlflowClient()

def mlflow_run(run_id):  # an imported run keeps MLflow's ID as a tag
    return client.get_run(run_id).data.tags.get("mlflow.run_id", run_id) if run_id else None

def files(model):
    try:
        folder = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model.model_id}", dst_path=tempfile.mkdtemp())
    except Exception:  # the folder is gone
        return {}
    return {os.path.relpath(os.path.join(d, n), folder): hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest()
            for d, _, names in os.walk(folder) for n in names}

experiment = client.get_experiment_by_name("churn").experiment_id
report = {"versions": [], "models": {}, "predictions": {}}
for v in client.search_model_versions("name = 'churn'"):
    report["versions"].append([int(v.version), v.source, mlflow_run(v.run_id)])
    if int(v.version) <= 3:
        model = mlflow.sklearn.load_model(f"models:/churn/{v.version}")
        report["predictions"][v.version] = model.predict_proba([[0.5], [2.5]]).tolist()
for m in client.search_logged_models([experiment]):
    report["models"][m.model_id] = {
        "name": m.name, "run": mlflow_run(m.source_run_id), "status": str(m.status), "params": m.params,
        "tags": m.tags, "files": files(m),
        "metrics": sorted([x.key, x.value, x.step, x.timestamp, mlflow_run(x.run_id), x.dataset_name] for x in m.metrics)}
report["champion"] = str(client.get_model_version_by_alias("churn", "champion").version)
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def mlflow3_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An mlruns folder and a sqlite store where MLflow 3 logged four sklearn models, each
    registered (the fourth's files then deleted), and a version from a source elsewhere."""
    from importlib.metadata import version

    if int(version("mlflow-skinny").split(".")[0]) < 3:
        pytest.skip("logged models came with MLflow 3")
    pytest.importorskip("alembic")
    root = tmp_path_factory.mktemp("mlflow3")
    sqlite = f"sqlite:///{root / 'mlflow.db'}"
    for uri in (f"file:{root / 'mlruns'}", sqlite):  # (one process each: MLflow keeps its registry per process)
        run_python(LOG_MODELS, uri, cwd=root)  # sqlite's artifacts: in ./mlruns there too
    return {"mlruns": root / "mlruns", "sqlite": sqlite,
            "theirs": {name: json.loads(run_python(MODELS_REPORT, uri, cwd=root))
                       for name, uri in (("mlruns", f"file:{root / 'mlruns'}"), ("sqlite", sqlite))}}


@pytest.mark.parametrize("route", ["mlruns files", "mlruns through the client", "sqlite through the client"])
def test_mlflow_3_logged_models_and_every_version_come_with_their_numbers_by_every_route(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow3_models: dict[str, Any], route: str) -> None:
    from mltrail.migration.mlflow_import import MlflowImport
    from mltrail.migration.mlflow_source import ClientSource

    kind = route.split()[0]
    store = mltrail.Store(tmp_path / "store")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    with warnings.catch_warnings():  # MLflow's own deprecation warnings
        warnings.simplefilter("ignore")
        if route == "mlruns files":
            summary = store.import_mlflow(mlflow3_models["mlruns"])
        else:
            uri = f"file:{mlflow3_models['mlruns']}" if kind == "mlruns" else mlflow3_models["sqlite"]
            with ClientSource(uri) as source:
                summary = MlflowImport(store.tracking, store.registry, source).run()
    assert (summary.logged_models_new, summary.versions_new, summary.versions_without_files) == (4, 5, 2), \
        summary.text()
    theirs = mlflow3_models["theirs"][kind]
    versions = store.registry.model("churn").versions
    runs = store.search_runs("churn").set_index("run_id")["tags.mlflow.run_id"]
    by_number = {number: (source, run) for number, source, run in theirs["versions"]}
    assert [v.number for v in versions] == sorted(by_number) == [1, 2, 3, 4, 5]
    for version in versions:  # its lineage: MLflow's run, and the logged model its source names
        source, run = by_number[version.number]
        assert (runs.get(version.run), version.model_id) == (run, source.removeprefix("models:/") if run else None)
    assert [v.artifact for v in versions] == ["model.pkl"] * 3 + [None, None]
    assert "has no files" in versions[3].missing and "s3://nowhere/x" in versions[4].missing
    for number in (1, 2, 3):  # mltrail loads the pickles MLflow wrote, and predicts as MLflow's model does
        model = store.load_model(f"models:/churn/{number}")
        assert model.predict_proba([[0.5], [2.5]]).tolist() == theirs["predictions"][str(number)]
    with pytest.raises(NotFoundError, match="imported from MLflow without its model files.*s3://nowhere/x"):
        store.load_model("models:/churn/5")
    # MLflow's own client on the imported store (the mltrail: plugin) answers what it answers on the source
    ours = json.loads(run_python(MODELS_REPORT, f"mltrail:{store.root}", cwd=tmp_path))
    assert sorted(ours["versions"]) == sorted(theirs["versions"])
    assert ours["models"] == theirs["models"] and len(ours["models"]) == 4
    assert ours["predictions"] == theirs["predictions"] and ours["champion"] == theirs["champion"] == "2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if route == "mlruns files":
            again = store.import_mlflow(mlflow3_models["mlruns"])
        else:
            with ClientSource(uri) as source:
                again = MlflowImport(store.tracking, store.registry, source).run()
    assert (again.logged_models_new, again.logged_models_updated, again.versions_new) == (0, 0, 0)


def test_through_mlflow_s_client_a_run_out_of_bounds_or_unreadable_skips_that_run_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrail.migration.mlflow_import import MlflowImport
    from mltrail.migration.mlflow_source import ClientSource

    from .mlruns import MlrunsBuilder

    mlruns = MlrunsBuilder(tmp_path / "mlruns")
    mlruns.experiment("1", "churn")
    full = {"params": {"p": "1"}, "artifacts": {"a.txt": b"a"}}  # MLflow 3 finds no run without these folders
    mlruns.run("1", "a" * 32, name="fine", metrics={"loss": [(T0, 0.5, 0)]}, **full)
    mlruns.run("1", "b" * 32, name="micro", start_ms=T0 * 1000, **full)
    mlruns.run("1", "c" * 32, name="far-step", metrics={"loss": [(T0, 0.5, 2**63)]}, **full)
    mlruns.run("1", "d" * 32, name="unfindable", metrics={"loss": [(T0, 0.5, 0)]})  # listed, but MLflow cannot read it
    store = mltrail.Store(tmp_path / "store")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    with warnings.catch_warnings():  # MLflow's own deprecation warnings
        warnings.simplefilter("ignore")
        with ClientSource(f"file:{mlruns.root}") as source:
            summary = MlflowImport(store.tracking, store.registry, source).run()
    assert summary.runs_new == 1 and list(store.search_runs()["run_name"]) == ["fine"]
    reasons = {s.where: s.reason for s in summary.skipped if s.what == "run"}
    assert "as microseconds it would be" in reasons[f"file:{mlruns.root} run {'b' * 32}"]
    assert "not a 64-bit integer" in reasons[f"file:{mlruns.root} run {'c' * 32} metric loss"]
    assert "its metrics cannot be read" in reasons[f"file:{mlruns.root} run {'d' * 32}"]
