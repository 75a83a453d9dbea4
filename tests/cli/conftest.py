import pytest

from tests.factories import quiet_run


@pytest.fixture
def cli_store(store):
    """Two churn runs, rf and lr, for the commands to read."""
    with quiet_run(store, "churn", name="rf", experiment_description="churn study") as run:
        run.log_params({"n_estimators": 100, "max_depth": 5}, group="model")
        run.log_metric("f1", 0.8)
    with quiet_run(store, "churn", name="lr") as run:
        run.log_params({"n_estimators": 100, "max_depth": 3}, group="model")
        run.log_metric("f1", 0.7)
    return store
