"""Grouped curves on the Runs and Compare pages: 200 runs in 4 groups draw 4 lines and 4
bands, whose numbers are what pandas computes from the runs' points."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mltrail
from tests.dashboard.test_compare_truth import _rows
from mltrail.dashboard.text import md
from tests.factories import quiet_run, rendered_page

LRS = [0.1, 0.03, 0.01, 0.003]


@pytest.fixture
def sweep_store(tmp_path, monkeypatch):
    store = mltrail.Store(tmp_path / "sweep")
    rng = np.random.default_rng(3)
    for i in range(200):
        lr = LRS[i % 4]
        with quiet_run(store, "sweep", name=f"seed-{i}", log_system=False) as run:
            run.log_params({"lr": lr, "seed": i})
            for step in range(8):
                run.log_metric("loss", float(np.exp(-lr * 20 * step) + rng.normal(0, 0.05)), step=step)
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    return store


def _expected(store):
    runs = store.search_runs("sweep")
    lr = dict(zip(runs["run_id"], runs["params.lr"]))
    history = store.metric_history(list(runs["run_id"]), ["loss"])
    history["group"] = "lr=" + history["run_id"].map(lr).astype(str)
    return history.groupby(["group", "step"])["value"].agg(["mean", "std"])


def _grouped_chart(app):
    [chart] = [c for c in app.get("vega_lite_chart") if "mean ± std" in str(json.loads(c.proto.spec).get("title"))]
    return chart


def _check(chart, store):
    spec = json.loads(chart.proto.spec)
    assert [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]] \
        == ["area", "line"]  # a band under each line, one per group (the colour by group)
    rows = _rows(chart)
    assert {r["group"] for r in rows} == {f"lr={lr}" for lr in LRS}
    expected = _expected(store)
    for row in rows:
        mean, std = expected.loc[(row["group"], int(row["x"]))]
        assert row["mean"] == pytest.approx(mean) and row["high"] - row["mean"] == pytest.approx(std)
        assert row["runs"] == 50
    assert len(rows) == 4 * 8


@pytest.mark.slow
def test_the_runs_page_groups_its_runs_by_a_param(sweep_store):
    app = rendered_page("runs.py")
    assert not app.exception, [e.value for e in app.exception]
    app.multiselect(key="runs_group_by").set_value(["params.lr"]).run()
    assert not app.exception, [e.value for e in app.exception]
    _check(_grouped_chart(app), sweep_store)
    assert any("200 runs in 4 groups" in c.value for c in app.caption)


@pytest.mark.slow
def test_the_compare_page_groups_the_picked_runs(sweep_store):
    app = rendered_page("compare.py", selected_runs=list(sweep_store.search_runs("sweep")["run_id"]))
    app.multiselect(key="compare_group_by").set_value(["params.lr"]).run()
    assert not app.exception, [e.value for e in app.exception]
    _check(_grouped_chart(app), sweep_store)
    app.radio(key="compare_grouped_band").set_value("minmax").run()
    [chart] = [c for c in app.get("vega_lite_chart") if "min–max" in str(json.loads(c.proto.spec).get("title"))]
    assert {r["group"] for r in _rows(chart)} == {f"lr={lr}" for lr in LRS}


@pytest.mark.slow
def test_a_saved_view_opens_on_the_runs_page_with_its_filter_and_grouped_charts(sweep_store):
    sweep_store.views.save("fast-lrs", experiments=["sweep"], filter="params.lr != '0.003'",
                           columns=["params.lr"], charts=["loss"], group_by=["params.lr"], band="minmax",
                           description="the three fast rates", by="ana")
    app = rendered_page("runs.py")
    app.selectbox(key="saved_view").set_value("fast-lrs").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.text_input(key="filter").value == "params.lr != '0.003'"
    assert app.selectbox(key="experiment").value == "sweep"
    assert app.multiselect(key="runs_group_by").value == ["params.lr"]
    assert app.multiselect(key="runs_grouped_metrics").value == ["loss"]
    assert any("150 runs in 3 groups" in c.value for c in app.caption)
    [chart] = [c for c in app.get("vega_lite_chart") if "min–max" in str(json.loads(c.proto.spec).get("title"))]
    assert {r["group"] for r in _rows(chart)} == {f"lr={lr}" for lr in LRS[:3]}
    assert any(md("fast-lrs") in c.value and "ana" in c.value for c in app.caption)
    app.selectbox(key="saved_view").set_value("(none)").run()  # back to the page's own defaults
    assert app.text_input(key="filter").value == ""


@pytest.mark.slow
def test_the_runs_page_saves_what_it_shows_as_a_view(sweep_store):
    app = rendered_page("runs.py")
    app.text_input(key="filter").set_value("params.lr != '0.1'").run()
    app.multiselect(key="runs_group_by").set_value(["params.lr"]).run()
    app.radio(key="runs_grouped_x").set_value("time").run()
    [name] = [t for t in app.text_input if t.label == "Name"]
    name.set_value("slow-lrs")  # (sent with the form's submit)
    app.button[[b.label for b in app.button].index("Save view")].click().run()
    assert not app.exception, [e.value for e in app.exception]
    saved = sweep_store.views.get("slow-lrs")
    assert (saved.experiments, saved.filter, saved.group_by, saved.x, saved.charts) == (
        [], "params.lr != '0.1'", ["params.lr"], "time", ["loss"])
    assert app.query_params["view"] == "slow-lrs"
