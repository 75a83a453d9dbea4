"""mltrail.Store("http://...") with real processes: a training job logs through a
server that may be down, killed or never there, and every point arrives exactly once."""

import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from tests.factories import free_port, run_python, spawn_python, wait_for, wait_for_http

pytestmark = pytest.mark.slow  # real server and training processes

JOB = """
import time, mltrail
store = mltrail.Store({url!r}, spool={spool!r})
for r in range({runs}):
    with store.start_run("remote", name=f"job-{{r}}", log_git=False, log_packages=False) as run:
        run.log_params({{"lr": 0.1, "r": r}})
        for step in range({steps}):
            run.log_metrics({{"loss": 1 / (step + 1), "acc": step / {steps}}}, step=step)
            time.sleep({pause})
print("job done", flush=True)
"""


def _serve(folder, port):
    proc = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "server",
                             "--store", str(folder), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_http(f"http://127.0.0.1:{port}/api/v1/health", proc, 60)
    return proc


def _stop(proc):
    """Stop a server; what it printed."""
    proc.terminate()
    return proc.communicate(timeout=30)[0]


def _same_points(spool, folder):
    pd.testing.assert_frame_equal(mltrail.Store(spool).metric_history(), mltrail.Store(folder).metric_history())


def _every_point_once(folder, spool, runs, steps):
    """The server holds each point JOB logged, once; the spool, which sent them all, no
    longer holds the runs (pruned once the server had everything)."""
    central = mltrail.Store(folder)
    history = central.metric_history().merge(central.search_runs()[["run_id", "run_name"]], on="run_id")
    assert len(history) == runs * steps * 2 and not history.duplicated(["run_id", "key", "step"]).any()
    assert set(history["run_name"]) == {f"job-{r}" for r in range(runs)}
    expected = (1 / (history["step"] + 1)).where(history["key"] == "loss", history["step"] / steps)
    assert (history["value"] == expected).all()
    assert not list(spool.glob("experiments/*/runs/*.jsonl"))


def test_a_job_logging_to_a_url_reads_the_same_through_the_server(tmp_path):
    folder, spool, port = tmp_path / "central", tmp_path / "spool", free_port()
    server = _serve(folder, port)
    url = f"http://127.0.0.1:{port}"
    try:
        job = run_python(JOB.format(url=url, spool=str(spool), runs=2, steps=500, pause=0), tmp_path,
                         env={"MLTRAIL_FLUSH_SECONDS": "0.2"})
        assert job.returncode == 0 and "job done" in job.stdout, job.stderr
        assert "wait in" not in job.stderr  # everything went up before it exited
        _every_point_once(folder, spool, runs=2, steps=500)
        remote = mltrail.Store(url)
        local = mltrail.Store(folder)
        pd.testing.assert_frame_equal(remote.search_runs(order_by="metrics.loss"),
                                      local.search_runs(order_by="metrics.loss"))
        job_0 = local.search_runs(filter="attributes.run_name = 'job-0'")["run_id"][0]
        pd.testing.assert_frame_equal(remote.metric_history([job_0], ["acc"]), local.metric_history([job_0], ["acc"]))
        with pytest.raises(mltrail.FilterSyntaxError, match="invalid filter"):
            remote.search_runs(filter="metrics.loss >")
        with pytest.raises(mltrail.NotFoundError, match="no experiment 'nope'"):
            remote.search_runs(experiment="nope")
        with pytest.raises(mltrail.NotOnServerError, match="as a run's artifact"):
            remote.put_file(folder)
    finally:
        _stop(server)


def test_a_server_killed_and_restarted_while_a_job_logs_gets_every_point_once(tmp_path):
    folder, spool, port = tmp_path / "central", tmp_path / "spool", free_port()
    server = _serve(folder, port)
    job = spawn_python(JOB.format(url=f"http://127.0.0.1:{port}", spool=str(spool), runs=1, steps=1500,
                                  pause=0.004), tmp_path,
                       env={"MLTRAIL_FLUSH_SECONDS": "0.2", "MLTRAIL_UPLOAD_WAIT_SECONDS": "30"})
    wait_for(lambda: any(folder.glob("experiments/*/runs/*.jsonl")), what="the job's first lines on the server")
    server.send_signal(signal.SIGKILL)
    server.communicate(timeout=30)
    time.sleep(1.5)  # the job goes on logging into its spool meanwhile
    assert job.poll() is None, "the job must not fail or stop because the server is away"
    server = _serve(folder, port)
    try:
        out, err = job.communicate(timeout=120)
        assert job.returncode == 0 and "job done" in out, err
        assert "wait in" not in err
        _every_point_once(folder, spool, runs=1, steps=1500)
    finally:
        _stop(server)


def test_two_jobs_logging_at_once_each_get_every_point_once(tmp_path):
    """Two training processes, each with its own spool (two machines), log into one
    experiment of one server at the same time."""
    folder, port = tmp_path / "central", free_port()
    server = _serve(folder, port)
    url = f"http://127.0.0.1:{port}"
    try:
        jobs = [spawn_python(JOB.format(url=url, spool=str(tmp_path / f"spool-{i}"), runs=2, steps=800, pause=0.001),
                             tmp_path, env={"MLTRAIL_FLUSH_SECONDS": "0.2"}) for i in range(2)]
        for job in jobs:
            out, err = job.communicate(timeout=120)
            assert job.returncode == 0 and "job done" in out and "wait in" not in err, err
    finally:
        _stop(server)
    central = mltrail.Store(folder)
    runs = central.search_runs(experiment="remote")
    assert len(runs) == 4 and set(runs["status"]) == {"FINISHED"}
    history = central.metric_history()
    assert len(history) == 4 * 800 * 2 and not history.duplicated(["run_id", "key", "step"]).any()
    for i in range(2):  # each job's spool sent all it held, and let go of it
        assert not list((tmp_path / f"spool-{i}").glob("experiments/*/runs/*.jsonl"))


def test_a_job_with_no_server_finishes_and_sync_sends_its_runs_later(tmp_path):
    folder, spool, port = tmp_path / "central", tmp_path / "spool", free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    job = run_python(JOB.format(url=url, spool=str(spool), runs=2, steps=100, pause=0), tmp_path,
                     env={"MLTRAIL_UPLOAD_WAIT_SECONDS": "1"})
    assert job.returncode == 0 and "job done" in job.stdout, job.stderr
    assert time.monotonic() - started < 30
    assert f"2 run(s) not yet on {url} wait in {spool}" in job.stderr
    assert f"mltrail sync {spool} --to {url}" in job.stderr
    server = _serve(folder, port)
    try:
        synced = CliRunner().invoke(main, ["sync", str(spool), "--to", url])
        assert synced.exit_code == 0, synced.output
        _same_points(spool, folder)
        assert list(mltrail.Store(folder).search_runs()["status"]) == ["FINISHED", "FINISHED"]
    finally:
        _stop(server)


def test_mltrail_dir_may_be_a_url(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_DIR", "http://127.0.0.1:5999")
    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))
    store = mltrail.Store()
    assert repr(store) == "Store('http://127.0.0.1:5999')" and store.spool == tmp_path / "spool"
    assert hasattr(store, "registry") and hasattr(store, "put_file") and not hasattr(store, "_private")


def test_a_spool_file_removed_under_the_job_is_reported_not_raised(tmp_path, caplog):
    remote = mltrail.Store(f"http://127.0.0.1:{free_port()}", spool=tmp_path / "spool")
    run = remote.start_run("e", log_git=False, log_packages=False)
    run.log_metric("loss", 1.0)
    run.end()
    run.path.unlink()
    assert remote.upload() == 0
    assert "left the spool before it all reached" in caplog.text  # (a warning of mltrail.remote.store)


def test_a_job_logging_to_a_server_is_stopped_from_another_machine(tmp_path):
    folder, spool, port = tmp_path / "central", tmp_path / "spool", free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(folder, port)
    job = spawn_python(f"""
import time, mltrail
with mltrail.Store({url!r}, spool={str(spool)!r}).start_run("remote", name="long", log_git=False,
                                                         log_packages=False, stop="raise") as run:
    for step in range(100_000):
        run.log_metric("loss", 1 / (step + 1))
        time.sleep(0.01)
""", tmp_path, env={"MLTRAIL_FLUSH_SECONDS": "0.2"})
    try:
        wait_for(lambda: mltrail.Store(folder).search_runs().shape[0] == 1 if any(
            folder.glob("experiments/*/runs/*.jsonl")) else False, what="the job's run on the server")
        asked = time.time()
        result = CliRunner().invoke(main, ["stop", "long", "--reason", "enough", "--by", "ana", "--store", url])
        assert result.exit_code == 0, result.output
        _, err = job.communicate(timeout=60)
        assert job.returncode != 0 and "RunStopRequested" in err
        wait_for(lambda: mltrail.Store(folder).search_runs()["status"][0] == "KILLED", what="KILLED on the server")
        run = mltrail.Store(folder).get_run("long")["run"]
        assert run["error"] == "stop requested by ana: enough"
        assert run["end_time"].timestamp() - asked <= 3.0  # the stop watcher hands it to the run at once
        steps = mltrail.Store(folder).metric_history()["step"]
        assert steps.tolist() == list(range(len(steps)))  # each point once, none lost
        assert not list(spool.glob("experiments/*/runs/*.jsonl"))
    finally:
        _stop(server)


def test_one_server_per_folder(tmp_path):
    """The server is each run file's one writer: a second server on the same folder is
    refused, clearly, and the first goes on serving."""
    folder, port = tmp_path / "central", free_port()
    server = _serve(folder, port)
    try:
        second = subprocess.run([sys.executable, "-c", "from mltrail.cli import main; main()", "server",
                                 "--store", str(folder), "--port", str(free_port())],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "another mltrail server already serves" in second.stderr
        assert server.poll() is None
    finally:
        printed = _stop(server)
    assert " - GET /api/v1/health 200 " in printed  # its access log: who, what, how it ended
    refused = CliRunner().invoke(main, ["server", "--store", f"http://127.0.0.1:{port}"])
    assert refused.exit_code == 1 and "serves a folder" in refused.output


def test_a_server_that_dies_mid_answer_reads_as_unreachable_not_as_a_crash():
    """A server killed while it sends an answer leaves the client a body cut short (httpx's
    RemoteProtocolError; urllib's was an IncompleteRead, not an OSError): it is the same
    'cannot reach' as a refused connection, so a sync or an upload retries it (CI once saw a
    killed server's half answer raise http.client.IncompleteRead)."""
    import socket
    import threading

    from mltrail.errors import UpstreamError
    from mltrail.remote.http import Server

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_half(status: bytes) -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 44\r\n\r\n{\"ok\"")
    try:
        for status, said in ((b"200 OK", "cannot reach .* broke mid-answer .*without sending complete message body"),
                             (b"500 Internal Server Error", r"refused GET /api/v1/health \(500\)")):
            thread = threading.Thread(target=answer_half, args=(status,))
            thread.start()
            with pytest.raises(UpstreamError, match=said):
                Server(f"http://127.0.0.1:{port}", timeout=10).call("GET", "/api/v1/health")
            thread.join(timeout=10)
    finally:
        listener.close()


def test_a_servers_options_given_for_a_folder_are_refused_by_name(tmp_path):
    with pytest.raises(mltrail.InvalidInputError, match="token, acting_as: for a store behind a server"):
        mltrail.Store(tmp_path / "folder", token="s3cret", acting_as="ana")
    assert not (tmp_path / "folder").exists()
    remote = mltrail.Store(f"http://127.0.0.1:{free_port()}", spool=tmp_path / "spool", crash_after=5)
    assert remote.crash_after == 5
