"""The filter language: MLflow's grammar, the extensions, and exact error positions."""

import pytest

import mltrail
from mltrail import FilterSyntaxError
from tests.factories import quiet_run


@pytest.fixture
def populated(store):
    spec = [
        ("a", {"lr": 0.1, "opt": "adam", "layers": 2}, {"f1": 0.91, "loss": 0.2}, {"team": "growth"}),
        ("b", {"lr": 0.01, "opt": "sgd", "layers": 10}, {"f1": 0.75, "loss": 0.5}, {"team": "Growth-EU"}),
        ("c", {"lr": 0.001, "opt": "Adam"}, {"f1": 0.85}, {"team": "core", "note": "it's fine"}),
        ("d", {"lr": "auto", "opt": "adam"}, {"train/loss": 0.1, "f1 score": 0.5}, {}),
    ]
    for name, params, metrics, tags in spec:
        with quiet_run(store, "q", name=name, tags=tags) as run:
            run.log_params(params)
            run.log_metrics(metrics)
    with pytest.raises(RuntimeError):
        with quiet_run(store, "q", name="e") as run:
            run.log_param("lr", 0.5)
            raise RuntimeError
    return store


def names(store, filter, **kw):
    return sorted(store.search_runs(filter=filter, **kw)["run_name"])


@pytest.mark.slow
@pytest.mark.parametrize("filter,expected", [
    ("metrics.f1 > 0.8", ["a", "c"]),
    ("metrics.f1 >= 0.85", ["a", "c"]),
    ("metrics.f1 < 0.8", ["b"]),
    ("metrics.f1 <= 0.75", ["b"]),
    ("metrics.f1 = 0.75", ["b"]),
    ("metrics.f1 != 0.75", ["a", "c"]),  # runs without f1 never match, as in MLflow
    ("params.opt = 'adam'", ["a", "d"]),
    ('params.opt = "sgd"', ["b"]),
    ("params.opt != 'adam'", ["b", "c"]),
    ("params.lr = '0.1'", ["a"]),
    ("params.lr < 0.05", ["b", "c"]),  # numeric comparison of params; 'auto' does not match
    ("params.lr > '0.05'", ["a", "e"]),
    ("params.layers >= 3", ["b"]),
    ("params.layers = 10", ["b"]),
    ("params.opt LIKE 'ad%'", ["a", "d"]),
    ("params.opt ILIKE 'ad%'", ["a", "c", "d"]),
    ("params.opt NOT LIKE 'ad%'", ["b", "c"]),
    ("params.opt LIKE '_gd'", ["b"]),
    ("tags.team ILIKE 'growth%'", ["a", "b"]),
    ("tags.note = 'it''s fine'", ["c"]),
    ("params.opt IN ('sgd', 'Adam')", ["b", "c"]),
    ("params.opt NOT IN ('sgd', 'Adam')", ["a", "d"]),
    ("params.layers IN (2, 10)", ["a", "b"]),
    ("metrics.f1 > 0.9 OR params.opt = 'sgd'", ["a", "b"]),
    ("(metrics.f1 > 0.9 or metrics.f1 < 0.8) and tags.team LIKE 'gr%'", ["a"]),
    ("NOT params.opt = 'adam'", ["b", "c", "e"]),
    ("metrics.`f1 score` = 0.5", ["d"]),
    ('metrics."f1 score" = 0.5', ["d"]),
    ("metrics.train/loss < 0.2", ["d"]),
    ("attributes.status = 'FAILED'", ["e"]),
    ("attributes.status != 'FAILED'", ["a", "b", "c", "d"]),
    ("attributes.run_name IN ('a', 'b')", ["a", "b"]),
    ("tags.note IS NULL and params.opt = 'adam'", ["a", "d"]),
    ("tags.note IS NOT NULL", ["c"]),
    ("metric.f1 > 0.8 AND param.opt = 'adam'", ["a"]),
    ("attributes.start_time > 0", ["a", "b", "c", "d", "e"]),
    ("attributes.start_time < '2000-01-01'", []),
    ("", ["a", "b", "c", "d", "e"]),
])
def test_filters(populated, filter, expected):
    assert names(populated, filter) == expected


@pytest.mark.slow
@pytest.mark.parametrize("filter,position,fragment", [
    ("metrics.f1 >", 12, "ends too early"),
    ("metrics.f1 > 0.8 and", 20, "ends too early"),
    ("metrics.f1 > 0.8 params.x = 'a'", 17, "unexpected"),
    ("bogus.f1 > 1", 0, "unexpected"),
    ("metrics.f1 >> 1", 12, "unexpected"),
    ("(metrics.f1 > 1", 15, "ends too early"),
    ("metrics.f1 > 1)", 14, "unexpected"),
    ("params.a = 'unterminated", 11, "unexpected"),
])
def test_syntax_errors_name_the_position(populated, filter, position, fragment):
    with pytest.raises(FilterSyntaxError) as err:
        populated.search_runs(filter=filter)
    assert err.value.position == position
    assert fragment in str(err.value)
    assert isinstance(err.value, ValueError)


def test_semantic_errors_are_clear(populated):
    with pytest.raises(FilterSyntaxError, match="must be compared with a number"):
        populated.search_runs(filter="metrics.f1 = 'high'")
    with pytest.raises(FilterSyntaxError, match="unknown attribute 'colour'"):
        populated.search_runs(filter="attributes.colour = 'red'")


def test_filter_is_never_evaluated_as_python(populated):
    with pytest.raises(FilterSyntaxError):
        populated.search_runs(filter="__import__('os').system('echo hi')")


def test_order_by_and_max_results(populated):
    df = populated.search_runs(order_by=["metrics.f1 DESC"], max_results=3)
    assert list(df["run_name"]) == ["a", "c", "b"]
    df = populated.search_runs(order_by=["params.lr ASC"])
    assert list(df["run_name"])[:2] == ["c", "b"]  # numeric order, not text order
    df = populated.search_runs(order_by=["params.opt", "metrics.f1 DESC"])
    assert list(df["run_name"]) == ["c", "a", "d", "b", "e"]
    with pytest.raises(FilterSyntaxError):
        populated.search_runs(order_by=["f1 DESC"])


def test_default_order_is_newest_first(populated):
    assert list(populated.search_runs()["run_name"]) == ["e", "d", "c", "b", "a"]


def test_experiment_selection(store):
    for exp in ("x", "y", "z"):
        with quiet_run(store, exp) as run:
            run.log_metric(f"only_{exp}", 1.0)
    assert set(store.search_runs(experiment="x")["experiment"]) == {"x"}
    df = store.search_runs(experiment=["x", "y"])
    assert set(df["experiment"]) == {"x", "y"}
    assert "metrics.only_z" not in df.columns  # columns of other experiments are left out
    with pytest.raises(mltrail.NotFoundError, match=r"no experiment 'nope' .*experiments: 'x', 'y', 'z'"):
        store.search_runs(experiment="nope")
