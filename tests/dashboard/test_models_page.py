"""The dashboard's Models page under AppTest, on the sample store's registry."""

import shutil

import pytest
from streamlit.testing.v1 import AppTest

import mltrail
from mltrail.dashboard.lineage import lineage_dot, lineage_edges
from tests.factories import APP, REPO, chart_title


@pytest.fixture
def sample(tmp_path, monkeypatch):
    copy = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", copy, ignore=shutil.ignore_patterns(".cache"))
    monkeypatch.setenv("MLTRAIL_DIR", str(copy))
    return mltrail.Store(copy)


def models_page():
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("models.py").run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_models_page_shows_versions_aliases_history_and_lineage(sample):
    at = models_page()
    models = at.dataframe[0].value
    assert list(models.index) == ["churn"] and models.loc["churn", "versions"] == 2
    versions = at.dataframe[1].value
    assert list(versions["run_name"]) == ["logreg-C1", "gb-lr0.2"]
    run_id = sample.resolve_run("gb-lr0.2")
    assert versions.loc[2, "source"] == f"/run?run={run_id}"  # a link to the run page
    aliases = at.dataframe[2].value
    assert aliases.loc["production", "version"] == 2 and aliases.loc["candidate", "version"] == 2
    history = at.dataframe[3].value
    assert list(history["to_version"]) == [1, 2, 2] and "churn-offer-v2" in set(history["experiment"].dropna())
    assert [chart_title(c) for c in at.get("vega_lite_chart")] == ["aliases over time"]
    dot = at.get("graphviz_chart")[0].proto.spec
    assert '"run:gb-lr0.2" -> "v2"' in dot and '"ab:churn-offer-v2" -> "@production"' in dot


def test_lineage_links_experiments_to_the_version_they_tested(sample):
    edges = set(lineage_edges(sample, "churn"))
    # churn-offer-v2 started when production was v1 and candidate v2
    assert ("v1", "ab:churn-offer-v2", "control") in edges and ("v2", "ab:churn-offer-v2", "treatment") in edges
    # the timing experiment started after the promotion: both arms ran v2
    assert ("v2", "ab:churn-offer-timing", "control") in edges
    assert ("ab:churn-offer-v2", "@production", "promoted") in edges
    assert ("@production", "v2", "points at") in edges
    assert lineage_dot(sample, "churn").startswith("digraph lineage {")


@pytest.mark.slow
def test_models_page_without_models(dash_store):
    at = models_page()
    assert "No registered model yet" in at.info[0].value
