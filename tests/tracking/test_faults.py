"""Faults with real processes: SIGKILL mid-run, SIGTERM, several writers and a
compaction at once."""

import signal

import orjson
import pytest

import mltrail
from tests.factories import run_python, spawn_python

WRITER = """
import sys, time, mltrail
store = mltrail.Store(sys.argv[1] if len(sys.argv) > 1 else {root!r})
run = store.start_run({experiment!r}, name={name!r}, log_git=False, log_packages=False)
run.log_params({{"writer": {name!r}}})
print(run.id, flush=True)
for i in range({points}):
    run.log_metric("loss", 1.0 / (i + 1), step=i)
    if i % 500 == 499:
        run.flush()
        print("flushed", i + 1, flush=True)
{after}
"""


def _writer(root, name, points, after="run.end()", experiment="faults"):
    return WRITER.format(root=str(root), experiment=experiment, name=name, points=points, after=after)


@pytest.mark.slow
def test_sigkill_mid_run_keeps_every_flushed_event_and_reads_crashed(tmp_path):
    root = tmp_path / "store"
    proc = spawn_python(_writer(root, "victim", 10**9, after=""), tmp_path,
                        env={"MLTRAIL_FLUSH_SECONDS": "3600"})
    run_id = proc.stdout.readline().strip()
    flushed = 0
    while flushed < 5000:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        flushed = int(line.split()[1])
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    store = mltrail.Store(root, crash_after=0)  # silent for any time at all: crashed
    result = store.compact()
    points = store.metric_history(run_ids=[run_id])
    assert len(points) >= flushed  # nothing flushed is lost
    assert list(points["step"]) == list(range(len(points)))
    assert result.lines_skipped == 0
    runs = store.search_runs()
    assert runs.set_index("run_id").loc[run_id, "status"] == "CRASHED"
    assert mltrail.Store(root, crash_after=3600).search_runs().iloc[0]["status"] == "RUNNING"


@pytest.mark.slow
def test_torn_last_line_is_skipped_and_reported_then_compaction_continues(tmp_path):
    root = tmp_path / "store"
    done = run_python(_writer(root, "torn", 1000), tmp_path)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]
    store = mltrail.Store(root)
    path = next(root.glob("experiments/*/runs/*.jsonl"))
    data = path.read_bytes()
    cut = data.rstrip(b"\n").rfind(b"\n") + 20  # a write cut off 20 bytes into the last line
    path.write_bytes(data[:cut])
    store.compact(rebuild=True)
    assert len(store.metric_history(run_ids=[run_id])) == 1000  # the torn line was run_finished
    events, bad = mltrail.storage.eventlog.read_events(path)
    assert bad and "incomplete last line" in bad[0].reason
    status = store.search_runs().iloc[0]["status"]
    assert status in ("RUNNING", "CRASHED")  # its end was never fully written


@pytest.mark.slow
def test_sigterm_marks_the_run_killed(tmp_path):
    root = tmp_path / "store"
    proc = spawn_python(_writer(root, "term", 10**9, after=""), tmp_path)
    run_id = proc.stdout.readline().strip()
    proc.stdout.readline()  # one flush done: the loop is running
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGTERM  # still dies of SIGTERM, as before
    info = mltrail.Store(root).get_run(run_id)["run"]
    assert info["status"] == "KILLED" and info["error"] == "SIGTERM"


@pytest.mark.slow
def test_uncaught_exception_outside_with_marks_failed(tmp_path):
    code = f"""
import mltrail
run = mltrail.Store({str(tmp_path / 'store')!r}).start_run("x", log_git=False, log_packages=False)
print(run.id, flush=True)
raise SystemError("boom")
"""
    done = run_python(code, tmp_path)
    assert done.returncode == 1
    run_id = done.stdout.split()[0]
    info = mltrail.Store(tmp_path / "store").get_run(run_id)["run"]
    assert info["status"] == "FAILED" and "boom" in info["error"]


@pytest.mark.slow
def test_run_left_open_finishes_at_interpreter_exit(tmp_path):
    code = f"""
import mltrail
run = mltrail.Store({str(tmp_path / 'store')!r}).start_run("x", log_git=False, log_packages=False)
for i in range(10):
    run.log_metric("m", float(i))
print(run.id)
"""
    done = run_python(code, tmp_path, env={"MLTRAIL_FLUSH_SECONDS": "3600"})
    run_id = done.stdout.split()[0]
    store = mltrail.Store(tmp_path / "store")
    assert store.get_run(run_id)["run"]["status"] == "FINISHED"
    assert len(store.metric_history(run_ids=[run_id])) == 10  # flushed at exit


@pytest.mark.slow
def test_many_writers_and_compactions_at_once_lose_nothing(tmp_path):
    root = tmp_path / "store"
    writers = [spawn_python(_writer(root, f"w{i}", 20_000), tmp_path,
                            env={"MLTRAIL_FLUSH_EVENTS": "700"}) for i in range(4)]
    compactors = [spawn_python(f"""
import time, mltrail
store = mltrail.Store({str(root)!r})
deadline = time.time() + 60
while time.time() < deadline:
    try:
        store.compact()
    except mltrail.NotFoundError:
        pass  # the store is not created yet
    if {str(root / 'stop')!r} and __import__('os').path.exists({str(root / 'stop')!r}):
        break
""", tmp_path) for _ in range(2)]
    for proc in writers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    (root / "stop").write_text("")
    for proc in compactors:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    store = mltrail.Store(root)
    runs = store.search_runs()
    assert len(runs) == 4 and set(runs["status"]) == {"FINISHED"}
    history = store.metric_history()
    assert len(history) == 4 * 20_000
    for run_id, group in history.groupby("run_id"):
        assert list(group["step"]) == list(range(20_000))
    for path in root.glob("experiments/*/runs/*.jsonl"):
        for line in path.read_bytes().splitlines():
            orjson.loads(line)  # no interleaved or partial line anywhere
    rebuilt = mltrail.Store(root)
    rebuilt.compact(rebuild=True)
    assert len(rebuilt.metric_history()) == len(history)
