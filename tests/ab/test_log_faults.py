"""The A/B log path keeps every event, whatever the order and whatever goes wrong:
feedback that arrives before its exposure, a corrupt or torn line, a process killed
outright, an experiment with nothing logged yet."""

import os
import signal
import subprocess
import sys

import pytest

import mltrail
from mltrail.storage.events import SCHEMA_VERSION
from tests.factories import AB_LINES_OUT_OF_BOUNDS, AB_SPEC, ab_log_line, ab_spec, simulate, spawn_python, wait_for

UNITS = [f"user-{i}" for i in range(400)]


def converts(unit: str) -> bool:
    return int(unit.split("-")[1]) % 3 == 0


def log_in_child(store, tmp_path, what):
    """Log exposures or feedback of UNITS in a real process of their own, then exit."""
    code = f"""
import mltrail
exp = mltrail.Store({str(store.root)!r}).ab.get({AB_SPEC['key']!r})
units = [f"user-{{i}}" for i in range(400)]
if {what!r} == "exposures":
    for unit in units:
        exp.log_exposure(unit, exp.assign(unit))
else:
    for unit in units:
        if int(unit.split("-")[1]) % 3 == 0:
            exp.log_feedback(unit, "conversion", 1.0)
"""  # flushed at exit
    proc = spawn_python(code, tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def expected_means(exp):
    rates = {}
    for variant in exp.variants:
        members = [u for u in UNITS if exp.assign(u) == variant]
        rates[variant] = sum(converts(u) for u in members) / len(members)
    return rates


def conversion(result):
    return result.table[result.table["metric"] == "conversion"].set_index("variant")["mean"].to_dict()


@pytest.mark.slow
def test_feedback_flushed_before_its_exposure_is_counted(store, tmp_path):
    """A conversion pipeline flushes first, an analysis runs, then the router flushes:
    the conversions still count (compaction used to drop feedback without an exposure)."""
    exp = store.ab.create(AB_SPEC).start()
    log_in_child(store, tmp_path, "feedback")
    early = exp.results()  # compacts the feedback while no exposure is in
    assert sum(early.units.values()) == 0
    log_in_child(store, tmp_path, "exposures")
    late = mltrail.Store(store.root).ab.get(AB_SPEC["key"]).results()
    assert sum(late.units.values()) == 400
    assert conversion(late) == pytest.approx(expected_means(exp), rel=1e-12)


@pytest.mark.slow
def test_the_order_of_flushes_never_changes_a_result(tmp_path):
    tables = []
    for order in (("exposures", "feedback"), ("feedback", "exposures")):
        store = mltrail.Store(tmp_path / "-".join(order))
        exp = store.ab.create(AB_SPEC).start()
        for what in order:
            log_in_child(store, tmp_path, what)
            exp.results()  # an analysis between the two
        tables.append(exp.results().table.drop(columns=["p_holm"], errors="ignore"))
    assert tables[0].equals(tables[1])


@pytest.mark.slow
def test_a_corrupt_and_a_torn_line_cost_only_themselves(store):
    exp = store.ab.create(AB_SPEC).start()
    for unit in UNITS[:100]:
        exp.log_exposure(unit, exp.assign(unit))
    exp.log.flush()
    (segment,) = exp.log.segments
    with open(segment, "ab") as handle:
        handle.write(b'{"v":1,"type":"exposure","unit": oops}\n')  # line 101: corrupt
    for unit in UNITS[100:200]:
        exp.log_exposure(unit, exp.assign(unit))
    exp.log.flush()
    with open(segment, "ab") as handle:
        handle.write(b'{"v":1,"type":"expo')  # a writer killed mid-line: not read yet
    with pytest.warns(mltrail.SkippedLinesWarning, match="1 line"):
        tables = store.ab.log_tables(exp)
    assert tables.lines_read_one_by_one == 201  # only the segment with the bad line, line by line
    result = exp.results()
    assert sum(result.units.values()) == 200
    assert len(result.bad_lines) == 1
    assert result.bad_lines[0].startswith(f"ab/ranker-v2/log/{segment.name}:101: not valid JSON")
    assert exp.results().bad_lines == result.bad_lines  # still reported, without a new warning


@pytest.mark.slow
def test_a_line_of_the_wrong_shape_is_reported_not_fatal(store):
    exp = store.ab.create(AB_SPEC).start()
    simulate(exp, {"control": 0.1, "treatment": 0.1}, 50)
    exp.log.flush()
    (segment,) = exp.log.segments
    with open(segment, "ab") as handle:
        handle.write(b'{"v":1,"type":"feedback","ts":1.0,"experiment":"ranker-v2","seq":999,"unit":"u",'
                     b'"metric":"conversion","value":"lots"}\n')
        handle.write(b'{"v":9,"type":"exposure","ts":1.0,"experiment":"ranker-v2","seq":1000,"unit":"u",'
                     b'"variant":"control","phase":1}\n')
    with pytest.warns(mltrail.SkippedLinesWarning):
        result = exp.results()
    assert sum(result.units.values()) == 50
    assert [line.split(": ", 1)[1] for line in result.bad_lines] == [
        "invalid log line: feedback.value: Input should be a valid number, unable to parse string as a number",
        f"written by a newer mltrail (event schema v9; this version reads up to v{SCHEMA_VERSION})"]


@pytest.mark.slow
@pytest.mark.parametrize("bad", AB_LINES_OUT_OF_BOUNDS.values(), ids=AB_LINES_OUT_OF_BOUNDS.keys())
def test_a_line_outside_the_writers_bounds_is_skipped_and_reported(store, bad):
    """Written by hand or by an older version: the writer would refuse it, so readers
    skip it (a ts in microseconds once made every results() raise OutOfBoundsDatetime)."""
    exp = store.ab.create(AB_SPEC).start()
    simulate(exp, {"control": 0.1, "treatment": 0.1}, 50)
    exp.log.flush()
    (segment,) = exp.log.segments
    expected = exp.results()
    number = segment.read_bytes().count(b"\n") + 1
    with open(segment, "ab") as handle:
        handle.write(bad.replace(b'"u1"', b'"user-1"'))  # a unit of the experiment
    with pytest.warns(mltrail.SkippedLinesWarning, match="1 line"):
        result = exp.results()
    assert result.units == expected.units
    assert result.table.equals(expected.table) and result.daily.equals(expected.daily)
    assert [line.split(":", 2)[:2] for line in result.bad_lines] == [[f"ab/ranker-v2/log/{segment.name}", str(number)]]
    assert "invalid log line" in result.bad_lines[0] or "not valid JSON" in result.bad_lines[0]


@pytest.mark.slow
def test_tables_an_older_version_compacted_are_rebuilt_once_without_its_out_of_bounds_rows(store):
    """An older version read an exposure dated in microseconds into the experiment's
    tables, and every results() raised OutOfBoundsDatetime, after an upgrade too: the
    tables of an older format are rebuilt from the logs, which skip the line."""
    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq

    exp = store.ab.create(AB_SPEC).start()
    simulate(exp, {"control": 0.1, "treatment": 0.1}, 50)
    exp.log.flush()
    expected = exp.results()
    (segment,) = exp.log.segments
    with open(segment, "ab") as handle:
        handle.write(ab_log_line(ts="1.7e15", unit='"late"'))
    with pytest.warns(mltrail.SkippedLinesWarning):
        tables = store.ab.log_tables(exp)
    # what the older version left: the line's row in the tables, and its manifest's format
    (units,) = tables.unit_files
    rows = pq.read_table(units)
    pq.write_table(pa.concat_tables([rows, pa.table({"phase": [1], "unit": ["late"], "variant": ["control"],
                                                     "first_ts": [1.7e15], "crossover": [False]}, schema=rows.schema)]),
                   units)
    manifest = tables.folder / "_manifest.json"
    old = orjson.loads(manifest.read_bytes())
    manifest.write_bytes(orjson.dumps({**old, "tables_format": 2, "bad_lines": []}))

    again = mltrail.Store(store.root).ab.get(AB_SPEC["key"])
    with pytest.warns(mltrail.SkippedLinesWarning, match="1 line"):
        result = again.results()
    assert result.units == expected.units and result.table.equals(expected.table)
    assert len(result.bad_lines) == 1 and again.results().bad_lines == result.bad_lines  # rebuilt once


@pytest.mark.slow
def test_exposures_reach_the_disk_within_a_second_and_survive_sigkill(store, tmp_path):
    """An embedded service with light traffic: nothing flushes by size, yet a SIGKILL
    loses at most the last second (exposures used to wait for 50,000 events or exit)."""
    exp = store.ab.create(AB_SPEC).start()
    code = f"""
import sys, time
import mltrail
exp = mltrail.Store({str(store.root)!r}).ab.get({AB_SPEC['key']!r})
for i in range(50):
    exp.log_exposure(f"user-{{i}}", exp.assign(f"user-{{i}}"))
print("logged", flush=True)
time.sleep(600)
"""
    proc = spawn_python(code, tmp_path, env={"MLTRAIL_FLUSH_SECONDS": "0.2"})
    try:
        assert proc.stdout.readline().strip() == "logged"
        folder = exp.log.folder

        def flushed():
            return sum(p.read_bytes().count(b"\n") for p in folder.glob("*.jsonl")) == 50 if folder.is_dir() else False

        wait_for(flushed, timeout=30, what="the child's 50 exposures on disk")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert sum(exp.results().units.values()) == 50


@pytest.mark.parametrize("start", [False, True])
def test_an_experiment_with_nothing_logged_reports_zero_units(store, start):
    exp = store.ab.create(AB_SPEC)
    exp = exp.start() if start else exp
    result = exp.results()
    assert result.units == {"control": 0, "treatment": 0}
    assert not result.srm_alarm and result.recommendation == "Keep running: no units yet."
    assert set(result.table["units"]) == {0} and len(result.table) == 4  # two metrics, two variants
    assert {"relative", "p_value", "significant"} <= set(result.table.columns)  # what pages read


@pytest.mark.slow
def test_each_phase_is_read_against_its_own_weights(store):
    """Phase 1 at 50/50, phase 2 at 90/10: phase 1's split is healthy at its own weights
    (it was checked against phase 2's and raised a false sample-ratio alarm)."""
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    simulate(exp, {"control": 0.1, "treatment": 0.1}, 2_000)
    first = exp.results()
    exp = exp.set_weights({"control": 0.9, "treatment": 0.1})
    simulate(exp, {"control": 0.1, "treatment": 0.1}, 2_000, seed=2)
    phase1, phase2 = exp.results(phase=1), exp.results(phase=2)
    assert phase1.srm_p_value == pytest.approx(first.srm_p_value) and not phase1.srm_alarm
    assert not phase2.srm_alarm and phase2.units["control"] > 5 * phase2.units["treatment"]
    progress1 = phase1.table.set_index(["metric", "variant"]).loc[("conversion", "treatment"), "progress"]
    progress_first = first.table.set_index(["metric", "variant"]).loc[("conversion", "treatment"), "progress"]
    assert progress1 == pytest.approx(progress_first)  # phase 1's planned size, not phase 2's
    assert phase1.recommendation.startswith("Phase 1 ended when phase 2 began.")
    with pytest.raises(mltrail.NotFoundError, match="no phase 3; its phases are 1 to 2"):
        exp.results(phase=3)


@pytest.mark.slow
def test_a_stopped_experiment_states_its_decision_and_warns_when_early(store):
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    simulate(exp, {"control": 0.1, "treatment": 0.2}, 600)
    running = exp.results()
    assert running.recommendation.startswith("Keep running")
    stopped = exp.stop("treatment", "the lift is large enough for us").results()
    assert stopped.state == "stopped"
    assert stopped.recommendation.startswith("Stopped: treatment won. The decision: the lift is large enough")
    assert "Warning: it was stopped at" in stopped.recommendation and "Keep running" not in stopped.recommendation


@pytest.mark.slow
def test_an_experiment_held_across_a_weight_change_logs_the_phase_it_assigned_in(store):
    """A service holds an Experiment read in phase 1 (50/50) while someone else starts
    phase 2 (90/10): its units are assigned with phase 1's seed and weights, so they are
    phase 1's units (they were logged under phase 2 at 50/50)."""
    held = store.ab.create(ab_spec(mde=0.02)).start()
    mltrail.Store(store.root).ab.get(AB_SPEC["key"]).set_weights({"control": 0.9, "treatment": 0.1})
    for unit in UNITS:
        held.log_exposure(unit, held.assign(unit))
    held.log.flush()
    fresh = mltrail.Store(store.root).ab.get(AB_SPEC["key"])
    assert fresh.phase.number == 2
    assert sum(fresh.results(phase=1).units.values()) == len(UNITS)
    assert sum(fresh.results(phase=2).units.values()) == 0
    assert not fresh.results(phase=1).srm_alarm


@pytest.mark.parametrize("change,words", [
    ({"namespace": ["checkout", 0.0, float("inf")]}, "finite number"),
    ({"namespace": ["checkout", 0.6, 0.2]}, "namespace's range"),
    ({"mde": float("inf")}, "finite number"),
    ({"baseline": float("nan")}, "finite number"),
])
def test_a_spec_with_inf_or_nan_is_refused_before_anything_is_written(store, change, words):
    with pytest.raises(mltrail.InvalidInputError, match=words):
        store.ab.create(ab_spec(key="odd", **change))
    assert not store.ab.exists("odd") and store.ab.list().empty
    store.ab.create(ab_spec(key="odd"))  # the key is still free


LOST_AT_EXIT = """
import logging, os, sys, time
import mltrail
if sys.argv[1:] == ["silenced"]:
    logging.getLogger("mltrail").setLevel(logging.ERROR)
store = mltrail.Store({root!r})
exp = store.ab.get({key!r})
blocker = store.ab.log_folder({key!r})
blocker.parent.mkdir(parents=True, exist_ok=True)
blocker.write_text("not a folder")  # the disk refuses the log's folder from now on
exp.log_exposure("user-1", exp.assign("user-1"))
log = store.ab.open_log({key!r})
deadline = time.monotonic() + 30
while not log.failed_flushes and time.monotonic() < deadline:
    time.sleep(0.01)
print(log.failed_flushes)
"""  # and at exit the last flush fails too


@pytest.mark.slow
@pytest.mark.parametrize("silenced", [False, True])
def test_flush_failures_reach_stderr_unless_the_application_silences_mltrail_logs(store, tmp_path, silenced):
    """Nothing configures logging in the job: Python's last-resort handler shows mltrail's
    warnings and errors on stderr, as the prints did. An application that sets the
    ``mltrail`` logger to ERROR keeps only the error (events lost at exit)."""
    store.ab.create(AB_SPEC).start()
    code = LOST_AT_EXIT.format(root=str(store.root), key=AB_SPEC["key"])
    proc = subprocess.Popen([sys.executable, "-c", code, *(["silenced"] if silenced else [])], cwd=tmp_path,
                            env={**os.environ, "MLTRAIL_FLUSH_SECONDS": "0.05"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and int(out) >= 1, err
    lines = err.splitlines()
    retried = [line for line in lines if line.startswith(f"mltrail: could not flush the exposure log of "
                                                         f"A/B experiment {AB_SPEC['key']!r}: ")]
    lost = [line for line in lines if line.startswith(f"mltrail: could not flush the exposure log of "
                                                      f"A/B experiment {AB_SPEC['key']!r} at exit: ")]
    assert len(lost) == 1, err
    assert (retried == []) if silenced else (len(retried) >= 1), err
    assert len(retried) + len(lost) == len(lines), err  # nothing else: no traceback, no logging noise
