"""The Compare page tells the truth (issue 17): the scatter draws a point per run, a run
keeps its colour across every chart, axes fit the data, parallel coordinates are labelled
with the real values."""

import json

import pyarrow as pa
import pytest

from tests.dashboard.test_pages import ids_by_name
from tests.factories import chart_title


def _spec(chart):
    return json.loads(chart.proto.spec)


def _rows(chart):
    rows = []
    for dataset in chart.proto.datasets:
        rows += pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()
    return rows


def _colour_scales(spec):
    """Every colour scale in a (possibly layered) spec."""
    found = []
    for layer in [spec, *spec.get("layer", [])]:
        colour = layer.get("encoding", {}).get("color")
        if colour and "scale" in colour:
            found.append(colour["scale"])
    return found


def _compare(app, dash_store, names):
    ids = ids_by_name(dash_store)
    app.session_state["selected_runs"] = [ids[n] for n in names]
    app.switch_page("compare.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return {chart_title(c) if isinstance(chart_title(c), str) else _spec(c).get("title"): c
            for c in app.get("vega_lite_chart")}


@pytest.mark.slow
def test_the_scatter_draws_a_point_per_run(app, dash_store):
    charts = _compare(app, dash_store, ["rf-4", "rf-8", "gb"])
    app.selectbox(key="scatter_x").set_value("params.max_depth").run()
    app.selectbox(key="scatter_y").set_value("metrics.auc").run()
    charts = {chart_title(c): c for c in app.get("vega_lite_chart")}
    scatter = charts["metrics.auc against params.max_depth"]
    points = [r for r in _rows(scatter) if r.get("x") is not None and r.get("y") is not None]
    assert sorted(r["run"] for r in points) == ["gb", "rf-4", "rf-8"]
    assert sorted(r["x"] for r in points) == [3, 4, 8]
    spec = _spec(scatter)
    assert spec["encoding"]["x"]["scale"]["zero"] is False and spec["encoding"]["y"]["scale"]["zero"] is False


@pytest.mark.slow
def test_a_run_keeps_its_colour_in_every_chart_and_colours_differ(app, dash_store):
    charts = _compare(app, dash_store, ["rf-4", "rf-8", "gb"])
    scales = [s for c in charts.values() for s in _colour_scales(_spec(c))]
    assert len(scales) >= 4  # two histories, parallel coordinates, scatter
    first = scales[0]
    assert all(s["domain"] == first["domain"] and s["range"] == first["range"] for s in scales)
    assert sorted(first["domain"]) == ["gb", "rf-4", "rf-8"] and len(set(first["range"])) == 3
    history = charts["auc"]
    assert _spec(history)["encoding"]["y"]["scale"]["zero"] is False  # 0.5-0.82 is not drawn against 0


@pytest.mark.slow
def test_parallel_coordinates_show_the_real_values(app, dash_store):
    _compare(app, dash_store, ["rf-4", "rf-8", "gb"])
    app.multiselect(key="parallel_params").set_value(["params.max_depth", "params.lr"]).run()
    chart = next(c for c in app.get("vega_lite_chart") if chart_title(c).startswith("params against"))
    labels = {r["label"] for r in _rows(chart) if "label" in r}
    assert {"3", "8", "0.1", "0.2"} <= labels  # each axis from its lowest to its highest real value
    assert "scaled value" not in json.dumps(_spec(chart))


@pytest.mark.slow
def test_two_runs_of_one_name_are_two_series(app, dash_store):
    import pandas as pd

    from mltrail.dashboard.views import series_names

    runs = pd.DataFrame({"run_id": ["01AAAAAAAAAA", "01BBBBBBBBBB", "01CCCCCCCCCC"], "run_name": ["x", "x", None]})
    names = series_names(runs)
    assert len(set(names.values())) == 3 and names["01AAAAAAAAAA"] == "x · 01AAAAAA"


def test_charts_of_runs_without_the_values_warn_of_nothing():
    """A param no chosen run logged (an empty column): no chart infers a type from it (on
    pandas 2.2 Altair warned, and Streamlit showed the warning as the page's exception)."""
    import warnings

    import pandas as pd

    from mltrail.dashboard import charts

    runs = pd.DataFrame({"run_id": ["a", "b"], "run_name": ["a", "b"], "params.x": [None, None],
                         "metrics.y": [1.0, None]})
    names = {"a": "a", "b": "b"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        charts.scatter(runs, "params.x", "metrics.y", names).to_dict()
        charts.parallel_coordinates(runs, ["params.x"], "metrics.y", names).to_dict()


@pytest.mark.slow
def test_compare_takes_a_parents_children_and_the_runs_page_groups_them(dash_store):
    from streamlit.testing.v1 import AppTest

    from tests.factories import APP, quiet_run

    with quiet_run(dash_store, "churn", name="cv") as parent:
        for fold in range(3):
            with quiet_run(dash_store, "churn", name=f"fold-{fold}") as child:
                child.log_metric("auc", 0.7 + fold / 100)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    table = at.dataframe[0].value
    assert "cv" in set(table["name"]) and not set(table["name"]) & {"fold-0", "fold-1", "fold-2"}
    assert table.set_index("name").loc["cv", "children"] == 3
    at.session_state["selected_runs"] = [parent.id]
    at.run()
    next(b for b in at.button if b.label.startswith("Show the 3 child runs of cv")).click().run()
    assert sorted(at.dataframe[0].value["name"]) == ["fold-0", "fold-1", "fold-2"]
    at.toggle(key="group_children").set_value(False).run()
    at.switch_page("compare.py").run()
    at.selectbox(key="compare_parent").set_value(parent.id).run()
    assert not at.exception, [e.value for e in at.exception]
    chosen = at.multiselect(key="compare_runs").value
    assert {c for c in chosen} >= set(dash_store.search_runs(filter=f"attributes.parent_run_id = '{parent.id}'")["run_id"])
