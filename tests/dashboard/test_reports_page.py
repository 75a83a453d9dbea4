"""The Reports page: the sample's review drawn with live data (its tables the API's numbers,
its charts, its value), a report written on the page saved as a file, and a wrong block
shown as a problem in its place."""

from __future__ import annotations

import shutil

import pytest

import mltrail
from mltrail.dashboard.text import md
from tests.factories import REPO, rendered_page


@pytest.fixture
def sample(tmp_path, monkeypatch):
    shutil.copytree(REPO / "sample_runs", tmp_path / "s", ignore=shutil.ignore_patterns("*.py", ".cache"))
    monkeypatch.setenv("MLTRAIL_DIR", str(tmp_path / "s"))
    return mltrail.Store(tmp_path / "s")


@pytest.mark.slow
def test_the_reports_page_draws_the_sample_review(sample):
    app = rendered_page("reports.py")
    assert not app.exception, [e.value for e in app.exception]
    assert app.selectbox(key="report").value == "churn-review"
    assert app.query_params["report"] == "churn-review"
    tables = app.dataframe
    assert len(tables) == 3
    expected = sample.search_runs("churn_model_mlops", "attributes.status = 'FINISHED'", ["metrics.`val/auc` DESC"],
                                  max_results=10)
    assert list(tables[0].value["run"]) == list(expected["run_name"])
    assert list(tables[0].value["val/auc"]) == list(expected["metrics.val/auc"])
    [value] = app.metric
    assert value.value == f"{expected['metrics.val/auc'].iloc[0]:,.6g}"
    assert len(app.get("vega_lite_chart")) == 2  # the saved view's two metrics, grouped by family
    assert not app.warning
    assert any(md("churn-review") in c.value for c in app.caption)


@pytest.mark.slow
def test_a_report_written_on_the_page_is_saved_and_drawn(sample):
    app = rendered_page("reports.py")
    [name] = [t for t in app.text_input if t.label == "Name"]
    name.set_value("quick-look")
    app.text_area[0].set_value("# Quick look\n\n```mltrail value\nstat: count\ncolumn: metrics.val/auc\n```\n\n"
                               "```mltrail runs\nfilter: metrics.val/auc >\n```\n")
    app.button[[b.label for b in app.button].index("Save report")].click().run()
    assert not app.exception, [e.value for e in app.exception]
    saved = sample.reports.get("quick-look")
    assert saved.title == "Quick look" and saved.author
    assert app.selectbox(key="report").value == "quick-look"
    [value] = app.metric
    assert value.value == str(len(sample.search_runs()))
    [problem] = app.warning
    assert md("line 12 (runs)") in problem.value  # in the file, under the author its save added
