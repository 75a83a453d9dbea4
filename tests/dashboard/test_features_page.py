"""The dashboard's Features page under AppTest."""

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.factories import APP


def features_page():
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("features.py").run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_features_page_shows_views_and_freshness(dash_store, tmp_path):
    now = pd.Timestamp.now(tz="UTC")
    pd.DataFrame({"driver_id": [1, 2], "ts": [now - pd.Timedelta("3h"), now - pd.Timedelta("10min")],
                  "rate": [0.1, 0.2]}).to_parquet(tmp_path / "d.parquet")
    pd.DataFrame({"driver_id": [1], "ts": [now - pd.Timedelta("2D")], "x": [1.0]}).to_parquet(tmp_path / "old.parquet")
    fs = dash_store.features
    fs.apply_entity("driver", join_keys=["driver_id"])
    fs.apply_view("recent", entity="driver", source=tmp_path / "d.parquet", timestamp_field="ts", ttl="1h",
                  features={"rate": "float"})
    fs.apply_view("stale", entity="driver", source=tmp_path / "old.parquet", timestamp_field="ts", ttl="1h",
                  features={"x": "float"})
    fs.apply_view("never", entity="driver", source=tmp_path / "old.parquet", timestamp_field="ts",
                  features={"x": "float"})
    fs.materialize(views=["recent", "stale"])
    at = features_page()
    metrics = {m.label: (m.value, m.delta) for m in at.metric}
    assert metrics["recent"] == ("0.2 h", "within its ttl")
    assert metrics["stale"][1] == "older than its ttl" and metrics["never"][0] == "not materialized"
    table = at.dataframe[0].value
    assert table.loc["recent", "online_keys"] == 2 and table.loc["never", "online_keys"] == 0
    for frame in (table, at.dataframe[1].value):  # a view never materialized: "—", not "None"
        assert not frame.isna().any().any(), frame[frame.isna().any(axis=1)]
    assert table.loc["never", "materialized_until"] == "—"


@pytest.mark.slow
def test_features_page_without_views(dash_store):
    assert "No feature view yet" in features_page().info[0].value
