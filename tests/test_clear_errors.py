"""Each a clear error instead of a traceback (issue 13, "smaller")."""

import pytest
from click.testing import CliRunner

import mltrail
from mltrail import ab
from mltrail.cli import main
from tests.factories import ab_spec, quiet_run


@pytest.fixture
def runs(store):
    with quiet_run(store, "e", name="r") as run:
        run.log_metric("x", 1.0)
    return store


@pytest.mark.parametrize("text,words", [
    ("not " * 500 + "metrics.x > 0", "too deeply"),
    ("attributes.start_time > 'garbage'", "must be compared with a time"),
    ("attributes.start_time > 1e309", "must be compared with a time"),
    ("attributes.end_time < '99999-01-01'", "must be compared with a time"),
    ("params.a = '\udcff'", "not Unicode text"),
])
def test_hostile_filters_are_filter_errors(runs, text, words):
    with pytest.raises(mltrail.FilterSyntaxError, match=words):
        runs.search_runs(filter=text)


def test_a_filter_with_a_byte_no_encoding_maps_is_one_line_on_the_cli(runs):
    result = CliRunner().invoke(main, ["runs", "-f", "params.a = '\udcff'", "--store", str(runs.root)])
    assert result.exit_code == 1 and "not Unicode text" in result.output


@pytest.mark.parametrize("call", [
    lambda: ab.sample_size_conversion(0.1, 1e-12),
    lambda: ab.sample_size_conversion(0.1, 0.01, alpha=0.9999999),
    lambda: ab.sample_size_continuous(1e-300, 1.0),
])
def test_a_sample_size_the_solver_cannot_find_is_an_input_error(call):
    with pytest.raises(mltrail.InvalidInputError, match="found no sample size"):
        call()


def test_the_power_command_says_so_in_one_line():
    result = CliRunner().invoke(main, ["ab", "power", "--baseline", "0.1", "--mde", "1e-12"])
    assert result.exit_code == 1 and "found no sample size" in result.output and "Traceback" not in result.output


def test_a_spec_whose_sample_size_cannot_be_found_is_refused(store):
    with pytest.raises(mltrail.InvalidInputError, match="found no sample size"):
        store.ab.create(ab_spec(mde=1e-12))
    assert store.ab.list().empty


@pytest.mark.parametrize("window", [{"end": 1e300}, {"start": float("nan")}, {"end": "9999-01-01"},
                                    {"end": "garbage"}])
def test_a_materialization_window_that_is_no_time_is_refused(store, window):
    with pytest.raises(mltrail.InvalidInputError, match="is not a time"):
        store.features.materialize(**window)
