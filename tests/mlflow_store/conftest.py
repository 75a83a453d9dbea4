"""MLflow's own client against mltrail: each test leaves MLflow's process-wide state (the
tracking URI, active runs, the stores it built) as it found it."""

import pytest

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(autouse=True)
def mlflow_state(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
                 "MLFLOW_TRACKING_PASSWORD", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    mlflow.tracking.fluent._active_experiment_id = None


@pytest.fixture
def client(tmp_path):
    """MLflow's client (and its fluent API) on a fresh mltrail folder."""
    uri = f"mltrail:{tmp_path / 'runs'}"
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(uri)
