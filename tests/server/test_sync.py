"""`mltrail server` and `mltrail sync` with real processes: a store logged where the
server was out of reach is uploaded afterwards, exactly once, and reads the same."""

import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from mltrail.server.sync import sync_store
from tests.factories import free_port, quiet_run, serving_store, wait_for, wait_for_http

pytestmark = pytest.mark.slow  # a real server process


def _serve(folder, env=None):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "server",
                             "--store", str(folder), "--port", str(port)],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/api/v1/health", proc, 60)
    return proc, url


def _same_store(local, remote):
    mine, theirs = local.search_runs(), remote.search_runs()
    columns = [c for c in mine.columns if c != "status"]
    pd.testing.assert_frame_equal(mine[columns], theirs[columns])
    pd.testing.assert_frame_equal(local.metric_history(), remote.metric_history())


def _log(store, runs, points, tmp_path):
    ids = []
    for r in range(runs):
        with quiet_run(store, f"exp{r % 2}", name=f"job-{r}") as run:
            run.log_params({"lr": 10 ** -r})
            for step in range(points):
                run.log_metrics({"loss": 1 / (step + 1), "acc": step / points}, step=step)
                if step % 50 == 0:
                    run.flush()  # many lines, as a long job writes them
            model = tmp_path / f"model-{r}.txt"
            model.write_text(f"weights {r}")
            run.log_artifact(model)
        ids.append(run.id)
    return ids


@pytest.fixture
def server_folder(tmp_path):
    folder = tmp_path / "central"
    proc, url = _serve(folder)
    yield folder, url, proc
    proc.terminate()
    proc.communicate(timeout=30)


def test_a_store_synced_reads_the_same_through_the_servers_folder(server_folder, tmp_path):
    folder, url, _ = server_folder
    local = mltrail.Store(tmp_path / "offline")
    ids = _log(local, 3, 300, tmp_path)
    result = CliRunner().invoke(main, ["sync", str(local.root), "--to", url])
    assert result.exit_code == 0, result.output
    assert "3 of 3 runs had new lines" in result.output and "3 blobs" in result.output
    remote = mltrail.Store(folder)
    _same_store(local, remote)
    assert remote.artifact_path(ids[0], "model-0.txt").read_text() == "weights 0"
    again = sync_store(local, url)  # nothing new: nothing sent
    assert (again.runs_sent, again.lines_sent, again.blobs_sent) == (0, 0, 0)
    resumed = local.start_run(run_id=ids[1])  # the job goes on: only its new lines go up
    resumed.log_metric("loss", 0.01)
    resumed.end()
    more = sync_store(local, url)
    assert more.runs_sent == 1 and more.lines_sent == 3  # resumed, the point, finished
    _same_store(local, mltrail.Store(folder))
    local.set_run_name(ids[0], "kept", by="ana")  # curated offline: the edits go up too, once
    local.delete_run(ids[2], by="ana")
    curated = sync_store(local, url)
    assert (curated.edits_sent, curated.lines_sent) == (2, 0)
    assert sync_store(local, url).edits_sent == 0
    _same_store(local, mltrail.Store(folder))
    assert mltrail.Store(folder).run_edits(ids[0])["by"].tolist() == ["ana"]


def test_a_server_killed_mid_sync_gets_every_line_exactly_once(tmp_path):
    local = mltrail.Store(tmp_path / "offline")
    _log(local, 4, 3000, tmp_path)
    folder = tmp_path / "central"
    proc, url = _serve(folder)
    sync = subprocess.Popen([sys.executable, "-c", f"""
from mltrail.server.sync import sync_store
import mltrail
sync_store(mltrail.Store({str(local.root)!r}), {url!r}, batch_bytes=400)
"""], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(folder.glob("experiments/*/runs/*.jsonl")), what="the first lines to arrive")
    proc.send_signal(signal.SIGKILL)  # mid-write, maybe
    proc.communicate(timeout=30)
    _, err = sync.communicate(timeout=60)
    assert sync.returncode != 0 and "cannot reach" in err
    proc, url = _serve(folder, {})  # the same folder, a new server process
    try:
        sync_store(local, url)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    _same_store(local, mltrail.Store(folder))


def test_a_sync_with_no_server_says_so(tmp_path):
    local = mltrail.Store(tmp_path / "offline")
    with quiet_run(local, "e") as run:
        run.log_metric("loss", 1.0)
    result = CliRunner().invoke(main, ["sync", str(local.root), "--to", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1 and "cannot reach http://127.0.0.1:" in result.output


def test_sync_sends_every_run_it_may_and_names_each_refused_one(tmp_path, monkeypatch):
    folder = tmp_path / "central"
    central = mltrail.Store(folder)
    central.layout.ensure()
    tokens = {name: central.access.add_user(name) for name in ("ana", "bob")}
    offline = mltrail.Store(tmp_path / "offline")  # bob's, logged where the server was out of reach
    with quiet_run(offline, "aaa-private", name="into-anas"):  # first in the sync's order
        pass
    monkeypatch.setenv("MLTRAIL_GIT_ARTIFACT_MAX", "10")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights that were never copied here")
    with quiet_run(offline, "zzz-mine", name="lost-model") as lost:
        lost.log_artifact(model)
    offline.blobs.path(offline.get_run(lost.id)["artifacts"]["sha256"].iloc[0]).unlink()  # blobs-large/ not copied
    mine = []
    for i in range(3):
        with quiet_run(offline, "zzz-mine", name=f"mine-{i}") as run:
            run.log_metric("loss", 1 / (i + 1))
        mine.append(run.id)
    with serving_store(folder) as url:
        ana = mltrail.Store(url, token=tokens["ana"], spool=tmp_path / "spool-ana")
        with quiet_run(ana, "aaa-private"):  # ana's: bob has no grant to it
            pass
        assert ana.close(wait=30) == 0
        result = CliRunner().invoke(main, ["sync", str(offline.root), "--to", url, "--token", tokens["bob"]])
        assert result.exit_code == 1, result.output
        assert "3 of 5 runs had new lines" in result.output and "the server refused 2" in result.output
        assert "refused: run into-anas (aaa-private): no experiment 'aaa-private'" in result.output
        assert "refused: run lost-model (zzz-mine): blob " in result.output
        again = sync_store(offline, url, tokens["bob"])  # nothing new; the same two refused, by name
        assert again.lines_sent == 0 and [what for what, _ in again.refused] == [
            "run into-anas (aaa-private)", "run lost-model (zzz-mine)"]
    on_server = mltrail.Store(folder).search_runs(experiment="zzz-mine")
    assert sorted(on_server["run_id"]) == sorted(mine)
