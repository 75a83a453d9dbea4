import subprocess
import sys

import pytest

import mltrail


def test_all_is_sorted_and_exports_what_it_claims():
    assert mltrail.__all__ == sorted(mltrail.__all__)
    for name in mltrail.__all__:
        assert hasattr(mltrail, name), name
    public = {n for n in dir(mltrail) if not n.startswith("_")}
    modules = {"ab", "compaction", "config", "errors", "query", "serve", "server", "remote", "storage", "tracking", "cli", "dashboard",
               "registry", "features", "fluent", "store", "contract", "access", "integrations", "migration", "mlflow",
               "mlflow_store", "reports",
               "lightning", "optuna"}  # (an extra's modules: bound once imported, never in __all__)
    assert public - modules - set(mltrail.__all__) == set()


def test_every_error_derives_from_the_base():
    for name in mltrail.__all__:
        obj = getattr(mltrail, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, mltrail.MltrailError)


@pytest.mark.slow
def test_the_domain_types_and_the_ab_package_come_with_import_mltrail():
    import subprocess
    import sys

    code = ("import mltrail; print(mltrail.ab.sample_size_conversion(0.1, 0.01).control, "
            "mltrail.Experiment.__name__, mltrail.Results.__name__, mltrail.ExperimentSpec.__name__, "
            "mltrail.ModelVersion.__name__, mltrail.FeatureStore.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["14745", "Experiment", "Results", "ExperimentSpec", "ModelVersion",
                                   "FeatureStore"]


def test_errors_form_one_tree_with_a_class_per_condition():
    assert issubclass(mltrail.RunStateError, mltrail.WrongStateError)
    assert issubclass(mltrail.UpstreamTimeoutError, mltrail.UpstreamError)
    for name in ("InvalidInputError", "NotFoundError", "AlreadyExistsError", "WrongStateError", "UpstreamError"):
        assert issubclass(getattr(mltrail, name), mltrail.MltrailError), name


def test_the_parts_share_one_verb_set_and_by_is_a_keyword(tmp_path):
    import inspect

    store = mltrail.Store(tmp_path / "s")
    for part in (store.ab, store.registry, store.features):
        for verb in ("list", "get", "exists"):
            assert callable(getattr(part, verb)), (type(part).__name__, verb)
        assert part.list().empty and part.exists("nothing") is False
    methods = [getattr(part, name) for part in (store.ab, store.registry, store.features)
               for name in dir(part) if not name.startswith("_")]
    methods += [getattr(mltrail.Experiment, name) for name in dir(mltrail.Experiment) if not name.startswith("_")]
    for method in methods:
        if callable(method) and "by" in inspect.signature(method).parameters:
            kind = inspect.signature(method).parameters["by"].kind
            assert kind is inspect.Parameter.KEYWORD_ONLY, method.__qualname__


@pytest.mark.slow
def test_import_mltrail_imports_no_training_library():
    """Autologging's libraries are imported when autolog is called, not by `import mltrail`;
    nor is MLflow by `mltrail.mlflow` (only an import through MLflow's client needs it)."""
    import subprocess
    import sys

    code = ("import sys, mltrail, mltrail.mlflow; mltrail.sklearn, mltrail.xgboost, mltrail.lightgbm; "
            "print(sorted(m for m in ('sklearn', 'xgboost', 'lightgbm', 'lightning', 'torch', 'mlflow')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_mltrail_lightning_without_lightning_names_the_extra():
    import subprocess
    import sys

    code = ("import sys; sys.modules['lightning'] = None; import mltrail\n"
            "try:\n    mltrail.lightning\nexcept ModuleNotFoundError as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("is missing): pip install 'mltrail[lightning]'")


def test_the_integrations_import_as_modules_as_mlflow_users_write_them():
    import mltrail.lightgbm
    import mltrail.sklearn
    import mltrail.xgboost
    from mltrail.integrations import lightgbm, sklearn, xgboost
    from mltrail.lightgbm import autolog as lightgbm_autolog
    from mltrail.lightgbm import callback as lightgbm_callback
    from mltrail.sklearn import autolog as sklearn_autolog
    from mltrail.xgboost import autolog as xgboost_autolog
    from mltrail.xgboost import callback as xgboost_callback

    assert (sklearn_autolog, xgboost_autolog, xgboost_callback, lightgbm_autolog, lightgbm_callback) == (
        sklearn.autolog, xgboost.autolog, xgboost.callback, lightgbm.autolog, lightgbm.callback)
    for name in ("sklearn", "xgboost", "lightgbm"):  # one module, however it was reached
        assert getattr(mltrail, name) is sys.modules[f"mltrail.{name}"], name


@pytest.mark.slow
def test_importing_the_integration_modules_imports_no_training_library():
    import subprocess

    code = ("import sys, mltrail.sklearn, mltrail.xgboost, mltrail.lightgbm\n"
            "from mltrail.sklearn import autolog\n"
            "print(sorted(m for m in ('sklearn', 'xgboost', 'lightgbm', 'lightning', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_import_mltrail_lightning_without_lightning_names_the_extra():
    import subprocess

    code = ("import sys; sys.modules['lightning'] = None\n"
            "try:\n    import mltrail.lightning\nexcept ModuleNotFoundError as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("is missing): pip install 'mltrail[lightning]'")


def test_mltrail_lightning_is_a_module_with_the_logger():
    pytest.importorskip("lightning", reason="pip install -e '.[lightning]' (torch and Lightning)")
    import mltrail.lightning
    from mltrail.integrations.lightning import MltrailLogger as logger
    from mltrail.lightning import MltrailLogger

    assert MltrailLogger is logger and mltrail.lightning is sys.modules["mltrail.lightning"]


HEAVY = ("statsmodels", "scipy", "duckdb", "fastapi", "streamlit", "uvicorn", "pandas", "pyarrow", "psutil",
         "httpx")  # (httpx: the remote client's, imported when a store at a URL is opened)


@pytest.mark.slow
def test_import_mltrail_and_logging_a_run_load_no_analysis_server_or_dashboard_library(tmp_path):
    """A training script's `import mltrail` and its run load only what logging needs: the
    A/B statistics, DuckDB, the server, the dashboard and the reading side (pandas,
    pyarrow) come on first use (benchmarks/bench_import.py measures the time it saves)."""
    code = (f"import sys, mltrail\nheavy = {HEAVY!r}\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "with mltrail.Store(sys.argv[1]).start_run('e', log_git=False, log_packages=False) as run:\n"
            "    run.log_params({'lr': 0.1}); run.log_metric('loss', 0.5, step=1); run.set_tag('t', 'v')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "mltrail.ab, mltrail.Experiment, mltrail.FeatureStore  # first use imports them\n"
            "print(sorted(m for m in ('statsmodels', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s")], capture_output=True, text=True,
                          check=True)
    assert done.stdout.splitlines() == ["[]", "[]", "['scipy', 'statsmodels']"]
    assert mltrail.Store(tmp_path / "s").search_runs()["metrics.loss"].tolist() == [0.5]


def test_every_lazily_exported_name_is_listed_by_dir():
    assert set(mltrail.__all__) <= set(dir(mltrail))
