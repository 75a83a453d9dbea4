"""Exposure and feedback logs: strict input, refused when not running, many writers."""

import json

import orjson
import pytest

from mltrail import InvalidInputError, WrongStateError
from mltrail.ab import logging as ablog
from tests.factories import AB_SPEC, spawn_python


@pytest.fixture
def running(store):
    return store.ab.create(AB_SPEC).start()


def lines(folder):
    return [orjson.loads(line) for path in sorted(folder.glob("*.jsonl"))
            for line in path.read_bytes().splitlines()]


def test_exposures_and_feedback_are_written_at_flush(running):
    running.log_exposure("u1", "control")
    running.log_feedback("u1", "conversion", 1)
    running.log_feedback("u1", "latency_ms", 12.5)
    running.log.flush()
    events = lines(running.log.folder)
    assert [e["type"] for e in events] == ["exposure", "feedback", "feedback"]
    assert events[0]["variant"] == "control" and events[0]["phase"] == 1
    assert events[1]["value"] == 1.0 and [e["seq"] for e in events] == [1, 2, 3]


@pytest.mark.parametrize("call,message", [
    (lambda e: e.log_exposure("u1", "nope"), "unknown variant"),
    (lambda e: e.log_exposure("", "control"), "unit id"),
    (lambda e: e.log_exposure(7, "control"), "unit id"),
    (lambda e: e.log_feedback("u1", "revenue", 3.0), "unknown metric"),
    (lambda e: e.log_feedback("u1", "conversion", "yes"), "needs a number"),
    (lambda e: e.log_feedback("u1", "conversion", float("nan")), "finite"),
    (lambda e: e.log_feedback("u1", "latency_ms", 1e300), "at most 1e\\+144"),
    (lambda e: e.log_feedback("u1", "latency_ms", -(10**200)), "at most 1e\\+144"),
    (lambda e: e.log.log_exposure("u1", "control", phase=0), "a phase is a number"),
    (lambda e: e.log.log_exposure("u1", "control", phase=2**63), "a phase is a number"),
    (lambda e: e.log.log_exposure("u1", "control", phase="1"), "a phase is a number"),
])
def test_bad_log_calls_are_clear_errors_and_write_nothing(running, call, message):
    with pytest.raises(InvalidInputError, match=message):
        call(running)
    running.log.flush()
    assert not running.log.folder.exists() or lines(running.log.folder) == []


@pytest.mark.parametrize("clock", [1.7e15, -1.0, float("nan")])
def test_a_clock_outside_the_times_readers_take_writes_nothing(running, monkeypatch, clock):
    """A time in microseconds once broke every results() of the experiment."""
    monkeypatch.setattr(ablog, "_time", lambda: clock)
    with pytest.raises(InvalidInputError, match="clock says"):
        running.log_exposure("u1", "control")
    with pytest.raises(InvalidInputError, match="clock says"):
        running.log_feedback("u1", "conversion", 1.0)
    running.log.flush()
    assert not running.log.folder.exists() or lines(running.log.folder) == []


def test_exposures_are_refused_once_paused_or_stopped(store, monkeypatch):
    monkeypatch.setattr(ablog, "STATE_RECHECK_SECONDS", 0.0)
    exp = store.ab.create(AB_SPEC)
    with pytest.raises(WrongStateError, match="not running"):
        exp.log_exposure("u1", "control")  # a draft
    exp = exp.start()
    exp.log_exposure("u1", "control")
    store.ab.get(AB_SPEC["key"]).pause()  # from elsewhere: the dashboard, the CLI
    with pytest.raises(WrongStateError, match="not running"):
        exp.log_exposure("u2", "control")
    exp.log_feedback("u1", "conversion", 1.0)  # late feedback is still recorded


def test_segments_rotate_by_size_without_losing_a_line(running, monkeypatch):
    monkeypatch.setattr(ablog, "MAX_SEGMENT_BYTES", 20_000)
    monkeypatch.setattr(ablog, "FLUSH_EVENTS", 100)
    for i in range(2_000):
        running.log_exposure(f"u{i}", "treatment")
    running.log.flush()
    assert len(running.log.segments) > 5
    events = lines(running.log.folder)
    assert [e["seq"] for e in events] == list(range(1, 2001))


@pytest.mark.slow
def test_several_processes_log_at_once_without_loss_or_interleaving(running, store, tmp_path):
    code = f"""
import mltrail
exp = mltrail.Store({str(store.root)!r}).ab.get({AB_SPEC['key']!r})
for i in range(30_000):
    exp.log_exposure(f"w{{__import__('os').getpid()}}-{{i}}", "control" if i % 2 else "treatment")
exp.log.flush()
for i in range(1_000):
    exp.log_feedback(f"x{{i}}", "conversion", 1.0)
"""  # the feedback is flushed at interpreter exit
    procs = [spawn_python(code, tmp_path) for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    files = sorted(running.log.folder.glob("*.jsonl"))
    assert len({f.name.split("-")[0] for f in files}) == 3  # one writer, one set of segments
    events = lines(running.log.folder)  # every line parses: nothing interleaved
    assert sum(e["type"] == "exposure" for e in events) == 90_000
    assert sum(e["type"] == "feedback" for e in events) == 3_000
    for path in files:
        seqs = [json.loads(line)["seq"] for line in path.read_text().splitlines()]
        assert seqs == list(range(1, len(seqs) + 1))
