"""MLflow models saved by MLflow itself, in a child process, for the tests of loading them:
``mlflow.sklearn.save_model`` in each serialization format the installed MLflow has,
``mlflow.xgboost`` (a scikit-learn API model as UBJSON, a Booster as JSON),
``mlflow.lightgbm`` (a Booster, a scikit-learn API model) and a ``mlflow.pyfunc``
``PythonModel``; with what MLflow's own loaded models predict on a sample.

A child process also checks what mltrail loads, with MLflow importable or hidden from it
(:data:`HIDE_MLFLOW`: a finder that refuses ``mlflow`` as if it were not installed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

# the models below, by their folder's name
SKLEARN_FORMATS = ("skops", "pickle", "cloudpickle")

SAVE = """
import json, operator, sys
from pathlib import Path
import numpy as np, pandas as pd
import mlflow, mlflow.sklearn, mlflow.xgboost, mlflow.lightgbm, mlflow.pyfunc
import lightgbm as lgb, xgboost as xgb
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

out = Path(sys.argv[1])
rng = np.random.default_rng(7)
X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
y = (X["a"] - 0.5 * X["b"] + rng.normal(scale=0.3, size=80) > 0).astype(int)
sample = X.iloc[:25]
formats = [f for f in ("skops", "pickle", "cloudpickle") if f in mlflow.sklearn.SUPPORTED_SERIALIZATION_FORMATS]
saved = {}

def save(name, flavor, model, **kwargs):
    # (pip_requirements given: MLflow would otherwise start a process per model to infer them)
    flavor.save_model(model, str(out / name), input_example=X.iloc[:2], pip_requirements=[], **kwargs)
    saved[name] = flavor.__name__

logistic = LogisticRegression().fit(X, y)
for form in formats:
    save(f"sklearn-{form}", mlflow.sklearn, logistic, serialization_format=form)
save("sklearn-sgd", mlflow.sklearn, SGDClassifier(loss="log_loss", random_state=0).fit(X, y))  # MLflow's default format
if "skops" in formats:  # a type skops does not trust, trusted by the model's author when saving
    negated = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(X, y)
    save("sklearn-trusted", mlflow.sklearn, negated, skops_trusted_types=["_operator.neg"])
# a transformer of the user's own, in a module that MLflow keeps in the model's code folder
code = out.parent / "code"
code.mkdir(exist_ok=True)
(code / "shifting.py").write_text(chr(10).join([
    "from sklearn.base import BaseEstimator, TransformerMixin",
    "class Shift(TransformerMixin, BaseEstimator):",
    "    def __init__(self, by=1.0):",
    "        self.by = by",
    "    def fit(self, X, y=None):",
    "        return self",
    "    def transform(self, X):",
    "        return X + self.by", ""]))
sys.path.insert(0, str(code))
import shifting
save("sklearn-code", mlflow.sklearn, make_pipeline(shifting.Shift(2.0), LogisticRegression()).fit(X, y),
     serialization_format="cloudpickle", code_paths=[str(code / "shifting.py")])
save("xgboost-classifier", mlflow.xgboost, xgb.XGBClassifier(n_estimators=8, max_depth=2).fit(X, y),
     model_format="ubj")
save("xgboost-booster", mlflow.xgboost, xgb.train({"objective": "binary:logistic", "max_depth": 2},
                                                  xgb.DMatrix(X, y), 8), model_format="json")
save("lightgbm-booster", mlflow.lightgbm, lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4},
                                                    lgb.Dataset(X, y), 8))
save("lightgbm-classifier", mlflow.lightgbm, lgb.LGBMClassifier(n_estimators=8, num_leaves=4, verbose=-1).fit(X, y))

class Scaled(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.factor = float(Path(context.artifacts["factor"]).read_text())

    def predict(self, context, model_input, params=None):
        return model_input["a"] * self.factor + model_input["c"]

(out / "factor.txt").write_text("2.5")
mlflow.pyfunc.save_model(str(out / "pyfunc"), python_model=Scaled(), artifacts={"factor": str(out / "factor.txt")},
                         input_example=X.iloc[:2], pip_requirements=[])
saved["pyfunc"] = "mlflow.pyfunc"

expected = {}
for name, flavor in saved.items():
    predicted = np.asarray(mlflow.pyfunc.load_model(str(out / name)).predict(sample), dtype=float)
    native = sys.modules[flavor].load_model(str(out / name))
    proba = native.predict_proba(sample)[:, 1].tolist() if hasattr(native, "predict_proba") else None
    expected[name] = {"predict": predicted.ravel().tolist(), "proba": proba,
                      "type": f"{type(native).__module__}.{type(native).__name__}"}
(out / "factor.txt").unlink()
json.dump({"sample": sample.to_dict(orient="split"), "models": expected, "mlflow": mlflow.__version__},
          open(out / "expected.json", "w"))
"""

# run before anything else in a child process: `import mlflow` fails there as it does
# where MLflow is not installed (and so does every `mlflow.*` module)
HIDE_MLFLOW = """
import importlib.abc, sys

class _NoMlflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoMlflow())
"""

# loads each URI with mltrail and prints what each predicts on the sample (or its error)
LOAD = """
import json, sys
import numpy as np, pandas as pd
import mltrail

store = mltrail.Store(sys.argv[1])
expected = json.load(open(sys.argv[2]))
sample = pd.DataFrame(**expected["sample"])
answers = {}
for uri in sys.argv[3:]:
    try:
        model = store.load_model(uri)
    except mltrail.MltrailError as exc:
        answers[uri] = {"error": f"{type(exc).__name__}: {exc}"}
        continue
    kind = f"{type(model).__module__}.{type(model).__name__}"
    if kind == "xgboost.core.Booster":
        import xgboost
        predicted = model.predict(xgboost.DMatrix(sample))
    else:
        predicted = model.predict(sample)
    proba = model.predict_proba(sample)[:, 1].tolist() if hasattr(model, "predict_proba") else None
    answers[uri] = {"type": kind, "predict": np.asarray(predicted, dtype=float).ravel().tolist(), "proba": proba}
print(json.dumps({"answers": answers, "mlflow_imported": "mlflow" in sys.modules}))
"""


def run_python(code: str, *args: str, home: Path, hide_mlflow: bool = False) -> str:
    """``code`` in a child process (MLflow's warnings off; its file store allowed; its own
    home, so nothing lands in the user's); its standard output."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "MLFLOW_ALLOW_FILE_STORE": "true", "HOME": str(home),
           "GIT_PYTHON_REFRESH": "quiet", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
    # (MLflow's set_experiment leaves MLFLOW_EXPERIMENT_ID in the environment of the process
    # that called it, for its children: an earlier test's experiment, unknown to this store)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    source = (HIDE_MLFLOW if hide_mlflow else "") + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", source, *args], env=env, capture_output=True, text=True,
                          timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def save_models(folder: Path) -> dict[str, Any]:
    """Every model above saved by MLflow into ``folder`` (one sub-folder each), and the
    sample with what MLflow's loaded models predict on it (``expected.json``)."""
    folder.mkdir(parents=True, exist_ok=True)
    run_python(SAVE, str(folder), home=folder.parent)
    return json.loads((folder / "expected.json").read_text())


def load_with_mltrail(store_root: Path, expected_file: Path, uris: list[str], *, home: Path,
                      hide_mlflow: bool) -> dict[str, Any]:
    """What mltrail, in a child process, loads and predicts for each URI."""
    out = run_python(LOAD, str(store_root), str(expected_file), *uris, home=home, hide_mlflow=hide_mlflow)
    return json.loads(out.strip().splitlines()[-1])


def assert_same_predictions(answer: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    """mltrail's model predicts what MLflow's did, on every row of the sample."""
    assert "error" not in answer, f"{what}: {answer.get('error')}"
    np.testing.assert_allclose(answer["predict"], expected["predict"], rtol=1e-6, atol=1e-9, err_msg=what)
    if expected["proba"] is not None:
        np.testing.assert_allclose(answer["proba"], expected["proba"], rtol=1e-6, atol=1e-9, err_msg=what)
