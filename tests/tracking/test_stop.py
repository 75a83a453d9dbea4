"""Stopping a run from where it is watched (issue 15; W&B has it, MLflow does not): a
request file beside the runs folder, seen by the training process within 2 s."""

import orjson
import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from tests.factories import quiet_run, spawn_python, wait_for

TRAIN = """
import sys, time, mltrail
run = mltrail.Store(sys.argv[1] if len(sys.argv) > 1 else {root!r}).start_run(
    "e", name="job", stop={mode!r}, log_git=False, log_packages=False)
print(run.id, flush=True)
with run:
    for step in range(100_000):
        {loop_check}
        run.log_metric("loss", 1 / (step + 1))
        time.sleep(0.01)
"""


def _start_job(store, tmp_path, mode, loop_check="pass"):
    proc = spawn_python(TRAIN.format(root=str(store.root), mode=mode, loop_check=loop_check), tmp_path)
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read()
    wait_for(lambda: len(store.search_runs()) == 1, what="the job's run to be visible")
    return proc, run_id


def _end_event(store, run_id):
    (path,) = store.layout.experiments.glob(f"*/runs/{run_id}.jsonl")
    return orjson.loads(path.read_bytes().splitlines()[-1])


@pytest.mark.slow  # a real training process
def test_a_run_started_to_raise_ends_killed_within_two_seconds_of_the_request(store, tmp_path):
    proc, run_id = _start_job(store, tmp_path, "raise")
    request = orjson.loads(store.tracking.request_stop(run_id, "loss diverged", by="ana").read_bytes())
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "RunStopRequested" in err  # raised at the next log call
    end = _end_event(store, run_id)
    assert end["type"] == "run_finished" and end["status"] == "KILLED"
    assert end["ts"] - request["ts"] <= 2.0
    row = store.search_runs().iloc[0]
    assert row["status"] == "KILLED"
    assert store.get_run(run_id)["run"]["error"] == "stop requested by ana: loss diverged"


@pytest.mark.slow  # a real training process
def test_a_loop_that_checks_the_flag_ends_cleanly_and_the_run_reads_killed(store, tmp_path):
    proc, run_id = _start_job(store, tmp_path, "flag", loop_check="if run.stop_requested: break")
    request = orjson.loads(store.tracking.request_stop(run_id, by="bo").read_bytes())
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    end = _end_event(store, run_id)
    assert end["status"] == "KILLED" and end["error"] == "stop requested by bo"
    assert end["ts"] - request["ts"] <= 2.0


@pytest.mark.slow  # a real training process
def test_stop_from_the_command_line_and_its_mistakes(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_USER", "cli-user")
    proc, run_id = _start_job(store, tmp_path, "flag", loop_check="if run.stop_requested: break")
    result = CliRunner().invoke(main, ["stop", "job", "--reason", "wrong data", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert f"asked run {run_id} to stop" in result.output
    proc.communicate(timeout=30)
    assert store.get_run(run_id)["run"]["error"] == "stop requested by cli-user: wrong data"
    again = CliRunner().invoke(main, ["stop", run_id, "--store", str(store.root)])
    assert again.exit_code == 1 and "is KILLED: only a running run can be asked to stop" in again.output
    unknown = CliRunner().invoke(main, ["stop", "nosuchrun", "--store", str(store.root)])
    assert unknown.exit_code == 1 and "no run 'nosuchrun'" in unknown.output


def test_a_stop_request_in_the_same_process_and_a_bad_mode(store):
    with pytest.raises(mltrail.InvalidInputError, match="stop must be 'flag' or 'raise'"):
        store.start_run("e", stop="later")
    run = quiet_run(store, "e")
    run.stop_mode = "raise"
    run.log_metric("loss", 1.0)
    run.flush()
    store.request_stop(run.id)
    assert not run.stop_requested  # seen when the flusher looks, not at once
    run.background_flush()
    assert run.stop_requested and run.stop_reason.startswith("stop requested by")
    with pytest.raises(mltrail.RunStopRequested, match=run.id):
        run.log_metrics({"loss": 0.5})
    with pytest.raises(mltrail.RunStopRequested):
        with run:
            run.log_param("lr", 0.1)
    assert run.status == "KILLED"


def test_an_unreadable_stop_request_is_reported_and_the_run_goes_on(store):
    """A request file damaged by hand (or caught half-copied) is a warning naming it; the
    run keeps training, and a readable request after it still stops the run."""
    run = quiet_run(store, "e")
    run.flush()
    folder = store.layout.stop_requests(run.path)
    folder.mkdir(parents=True)
    (folder / "01M8ZZZZZZZZZZZZZZZZZZZZZZ.jsonl").write_bytes(b'{"v": 1, "type": "stop_req')
    with pytest.warns(mltrail.SkippedLinesWarning, match="01M8ZZZZZZZZZZZZZZZZZZZZZZ.jsonl: unreadable"):
        run.background_flush()
    assert not run.stop_requested
    run.log_metric("loss", 1.0)
    store.request_stop(run.id, "seen enough")
    run.background_flush()
    assert run.stop_requested and run.stop_reason.endswith(": seen enough")
    run.end()
    assert store.get_run(run.id)["run"]["status"] == "KILLED"
