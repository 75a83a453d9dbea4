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
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from tests.factories import ab_spec, free_port, quiet_run, serving_store, wait_for, wait_for_http

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
        assert list(store.spool.glob("blobs*/sha256/*/*"))  # (the model file, until close)
        assert store.close(wait=5) == 0
    # the server has everything: the spool let go of the runs and of the blob they named
    assert not list(store.spool.glob("experiments/*/runs/*.jsonl"))
    assert not list(store.spool.glob("blobs*/sha256/*/*"))


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


def test_the_default_spool_is_one_per_server_and_per_user_and_never_holds_the_token(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    ana, carol, nobody = (mltrail.Store("http://gpu-box:5050", token=token)
                          for token in ("ana-s3cret", "carol-s3cret", None))
    base = tmp_path / ".cache" / "mltrail" / "spool" / "gpu-box-5050"
    assert ana.spool.parent == carol.spool.parent == nobody.spool.parent == base
    assert len({ana.spool, carol.spool, nobody.spool}) == 3
    assert "s3cret" not in str(ana.spool) + str(carol.spool)
    assert mltrail.Store("http://gpu-box:5050", token="ana-s3cret").spool == ana.spool  # hers, every time
    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "chosen"))
    assert mltrail.Store("http://gpu-box:5050", token="ana-s3cret").spool == tmp_path / "chosen"  # as given


def test_a_job_with_the_default_spool_writes_it_under_the_tests_own_folder(tmp_path):
    """The autouse fixture gives each test its own home: a remote job that names no spool
    spools under tmp_path, never in the real ``~/.cache/mltrail/spool``."""
    with serving_store(tmp_path / "central") as url:
        store = mltrail.Store(url)
        with quiet_run(store, "own") as run:
            run.log_metric("loss", 0.5)
        assert list(store.spool.glob("experiments/*/runs/*.jsonl"))  # it did write there
        assert store.close(wait=5) == 0
    assert store.spool.is_relative_to(tmp_path), store.spool
    assert store.spool.is_relative_to(tmp_path / "home" / ".cache" / "mltrail" / "spool")


def test_two_users_of_one_account_each_sync_their_own_runs_and_keep_their_authorship(tmp_path, monkeypatch, caplog):
    """ana and carol share an OS account; the server is away while they log. Each one's
    spool holds her runs only; an admin's sync of ana's spool sends them as ana."""
    monkeypatch.setenv("HOME", str(tmp_path))
    folder, port = tmp_path / "central", free_port()
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name, admin=name == "root") for name in ("ana", "carol", "root")}
    url = f"http://127.0.0.1:{port}"
    with serving_store(folder, port=port):  # ana's first job meets the server: her spool learns who she is
        store = mltrail.Store(url, token=tokens["ana"])
        with quiet_run(store, "ana-exp") as first:
            first.log_metric("loss", 1.0)
        assert store.close(wait=5) == 0
    assert not list(store.spool.glob("experiments/*/runs/*.jsonl"))  # all on the server: pruned

    def log_while_away(user, experiment):
        store = mltrail.Store(url, token=tokens[user])
        with quiet_run(store, experiment) as run:
            run.log_metric("loss", 0.5)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="mltrail.remote.store"):
            assert store.close(wait=1) == 1
        assert f"mltrail sync {store.spool} --to {url}" in caplog.text
        return run, store.spool

    ana_run, ana_spool = log_while_away("ana", "ana-later")
    carol_run, carol_spool = log_while_away("carol", "carol-exp")
    assert ana_spool != carol_spool
    with serving_store(folder, port=port):
        sent = CliRunner().invoke(main, ["sync", str(carol_spool), "--to", url, "--token", tokens["carol"]])
        assert sent.exit_code == 0, sent.output
        assert set(mltrail.Store(folder).search_runs()["run_id"]) == {first.id, carol_run.id}  # hers only
        refused = CliRunner().invoke(main, ["sync", str(ana_spool), "--to", url, "--token", tokens["carol"]])
        assert refused.exit_code != 0 and "holds ana's runs" in refused.output
        sent = CliRunner().invoke(main, ["sync", str(ana_spool), "--to", url, "--token", tokens["root"]])
        assert sent.exit_code == 0, sent.output
        grants = mltrail.Store(folder).access.show("experiment", "ana-later")
        assert grants[grants["via"] == "direct"][["user", "level"]].values.tolist() == [["ana", "manage"]]  # not root's
        ana = mltrail.Store(url, token=tokens["ana"], spool=tmp_path / "reader")
        assert ana.get_run(ana_run.id)["run"]["experiment"] == "ana-later"
        with pytest.raises(mltrail.NotFoundError):
            ana.get_run(carol_run.id)
        ana.close(wait=1)


def test_a_refused_ab_log_segment_counts_as_left(tmp_path, caplog):
    """dan may read the A/B experiment, not log into it: his exposures never arrive."""
    folder = tmp_path / "central"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name) for name in ("ana", "dan")}
    with serving_store(folder) as url:
        ana = mltrail.Store(url, token=tokens["ana"], spool=tmp_path / "spool-ana")
        ana.ab.create(ab_spec(key="offer")).start()
        ana.access.grant("ab", "offer", to="dan", level="read")
        dan = mltrail.Store(url, token=tokens["dan"], spool=tmp_path / "spool-dan")
        exp = dan.ab.get("offer")
        exp.log_exposure("u1", exp.assign("u1") or exp.control)
        with caplog.at_level(logging.WARNING, logger="mltrail.remote.store"):
            assert dan.close(wait=2) == 1
        assert "refused" in caplog.text and "PermissionDeniedError" in caplog.text
        assert ana.close(wait=2) == 0


def test_the_stop_watch_route_waits_only_as_asked_and_only_for_runs_the_caller_may_log_into(tmp_path):
    folder = tmp_path / "central"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name) for name in ("ana", "dan")}
    with serving_store(folder) as url:
        ana = mltrail.Store(url, token=tokens["ana"], spool=tmp_path / "spool")
        with quiet_run(ana, "private") as run:
            pass
        assert ana.close(wait=5) == 0
        watch = f"/api/v1/stop-requests?run={run.id}"
        for wait, at_least, at_most in (("nan", 0, 1.0), ("inf", 0, 1.0), ("-5", 0, 1.0), ("0.5", 0.5, 2.0)):
            started = time.monotonic()
            assert ana.server.call("GET", f"{watch}&wait={wait}") == {}
            assert at_least <= time.monotonic() - started < at_most, wait
        with pytest.raises(mltrail.NotFoundError):  # dan may not even know the run exists
            mltrail.Store(url, token=tokens["dan"], spool=tmp_path / "dan").server.call("GET", f"{watch}&wait=0")


def test_a_server_with_jobs_watching_for_stops_still_stops_at_once(tmp_path):
    """The stop watcher holds a call open on the server: SIGTERM ends it, not its wait."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "server",
                               "--store", str(tmp_path / "central"), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(f"{url}/api/v1/health", server)
        store = mltrail.Store(url, spool=tmp_path / "spool")
        run = quiet_run(store, "watched")
        wait_for(lambda: _running(store, run.id), what="the run on the server")
        time.sleep(0.5)  # (the watcher's call is held open now)
        asked = time.monotonic()
        server.terminate()
        server.communicate(timeout=30)
        assert time.monotonic() - asked < 3.0, f"the server took {time.monotonic() - asked:.1f} s to stop"
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    run.end()
    store.close(wait=0)
