"""A training job against a server, as its user lives it (issue 26): what ``close()``
says is left is what never arrived, a hung server does not hold the job's exit past its
deadline, the job reads what it just wrote, a run resumes on another machine, each user
has their own spool, and a stop ends the job within a second."""

import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time

import pytest

import mltrail
from tests.factories import quiet_run, serving_store, wait_for

pytestmark = pytest.mark.slow  # real servers


@pytest.fixture
def hung_url():
    """A server that accepts every connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    held, done = [], threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    done.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


def test_close_returns_by_its_deadline_when_the_server_never_answers(tmp_path, hung_url):
    store = mltrail.Store(hung_url, spool=tmp_path / "spool")
    with quiet_run(store, "hung") as run:
        run.log_metric("loss", 0.5)
    time.sleep(0.3)  # the background sender is now stuck in a call to the hung server
    started = time.monotonic()
    left = store.close(wait=1)
    elapsed = time.monotonic() - started
    assert left == 1  # the run waits in the spool
    assert elapsed < 2.5, f"close(wait=1) took {elapsed:.1f} s"


def test_a_refused_run_counts_as_left_and_close_says_why_and_how_to_send_it(tmp_path, caplog):
    folder = tmp_path / "central"
    local = mltrail.Store(folder)
    token = local.access.add_user("ana")
    with serving_store(folder) as url:
        store = mltrail.Store(url, token=token, spool=tmp_path / "spool")
        with quiet_run(store, "rotated") as run:
            run.log_metric("loss", 0.5, step=0)
            run.flush()
            assert store.upload() == 1  # its first lines are on the server; the run goes on
            local.access.rotate_token("ana")  # an admin rotates ana's token while the job runs
            run.log_metric("loss", 0.4, step=1)
        with caplog.at_level(logging.WARNING, logger="mltrail.remote.store"):
            left = store.close(wait=3)
        assert left == 1  # the points of step 1 never arrived: the run is not done
        said = caplog.text
        assert "refused" in said and run.id in said and "InvalidInputError" in said
        assert f"mltrail sync {store.spool} --to {url}" in said
        assert local.metric_history()["step"].tolist() == [0]


def test_a_job_reads_and_registers_the_run_it_just_logged(tmp_path):
    """Train, then register: each time at once after the ``with`` block, many times over
    (the background sender's quarter second would lose this race most of the time)."""
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps({"weights": [1, 2]}))
    with serving_store(tmp_path / "central") as url:
        store = mltrail.Store(url, spool=tmp_path / "spool")
        store.registry.create("churn")
        for attempt in range(10):
            with quiet_run(store, "own", name=f"try-{attempt}") as run:
                run.log_metric("loss", 1 / (attempt + 1))
                run.log_artifact(model)
            assert store.registry.register("churn", run.id).number == attempt + 1
            assert store.get_run(run.id)["run"]["status"] == "FINISHED"
            found = store.search_runs(experiment="own", filter=f"attributes.run_name = 'try-{attempt}'")
            assert list(found["metrics.loss"]) == [1 / (attempt + 1)]
            with quiet_run(store, "own", name=f"open-{attempt}") as running:  # a run still running, too
                running.log_metric("acc", 0.5)
                assert store.metric_history([running.id])["value"].tolist() == [0.5]
        assert store.close(wait=5) == 0


STOPPED_JOB = """
import sys, time, mltrail
store = mltrail.Store(sys.argv[1], spool=sys.argv[2])
with store.start_run("stops", log_git=False, log_packages=False) as run:
    print(run.id, flush=True)
    while not run.stop_requested:
        run.log_metric("loss", 0.5)
        time.sleep(0.01)
    print(time.time(), flush=True)
"""


def test_a_remote_job_sees_a_stop_at_once_whatever_its_flush_interval(tmp_path):
    """The stop watcher hands a request to the run as soon as the server has it: a job
    flushing every 30 s still ends within a second or two of the request."""
    with serving_store(tmp_path / "central") as url:
        job = subprocess.Popen([sys.executable, "-c", STOPPED_JOB, url, str(tmp_path / "spool")],
                               env={**os.environ, "MLTRAIL_FLUSH_SECONDS": "30"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        run_id = job.stdout.readline().strip()
        store = mltrail.Store(url)
        wait_for(lambda: _running(store, run_id), what="the job's run on the server")
        asked = time.time()
        store.request_stop(run_id, "enough")
        seen = float(job.stdout.readline())
        job.communicate(timeout=60)
        ended = time.time()
        assert job.returncode == 0
        assert seen - asked < 1.0, f"the run saw the stop {seen - asked:.2f} s after it was asked"
        assert ended - asked < 3.0, f"the job ended {ended - asked:.2f} s after the stop was asked"
        assert store.get_run(run_id)["run"]["status"] == "KILLED"


def _running(store, run_id):
    try:
        return store.get_run(run_id)["run"]["status"] == "RUNNING"
    except mltrail.NotFoundError:
        return False


def test_a_run_resumes_on_another_machine_and_back_again(tmp_path):
    """Machine A logs steps 0-2 and ends; machine B (its own spool, without the run)
    resumes it for 3-5; A resumes it again from its stale spool for 6-8: every point once."""
    with serving_store(tmp_path / "central") as url:
        def resume_and_log(machine, steps, run_id=None):
            store = mltrail.Store(url, spool=tmp_path / f"spool-{machine}")
            run = quiet_run(store, "long-training", run_id=run_id) if run_id else quiet_run(store, "long-training")
            with run:
                for _ in steps:
                    run.log_metric("loss", 0.5)
            assert store.close(wait=5) == 0
            return run

        resume_and_log("c", range(1))  # someone's run before: on the server, A's run is the second
        first = resume_and_log("a", range(3))
        second = resume_and_log("b", range(3), first.id)
        store = mltrail.Store(url, spool=tmp_path / "spool-reader")
        assert (second.name, second.number) == ("long-training_2", 2)  # the server's, not B's spool's
        resume_and_log("a", range(3), first.id)
        history = store.metric_history([first.id])
        assert history["step"].tolist() == list(range(9))  # (A's spool knew of 3, the server of 6)
        assert store.get_run(first.id)["run"]["status"] == "FINISHED"
        with pytest.raises(mltrail.NotFoundError, match="nor in"):
            store.start_run("long-training", run_id="0" * 26)
