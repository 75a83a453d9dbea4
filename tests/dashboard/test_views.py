import math

import pandas as pd
import pytest

from mltrail.dashboard import views


def test_smoothing_is_a_debiased_moving_average_per_series():
    history = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 3, "key": ["m"] * 6,
                            "step": [0, 1, 2] * 2, "value": [1.0, 0.0, 0.0, 5.0, 5.0, 5.0]})
    smoothed = views.smooth(history, 0.5)
    a = list(smoothed[smoothed.run_id == "a"]["value"])
    assert a[0] == 1.0 and a[1] == pytest.approx(1 / 3) and a[2] == pytest.approx(1 / 7)
    assert list(smoothed[smoothed.run_id == "b"]["value"]) == [5.0, 5.0, 5.0]
    assert views.smooth(history, 0.0) is history
    with pytest.raises(ValueError):
        views.smooth(history, 1.0)


def _details(run_id, name, params, metrics):
    return {"run": {"run_id": run_id, "run_name": name},
            "params": pd.DataFrame({"key": list(params), "value": list(params.values())}),
            "metrics": pd.DataFrame({"key": list(metrics), "value": list(metrics.values())})}


def test_compare_table_marks_missing_and_hides_equal_rows():
    details = {"1": _details("1", "a", {"lr": "0.1", "seed": "7"}, {"f1": 0.5}),
               "2": _details("2", "b", {"lr": "0.2", "seed": "7"}, {"f1": math.nan, "x": 1.0})}
    full = views.compare_table(details, differences_only=False)
    assert list(full.index) == ["metrics.f1", "metrics.x", "params.lr", "params.seed"]
    assert full.loc["metrics.x", "a (1)"] == "—" and full.loc["metrics.f1", "b (2)"] == "—"
    diff = views.compare_table(details, differences_only=True)
    assert "params.seed" not in diff.index and "params.lr" in diff.index


def test_the_run_table_shows_names_first_whole_seconds_and_a_running_runs_elapsed_time():
    import pandas as pd

    from mltrail.dashboard import views

    start = pd.Timestamp("2026-11-27 10:00:00.123456", tz="UTC")
    runs = pd.DataFrame({"run_id": ["01AAAAAAAAAAAAAAAAAAAAAAAA", "01BBBBBBBBBBBBBBBBBBBBBBBB"],
                         "run_name": ["done", "training"], "experiment": ["e", "e"],
                         "status": ["FINISHED", "RUNNING"], "start_time": [start, pd.Timestamp.now(tz="UTC")],
                         "end_time": [start + pd.Timedelta("0.5s"), pd.NaT], "metrics.loss": [0.25, 0.5]})
    table = views.run_table(runs, ["metrics.loss"])
    assert list(table.columns) == ["status", "name", "experiment", "start", "duration (s)", "metrics.loss", "run"]
    assert table["start"].iloc[0] == pd.Timestamp("2026-11-27 10:00:00")  # no microseconds
    assert table["duration (s)"].iloc[0] == 0.5 and table["duration (s)"].iloc[1] >= 0  # elapsed, not None
    assert table["run"].iloc[0] == "01AAAAAAAA"
    html = views.styled(table).to_html()
    assert 'row0 col4" >0.5<' in html and ">0.2500<" in html  # seconds to a tenth; metrics to four places


def test_the_alias_timeline_labels_time_in_whole_seconds_and_versions_as_integers():
    import pandas as pd

    from mltrail.dashboard import charts

    moves = pd.DataFrame({"time": pd.to_datetime(["2026-11-27 10:00:00.2", "2026-11-27 10:00:00.6"], utc=True),
                          "alias": ["production", "production"], "action": ["set", "set"],
                          "from_version": pd.array([None, 1], dtype="Int64"), "to_version": pd.array([1, 2], dtype="Int64"),
                          "by": ["a", "b"], "reason": [None, "better"], "experiment": [None, None]})
    spec = charts.alias_timeline(moves).to_dict()
    encoding = spec["layer"][0]["encoding"]
    assert encoding["x"]["axis"]["format"] == "%Y-%m-%d %H:%M:%S" and encoding["y"]["axis"]["format"] == "d"


def test_counted_pluralises():
    from mltrail.dashboard.views import counted

    assert [counted(n, "run") for n in (0, 1, 2, 1500)] == ["0 runs", "1 run", "2 runs", "1,500 runs"]


def test_the_filter_example_quotes_what_the_filter_language_needs_and_parses():
    from mltrail.dashboard.views import filter_example
    from mltrail.query.filter import parse_filter

    runs = pd.DataFrame({"run_id": ["a", "b"], "metrics.f1 score": [0.5, float("inf")],
                         "metrics.system/cpu_utilization_percentage": [1.0, 2.0], "params.it's": ["x'y", "x'y"]})
    example = filter_example(runs)
    assert example == "metrics.`f1 score` > 0.5 and params.`it's` = 'x''y'"  # inf left out of the median
    parse_filter(example)


def test_blank_missing_keeps_the_type_of_columns_without_gaps():
    from mltrail.dashboard.views import blank_missing

    table = blank_missing(pd.DataFrame({"full": [1.0, 2.0], "gap": [0.25, None], "text": ["a", None]}))
    assert table["full"].dtype == float
    assert list(table["gap"]) == ["0.25", "—"] and list(table["text"]) == ["a", "—"]


def test_percent_missing_formats_only_lift_columns_with_a_gap():
    table = views.percent_missing(pd.DataFrame({"lift": [None, 0.0523], "full": [0.1, 0.2]}), ("lift", "full"))
    assert list(table["lift"]) == ["—", "5.23%"] and table["full"].dtype == float


@pytest.mark.parametrize("steps,x,averaged", [
    (range(1000), "step", True),  # buckets of 16 steps
    (range(50), "step", False),  # each step its own bucket
    (range(5000, 5060), "step", False),  # ... wherever the steps begin
    (range(50), "time", False),
    (range(1000), "time", True),
])
def test_the_grouped_caption_says_when_points_were_averaged(store, steps, x, averaged):
    groups = {}
    for i in range(2):
        with store.start_run("g", log_git=False, log_packages=False) as run:
            for step in steps:
                run.log_metric("loss", float(step + i), step=step, timestamp=1_790_000_000 + step)
        groups[run.id] = f"g{i}"
    frame = store.grouped_history(groups, ["loss"], x=x, points=100)
    caption = views.groups_caption(groups, frame, 100, x)
    assert caption.startswith("2 runs in 2 groups")
    assert ("averaged into at most 100 buckets" in caption) is averaged
