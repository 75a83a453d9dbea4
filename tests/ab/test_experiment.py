"""Experiment definition, lifecycle, phases and assignment through store.ab."""

import pytest

import mltrail
from mltrail import InvalidInputError, NotFoundError, WrongStateError
from mltrail.ab import assign
from tests.factories import AB_SPEC, ab_spec


@pytest.fixture
def exp(store):
    return store.ab.create(AB_SPEC, by="ana")


def test_create_computes_the_minimum_sample_size(exp):
    assert exp.state == "draft" and exp.phase.number == 1 and exp.phase.seed == "ranker-v2"
    assert exp.min_sample_size == {"control": 14745, "treatment": 14745}


def test_unequal_weights_cost_more_units(store):
    exp = store.ab.create(ab_spec(key="split", variants=[
        {"name": "a", "weight": 0.9, "control": True}, {"name": "b", "weight": 0.1}]))
    assert exp.min_sample_size == {"a": 73721, "b": 8192}
    exp = exp.set_weights({"a": 0.5, "b": 0.5})
    assert exp.min_sample_size == {"a": 14745, "b": 14745}  # follows the current weights


@pytest.mark.parametrize("changes,message", [
    ({"variants": [{"name": "a", "weight": 0.5, "control": True}, {"name": "b", "weight": 0.4}]}, "sum to 1"),
    ({"variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]}, "exactly one variant"),
    ({"variants": [{"name": "a", "weight": 0.5, "control": True},
                   {"name": "b", "weight": 0.5, "control": True}]}, "exactly one variant"),
    ({"variants": [{"name": "a", "weight": 1.5, "control": True}, {"name": "b", "weight": -0.5}]}, "non-negative"),
    ({"variants": [{"name": "a", "weight": 0.5, "control": True}, {"name": "a", "weight": 0.5}]}, "unique"),
    ({"variants": [{"name": "a", "weight": 1.0, "control": True}]}, "at least two"),
    ({"baseline": None}, "baseline rate"),
    ({"key": "../escape"}, "experiment key"),
    ({"coverage": 0}, "coverage"),
])
def test_bad_specs_are_refused_and_nothing_is_written(store, changes, message):
    with pytest.raises(InvalidInputError, match=message):
        store.ab.create(ab_spec(**changes))
    assert store.ab.keys() == []


def test_lifecycle_and_its_refusals(exp):
    with pytest.raises(WrongStateError, match="draft: it cannot be paused"):
        exp.pause()
    exp = exp.start(by="ana")
    assert exp.state == "running"
    exp = exp.pause(reason="holiday")
    assert exp.state == "paused" and exp.serving("user-1") == "control"
    exp = exp.start()
    with pytest.raises(InvalidInputError, match="unknown variant"):
        exp.stop("nope", "typo")
    with pytest.raises(InvalidInputError, match="reason"):
        exp.stop("treatment", "  ")
    exp = exp.stop("treatment", "treatment converts 9% better, p = 0.001")
    assert (exp.state, exp.winner) == ("stopped", "treatment")
    assert exp.serving("anyone") == "treatment"
    with pytest.raises(WrongStateError, match="stopped"):
        exp.start()


def test_assignment_is_growthbook_bucketing(exp):
    ranges = assign.bucket_ranges(2, 1.0, [0.5, 0.5])
    for unit in (f"user-{i}" for i in range(200)):
        index = assign.choose_variation(assign.hash("ranker-v2", unit), ranges)
        assert exp.assign(unit) == ["control", "treatment"][index]
    ids = [f"u{i}" for i in range(500)]
    assert exp.assign_batch(ids) == [exp.assign(u) for u in ids]
    with pytest.raises(InvalidInputError, match="unit id"):
        exp.assign("")


def test_new_weights_start_a_new_phase_that_reshuffles(exp):
    ids = [f"u{i}" for i in range(4000)]
    before = exp.assign_batch(ids)
    exp = exp.start().set_weights({"control": 0.5, "treatment": 0.5}, reason="re-randomise")
    assert exp.phase.number == 2 and exp.phase.seed != "ranker-v2"
    after = exp.assign_batch(ids)
    agree = sum(a == b for a, b in zip(before, after)) / len(ids)
    assert 0.45 < agree < 0.55
    with pytest.raises(InvalidInputError, match="sum to 1"):
        exp.set_weights({"control": 0.5, "treatment": 0.6})
    with pytest.raises(InvalidInputError, match="exactly the variants"):
        exp.set_weights({"control": 1.0})


def test_coverage_moves_no_unit(exp):
    ids = [f"u{i}" for i in range(4000)]
    exp = exp.set_coverage(0.2)
    low = exp.assign_batch(ids)
    exp = exp.set_coverage(0.8)
    high = exp.assign_batch(ids)
    assert exp.phase.number == 1
    assert all(h == lo for lo, h in zip(low, high) if lo is not None)
    assert 0.15 < sum(v is not None for v in low) / len(ids) < 0.25


def test_state_is_shared_through_the_store(exp, store):
    exp.start()
    other = mltrail.Store(store.root).ab.get("ranker-v2")
    assert other.state == "running"
    with pytest.raises(NotFoundError):
        store.ab.get("missing")
    frame = store.ab.list()
    assert list(frame["key"]) == ["ranker-v2"] and list(frame["state"]) == ["running"]


def test_racing_writers_cannot_break_the_state(exp, store):
    """Two stops written by two machines (say, merged from two branches): the replay
    keeps the first and ignores the second."""
    from mltrail.ab.experiment import replay
    from mltrail.storage import ab_events as ev

    exp = exp.start()
    registry = store.ab
    for winner in ("treatment", "control"):
        registry._write("ranker-v2", ev.Stopped(ts=1.0, experiment="ranker-v2", winner=winner, reason="x"))
    state = replay(registry.lifecycle("ranker-v2"))
    assert state.winner == "treatment" and state.ignored == ["ab_stopped while stopped"]
    assert len(list((store.root / "ab" / "ranker-v2" / "lifecycle").glob("*.jsonl"))) == 4


def test_cli_lifecycle(store, tmp_path):
    import json

    from click.testing import CliRunner

    from mltrail.cli import main

    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(AB_SPEC))

    def run(*args):
        return CliRunner().invoke(main, ["ab", *args, "--store", str(store.root)])

    assert "minimum sample size control 14,745" in run("create", "--spec", str(spec_file)).output
    assert run("start", "ranker-v2").output.strip() == "ranker-v2: running"
    assert "phase 2" in run("weights", "ranker-v2", "control=0.3", "treatment=0.7").output
    assert "ranker-v2" in run("list").output
    result = run("stop", "ranker-v2", "--winner", "treatment", "--reason", "ships")
    assert "winner treatment" in result.output
    status = run("status", "ranker-v2").output
    assert "stopped" in status and "decision: treatment: ships" in status
    failed = run("pause", "ranker-v2")
    assert failed.exit_code == 1 and "cannot be paused" in failed.output
    bad = run("weights", "ranker-v2", "control=x")
    assert bad.exit_code == 1 and "VARIANT=WEIGHT" in bad.output


@pytest.mark.parametrize("line,problem", [
    ('{"type":"ab_phase","weights":{"contrl":0.5,"treatment":0.5},"seed":"typo"}',
     "weights name \\['contrl', 'treatment'\\], not the variants \\['control', 'treatment'\\]"),
    ('{"type":"ab_stopped","winner":"nope","reason":"typo"}', "winner 'nope' is not one of the variants"),
], ids=["weights naming contrl", "a winner that is no variant"])
def test_a_lifecycle_event_that_contradicts_the_spec_is_skipped_and_said(exp, store, line, problem):
    """Written past the lifecycle methods (by hand, an older server): a reweight naming
    'contrl' made get, assign, results and ab.list() raise KeyError: 'control' for good."""
    exp = exp.start()
    exp.log_exposure("user-1", exp.assign("user-1"))
    event = line.replace('{"type"', '{"v":1,"ts":1700000000.0,"experiment":"ranker-v2","by":"bob","type"')
    (store.root / "ab" / "ranker-v2" / "lifecycle" / "09ZZZZZZZZZZZZZZZZZZZZZZZZ.jsonl").write_text(event + "\n")
    said = f"A/B experiment 'ranker-v2': a lifecycle event by 'bob'.*{problem}"
    with pytest.warns(mltrail.SkippedLinesWarning, match=said):
        again = mltrail.Store(store.root).ab.get("ranker-v2")
    assert (again.state, again.phase.number, again.winner) == ("running", 1, None)
    assert again.assign("user-1") == exp.assign("user-1")
    with pytest.warns(mltrail.SkippedLinesWarning, match="lifecycle event by 'bob'"):
        assert sum(store.ab.get("ranker-v2").results().units.values()) == 1
    with pytest.warns(mltrail.SkippedLinesWarning, match="lifecycle event by 'bob'"):
        assert list(store.ab.list()["state"]) == ["running"]


def test_the_lifecycle_refuses_an_event_that_contradicts_the_spec(exp, store):
    """The one check the readers apply is the writer's too, below the Experiment's methods."""
    from mltrail.storage import ab_events as ev

    files = sorted((store.root / "ab" / "ranker-v2" / "lifecycle").iterdir())
    with pytest.raises(InvalidInputError, match="weights name \\['contrl', 'treatment'\\]"):
        store.ab.append("ranker-v2", ev.NewPhase, weights={"contrl": 0.5, "treatment": 0.5}, seed="s")
    with pytest.raises(InvalidInputError, match="winner 'nope'"):
        store.ab.append("ranker-v2", ev.Stopped, winner="nope", reason="typo")
    assert sorted((store.root / "ab" / "ranker-v2" / "lifecycle").iterdir()) == files


@pytest.mark.parametrize("line", [
    '{"v":1,"type":"ab_phase","ts":1.7e15,"experiment":"ranker-v2","weights":{"control":0.5,"treatment":0.5},'
    '"seed":"x"}',
    '{"v":1,"type":"ab_paused","ts":-5,"experiment":"ranker-v2"}',
    '{"v":1,"type":"ab_coverage","ts":1e400,"experiment":"ranker-v2","coverage":0.5}',
], ids=["a phase dated in microseconds", "a pause before 1970", "a ts past a float"])
def test_a_lifecycle_event_dated_outside_the_writers_bounds_is_skipped_and_said(exp, store, line):
    """Its time bounded as every event's is (a phase once began in the year 53 million)."""
    exp = exp.start()
    (store.root / "ab" / "ranker-v2" / "lifecycle" / "09ZZZZZZZZZZZZZZZZZZZZZZZZ.jsonl").write_text(line + "\n")
    with pytest.warns(mltrail.SkippedLinesWarning, match="09ZZZZZZZZZZZZZZZZZZZZZZZZ.jsonl: unreadable"):
        again = mltrail.Store(store.root).ab.get("ranker-v2")
    assert (again.state, again.phase.number, again.coverage) == ("running", 1, 1.0)
