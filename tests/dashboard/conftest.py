
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import mltrail
from tests.factories import APP, quiet_run


@pytest.fixture(autouse=True)
def fresh_streamlit_caches():
    """Streamlit's caches live as long as the process: each test starts without them."""
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def dash_store(tmp_path, monkeypatch):
    """A small store: three churn runs over 5 steps, one failed run, one other experiment."""
    store = mltrail.Store(tmp_path / "dash")
    for name, depth, lr in (("rf-4", 4, 0.1), ("rf-8", 8, 0.1), ("gb", 3, 0.2)):
        with quiet_run(store, "churn", name=name, experiment_description="churn study") as run:
            run.log_params({"max_depth": depth, "lr": lr, "seed": 7}, group="model")
            for step in range(5):
                run.log_metrics({"loss": 1 / (step + depth), "auc": 0.5 + step * depth / 100}, step=step)
    with pytest.raises(RuntimeError):
        with quiet_run(store, "churn", name="broken") as run:
            raise RuntimeError("out of memory")
    with quiet_run(store, "other", name="solo") as run:
        run.log_metric("x", 1.0)
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    return store


@pytest.fixture
def app(dash_store):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at
