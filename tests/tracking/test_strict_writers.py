"""Writers are strict: a value no reader could store is refused at the call, with
nothing written; the background flusher outlives any one buffer's fault (issue 13,
item 5, and the first part of item 7)."""

import time

import pytest

import mltrail
from mltrail.storage import background
from tests.factories import quiet_run, wait_for


@pytest.mark.parametrize("step", [2**63, -(2**63) - 1, 2**64 + 5])
def test_a_step_outside_int64_is_refused(store, step):
    with quiet_run(store) as run:
        with pytest.raises(mltrail.InvalidInputError, match="signed 64-bit"):
            run.log_metric("loss", 1.0, step=step)
        run.log_metric("loss", 1.0, step=2**63 - 1)  # the largest step is fine
    assert store.metric_history()["step"].tolist() == [2**63 - 1]


def test_a_value_outside_float_range_is_refused(store):
    with quiet_run(store) as run:
        with pytest.raises(mltrail.InvalidMetricValueError):
            run.log_metric("loss", 10**400)
        with pytest.raises(mltrail.InvalidMetricValueError):
            run.log_metrics({"a": 1.0, "b": 10**400})
    assert store.metric_history().empty  # log_metrics checks all before logging any


def test_logging_a_known_key_after_end_is_an_error_not_a_silent_drop(store):
    run = quiet_run(store)
    run.log_metric("loss", 1.0)
    run.end()
    with pytest.raises(mltrail.RunStateError, match="no more metrics"):
        run.log_metric("loss", 2.0)  # a key the run had logged before
    run.flush()  # nothing pending: no raw ValueError from a closed file
    assert store.metric_history()["value"].tolist() == [1.0]


class Failing:
    """A buffer whose flush fails with something other than an OSError."""

    def __init__(self):
        self.calls = 0

    def background_flush(self):
        self.calls += 1
        raise RuntimeError("a bug in one buffer")

    def describe(self):
        return "the failing buffer"


def test_the_background_flusher_outlives_a_failing_buffer(store, monkeypatch, caplog):
    monkeypatch.setenv("MLTRAIL_FLUSH_SECONDS", "0.05")
    failing = Failing()
    background.keep_flushed(failing)
    try:
        run = quiet_run(store)
        size = run.path.stat().st_size
        wait_for(lambda: failing.calls >= 2, timeout=10, what="two ticks with the failing buffer")
        run.log_metric("loss", 1.0)
        wait_for(lambda: run.path.stat().st_size > size, timeout=10, what="the healthy run to be flushed")
        run.end()
    finally:
        background.forget(failing)
    said = [r for r in caplog.records if r.name == "mltrail.storage.background" and r.levelname == "WARNING"]
    assert "could not flush the failing buffer: RuntimeError: a bug in one buffer" in said[0].getMessage()


@pytest.mark.parametrize("fields", [{"name": "bad\udce9"}, {"description": "x\udce9"},
                                    {"experiment_description": "\udce9"}, {"tags": {"k": "\udce9"}}])
def test_a_run_that_cannot_be_stored_leaves_no_file(store, fields):
    with pytest.raises(mltrail.InvalidInputError, match="surrogate"):
        quiet_run(store, "e", **fields)
    assert not list(store.root.rglob("*.jsonl"))  # no empty run file left behind


def test_an_experiment_name_of_four_byte_letters_fits_the_file_system(store):
    name = "𝓐" * 200  # 800 bytes of UTF-8: its folder name was too long for the file system
    with quiet_run(store, name) as run:
        run.log_metric("x", 1.0)
    assert len(run.path.parent.parent.name.encode()) <= 255
    assert list(store.search_runs(name)["experiment"]) == [name]


@pytest.mark.slow
def test_a_long_flush_period_once_set_does_not_hold_the_flusher_after_it_changes(store, monkeypatch):
    """The flusher slept one whole MLTRAIL_FLUSH_SECONDS: a period of an hour, set for a
    while (only a shutdown was to flush), kept every later run of the process off the disk."""
    monkeypatch.setenv("MLTRAIL_FLUSH_SECONDS", "3600")
    counting = Failing()  # a buffer whose ticks are counted (it raises: the flusher says so)
    background.keep_flushed(counting)
    try:
        background.flush_all_now()
        time.sleep(1.0)  # the thread is asleep on the long period now
        ticks = counting.calls
        monkeypatch.setenv("MLTRAIL_FLUSH_SECONDS", "0.05")
        wait_for(lambda: counting.calls >= ticks + 2, timeout=5, what="ticks on the new period")
    finally:
        background.forget(counting)
