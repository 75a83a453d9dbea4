"""Every page under Streamlit's AppTest, asserting on what it shows."""

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.factories import APP, chart_series, chart_title


def ids_by_name(store):
    runs = store.search_runs()
    return dict(zip(runs["run_name"], runs["run_id"]))


@pytest.mark.slow
def test_runs_page_lists_every_run(app):
    table = app.dataframe[0].value
    assert set(table["name"]) == {"rf-4", "rf-8", "gb", "broken", "solo"}
    assert "● FAILED" in set(table["status"])
    assert {"params.max_depth", "metrics.auc", "metrics.loss"} <= set(table.columns)
    assert "params.seed" not in table.columns  # equal in every run: not a default column


@pytest.mark.slow
def test_experiment_picker_shows_descriptions_and_narrows(app):
    picker = app.selectbox(key="experiment")
    assert "churn" in picker.options[1] and "churn study" in picker.options[1]
    picker.set_value("churn").run()
    assert set(app.dataframe[0].value["name"]) == {"rf-4", "rf-8", "gb", "broken"}


@pytest.mark.slow
def test_filter_narrows_and_bad_filter_shows_the_parser_message(app):
    app.text_input(key="filter").input("params.max_depth >= 8 or metrics.x = 1").run()
    assert set(app.dataframe[0].value["name"]) == {"rf-8", "solo"}
    app.text_input(key="filter").input("metrics.auc >").run()
    assert not app.exception
    assert app.error[0].value == "The filter or the order does not parse."
    assert "invalid filter at position 13" in app.code[0].value


@pytest.mark.slow
def test_column_chooser(app):
    app.multiselect(key="columns").set_value(["params.lr"]).run()
    table = app.dataframe[0].value
    assert "params.lr" in table.columns and "metrics.auc" not in table.columns


@pytest.mark.slow
def test_compare_draws_one_series_per_selected_run(app, dash_store):
    ids = ids_by_name(dash_store)
    app.session_state["selected_runs"] = [ids["rf-4"], ids["gb"]]  # as ticking two rows does
    app.run()
    assert "**Selected:** rf\\-4, gb" in [m.value for m in app.markdown]  # (names escaped: shown as text)
    app.switch_page("compare.py").run()
    assert not app.exception
    history = [c for c in app.get("vega_lite_chart") if chart_title(c) in ("loss", "auc")]
    assert {chart_title(c) for c in history} == {"loss", "auc"}
    for chart in history:
        assert chart_series(chart) == {"rf-4", "gb"}
    table = app.dataframe[0].value
    assert "params.max_depth" in table.index and "params.seed" not in table.index  # differences only
    app.toggle(key="differences_only").set_value(False).run()
    assert "params.seed" in app.dataframe[0].value.index


@pytest.mark.slow
def test_compare_smoothing_and_log_scale_run(app, dash_store):
    ids = ids_by_name(dash_store)
    app.session_state["selected_runs"] = [ids["rf-4"], ids["rf-8"]]
    app.switch_page("compare.py").run()
    app.slider(key="smoothing").set_value(0.6).run()
    app.toggle(key="log_scale").set_value(True).run()
    app.radio(key="x_axis").set_value("timestamp").run()
    assert not app.exception
    assert len(app.get("vega_lite_chart")) >= 4  # histories, parallel coordinates, scatter


@pytest.mark.slow
def test_clear_selection(app, dash_store):
    app.session_state["selected_runs"] = [ids_by_name(dash_store)["gb"]]
    app.run()
    app.button(key="clear_selection").click().run()
    assert "**Selected:** none" in [m.value for m in app.markdown]


@pytest.mark.slow
def test_compare_without_selection_says_what_to_do(app):
    app.switch_page("compare.py").run()
    assert "Pick runs" in app.info[0].value


@pytest.mark.slow
def test_run_page_shows_one_run(app, dash_store):
    ids = ids_by_name(dash_store)
    app.session_state["selected_runs"] = [ids["rf-8"]]
    app.switch_page("run.py").run()
    assert not app.exception
    markdown = " ".join(m.value for m in app.markdown)
    assert "rf\\-8" in markdown and "model" in markdown  # (names escaped: shown as text)
    assert "no git commit was recorded" in app.code[-1].value  # the reproduce script
    metrics = app.dataframe[1].value
    assert set(metrics.index) == {"auc", "loss"}
    assert {chart_title(c) for c in app.get("vega_lite_chart")} == {"auc", "loss"}


@pytest.mark.slow
def test_run_page_shows_a_failure(app, dash_store):
    app.session_state["selected_runs"] = [ids_by_name(dash_store)["broken"]]
    app.switch_page("run.py").run()
    assert app.error[0].value == "The run failed"
    assert "out of memory" in app.code[0].value


@pytest.mark.slow
def test_live_page_shows_running_and_crashed_runs(dash_store, monkeypatch):
    from tests.factories import quiet_run

    live = quiet_run(dash_store, "churn", name="training")
    live.log_metric("loss", 0.5)
    live.flush()
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("live.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["name"]) == ["training"] and list(table["status"]) == ["● RUNNING"]
    monkeypatch.setenv("MLTRAIL_CRASH_AFTER_SECONDS", "0")
    st.cache_resource.clear()  # the Store (and its crash_after) is made once per process
    st.cache_data.clear()  # and searches are cached for STATUS_SECONDS
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("live.py").run()
    assert list(at.dataframe[0].value["status"]) == ["● CRASHED"]
    live.end()


@pytest.mark.slow
def test_missing_store_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_DIR", str(tmp_path / "nothing-here"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert "no mltrail store" in at.error[0].value


@pytest.mark.slow
def test_a_big_table_is_shown_a_page_at_a_time(app, monkeypatch):
    monkeypatch.setattr("mltrail.dashboard.views.PAGE_ROWS", 2)
    app.run()
    newest_first = list(app.dataframe[0].value["name"])
    assert len(newest_first) == 2 and "2 a page" in app.caption[0].value and "5 runs" in app.caption[0].value
    app.number_input(key="page").set_value(3).run()
    assert len(app.dataframe[0].value) == 1
    app.text_input(key="filter").input("params.max_depth >= 4").run()  # two runs: one page
    assert not app.exception and not app.number_input
    assert set(app.dataframe[0].value["name"]) == {"rf-4", "rf-8"}
    app.text_input(key="filter").input("").run()
    assert app.number_input(key="page").value == 1 and list(app.dataframe[0].value["name"]) == newest_first


@pytest.mark.slow
def test_a_running_run_is_asked_to_stop_from_the_live_and_run_pages(dash_store, monkeypatch):
    from tests.factories import quiet_run

    monkeypatch.setenv("MLTRAIL_USER", "watcher")
    job = quiet_run(dash_store, "churn", name="training")
    job.log_metric("loss", 0.5)
    job.flush()
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("live.py").run()
    assert at.selectbox(key="live_stop_run").options == ["training"]
    at.text_input(key="live_stop_reason").input("loss diverged")
    at.button[0].click().run()
    assert not at.exception and "Asked training to stop" in at.success[0].value
    job.background_flush()  # the training process's flusher looks for requests
    assert job.stop_reason == "stop requested by watcher: loss diverged"

    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("run.py")
    at.query_params["run"] = job.id
    at.run()
    assert at.selectbox(key="run_stop_run").options == ["training"]
    job.end()  # it saw the request and ended: the page says so, with no stop form
    at.run()
    assert at.warning[0].value == "The run was stopped"
    assert at.code[0].value == "stop requested by watcher: loss diverged"
    assert "run_stop_run" not in [box.key for box in at.selectbox]


@pytest.mark.slow
def test_the_runs_view_lives_in_the_address(dash_store):
    """A filtered, sorted view with chosen columns opens from a shared link, and the
    address follows the widgets."""
    from streamlit.testing.v1 import AppTest

    from tests.factories import APP

    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["experiment"] = "churn"
    at.query_params["filter"] = "metrics.auc > 0.5"
    at.query_params["order"] = "params.max_depth DESC"
    at.query_params["column"] = ["params.max_depth", "metrics.auc"]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="experiment").value == "churn" and at.text_input(key="filter").value == "metrics.auc > 0.5"
    table = at.dataframe[0].value
    assert list(table["name"]) == ["rf-8", "rf-4", "gb"]  # by max_depth, highest first; the failed run filtered out
    assert [c for c in table.columns if c.startswith(("params.", "metrics."))] == ["params.max_depth", "metrics.auc"]
    at.text_input(key="filter").input("metrics.auc > 0.6").run()
    assert at.query_params["filter"] == "metrics.auc > 0.6"
    at.text_input(key="order").input("metrics.auc SIDEWAYS").run()
    assert not at.exception and "does not parse" in " ".join(e.value for e in at.error)


@pytest.mark.slow
def test_run_page_charts_system_metrics_apart_over_time(app, dash_store):
    from tests.factories import quiet_run
    with quiet_run(dash_store, "churn", name="sampled") as run:
        run.log_metric("loss", 0.5)
        for step in range(3):
            run.log_metrics({"system/cpu_utilization_percentage": 10.0 + step,
                             "system/system_memory_usage_megabytes": 900.0}, step=step)
    app.query_params["run"] = run.id
    app.switch_page("run.py").run()
    assert not app.exception
    assert [s.value for s in app.subheader][:3] == ["Params", "Metrics", "System metrics"]
    assert set(app.dataframe[0].value.index) == {"loss"}  # the table holds the model's metrics only
    titles = [chart_title(c) for c in app.get("vega_lite_chart")]
    assert titles == ["loss", "system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"]


SYSTEM_KEYS = ["system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
               "system/system_memory_usage_percentage", "system/disk_usage_percentage",
               "system/disk_usage_megabytes", "system/disk_available_megabytes",
               "system/network_receive_megabytes", "system/network_transmit_megabytes"]


@pytest.mark.slow
def test_runs_table_defaults_to_the_runs_own_metrics_not_system_ones(tmp_path, monkeypatch):
    """With system metrics on, eight ``system/*`` columns sort before ``val/*``: the
    defaults show the run's own metrics, and the system ones stay selectable."""
    from mltrail import Store
    from tests.factories import quiet_run

    store = Store(tmp_path / "s")
    with quiet_run(store, "e", name="sampled") as run:
        run.log_metrics({"val/auc": 0.9, "val/loss": 0.2})
        run.log_metrics(dict.fromkeys(SYSTEM_KEYS, 1.0))
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert at.multiselect(key="columns").value == ["metrics.val/auc", "metrics.val/loss"]
    assert {f"metrics.{k}" for k in SYSTEM_KEYS} <= set(at.multiselect(key="columns").options)


@pytest.mark.slow
def test_the_run_picker_shows_a_new_name_after_a_rename(app, dash_store):
    """A browser holds the picked option as its label: after a rename, the page must send
    the new one with the value (AppTest formats the value itself, so the test reads the
    message the browser gets)."""
    ids = ids_by_name(dash_store)
    app.query_params["run"] = ids["gb"]
    app.switch_page("run.py").run()
    assert app.selectbox(key="run_choice").value == ids["gb"]
    dash_store.set_run_name(ids["gb"], "boosted")
    app.run()
    assert not app.exception
    picker = app.selectbox(key="run_choice").proto
    assert "churn / boosted" in picker.options and "churn / gb" not in picker.options
    assert picker.set_value and picker.raw_value == "churn / boosted"
    app.run()  # and once told, it is not told again on every render
    assert not app.selectbox(key="run_choice").proto.set_value


@pytest.mark.slow
def test_the_filter_example_names_the_stores_own_columns(app, tmp_path, monkeypatch):
    example = app.text_input(key="filter").placeholder
    assert example == "metrics.auc > 0.66 and params.lr = '0.1'"  # above the median auc, the common lr
    assert app.text_input(key="order").placeholder == "metrics.auc DESC"
    app.text_input(key="filter").input(example).run()  # it parses, and means something here
    assert set(app.dataframe[0].value["name"]) == {"rf-8"}
    from mltrail import Store
    from tests.factories import quiet_run

    bare = Store(tmp_path / "bare")
    with quiet_run(bare, "e", name="nothing-logged"):
        pass
    monkeypatch.setenv("MLTRAIL_DIR", str(bare.root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert at.text_input(key="filter").placeholder == "metrics.accuracy > 0.9 and params.model = 'baseline'"
    assert at.text_input(key="order").placeholder == "attributes.start_time DESC"
    at.text_input(key="order").input("attributes.start_time DESC").run()
    assert not at.exception and not at.error


@pytest.mark.slow
def test_one_run_is_one_run(app, dash_store):
    app.selectbox(key="experiment").set_value("other").run()
    assert app.caption[0].value.startswith("1 run in other ·")
    app.session_state["selected_runs"] = [ids_by_name(dash_store)["solo"]]
    app.run()
    assert [link.label for link in app.get("page_link") if "Compare" in link.label] == ["Compare 1 run"]
