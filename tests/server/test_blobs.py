"""Blobs through a real ``mltrail server``: larger than its body limit they travel in
checksummed parts and arrive intact, a cut upload resumes from the parts the server holds,
a part that is not what its sender hashed is refused; whether a blob exists is said only
to who may read it or sent it, and bytes nothing names stay out of git until gc removes them."""

import hashlib
import math
import http.client
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from mltrail.errors import InvalidInputError, UpstreamError
from mltrail.remote.http import Server
from tests.factories import free_port, git, quiet_run, serving_store, wait_for, wait_for_http

LIMIT = 64 << 10  # the server's --max-body in these tests: a part is at most this


def _random_file(path, size, seed):
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


class CountingServer(Server):
    """The real client, counting the bytes of the parts it sends; ``cut_after`` parts the
    connection drops (as when the job is killed or the network goes) before the next one leaves."""

    def __init__(self, url, token=None, cut_after=None):
        super().__init__(url, token)
        self.part_bytes = 0
        self.parts = 0
        self.cut_after = cut_after

    def call(self, method, path, body=None, missing_ok=False, raw=False):
        if "/parts?" in path:
            if self.cut_after is not None and self.parts >= self.cut_after:
                raise UpstreamError(f"cannot reach {self.url}: connection reset")
            self.parts += 1
            self.part_bytes += len(body)
        return super().call(method, path, body, missing_ok, raw)


def send_blob(*args, **kwargs):
    from mltrail.remote.blob_upload import send_blob  # (here: the tests that do not need it ran before it existed)

    return send_blob(*args, **kwargs)


def _status(url, token=None):
    """The status and body of a raw GET, whatever the status."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow
def test_an_artifact_larger_than_the_body_limit_arrives_intact(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_GIT_ARTIFACT_MAX", str(300 << 10))  # this one is a large (not in git) artifact
    model, sha256 = _random_file(tmp_path / "model.bin", 1 << 20, seed=5)  # 16 times the limit
    folder = tmp_path / "central"
    with serving_store(folder, max_body=LIMIT) as url:
        remote = mltrail.Store(url, spool=tmp_path / "spool")
        with quiet_run(remote, "big") as run:
            run.log_artifact(model)
        assert remote.close(wait=60) == 0
        reader = mltrail.Store(url, spool=tmp_path / "reader-spool")  # the download streams to disk
        fetched = reader.artifact_path(run.id, "model.bin")
        assert hashlib.sha256(fetched.read_bytes()).hexdigest() == sha256
        with pytest.raises(mltrail.PayloadTooLargeError):  # the limit holds for a body in one piece
            Server(url).call("PUT", f"/api/v1/blobs/{sha256}", model.read_bytes()[:LIMIT + 1])
        reader.close(wait=0)
    local = mltrail.Store(folder)
    on_server = local.artifact_path(run.id, "model.bin")
    assert on_server.is_relative_to(folder / "blobs-large") and on_server.read_bytes() == model.read_bytes()
    assert not any(local.layout.uploads.rglob("*.*"))  # nothing left in staging


@pytest.mark.slow
def test_sync_sends_an_artifact_larger_than_the_body_limit(tmp_path):
    offline = mltrail.Store(tmp_path / "offline")
    model, sha256 = _random_file(tmp_path / "model.bin", 600 << 10, seed=6)
    with quiet_run(offline, "big") as run:
        run.log_artifact(model)
    with serving_store(tmp_path / "central", max_body=LIMIT) as url:
        result = CliRunner().invoke(main, ["sync", str(offline.root), "--to", url])
        assert result.exit_code == 0, result.output
        assert "1 of 1 runs had new lines" in result.output and "1 blobs" in result.output
    assert mltrail.Store(tmp_path / "central").artifact_path(run.id, "model.bin").read_bytes() == model.read_bytes()


def test_an_upload_cut_midway_resumes_from_the_parts_the_server_holds(tmp_path):
    model, sha256 = _random_file(tmp_path / "model.bin", 10 * LIMIT + 123, seed=7)
    with serving_store(tmp_path / "central", max_body=LIMIT) as url:
        cut = CountingServer(url, cut_after=4)
        with pytest.raises(UpstreamError):
            send_blob(cut, sha256, model, large=False)
        assert cut.part_bytes == 4 * LIMIT
        assert Server(url).call("GET", f"/api/v1/blobs/{sha256}/upload") == {
            "offset": 4 * LIMIT, "complete": False, "part_bytes": LIMIT}
        again = CountingServer(url)
        assert send_blob(again, sha256, model, large=False) == 6 * LIMIT + 123
        assert again.part_bytes == 6 * LIMIT + 123 and again.parts == 7  # only what the server lacked
        assert Server(url).call("GET", f"/api/v1/blobs/{sha256}/upload")["complete"] is True
        assert send_blob(CountingServer(url), sha256, model, large=False) == 0  # complete: nothing to send


def test_a_part_that_does_not_hash_to_its_sha256_is_refused_and_not_kept(tmp_path):
    model, sha256 = _random_file(tmp_path / "model.bin", 3 * LIMIT, seed=8)
    data = model.read_bytes()
    with serving_store(tmp_path / "central", max_body=LIMIT) as url:
        server = Server(url)
        first = data[:LIMIT]
        server.call("PUT", f"/api/v1/blobs/{sha256}/parts?offset=0&sha256={hashlib.sha256(first).hexdigest()}", first)
        damaged = b"x" + data[LIMIT + 1:2 * LIMIT]
        with pytest.raises(InvalidInputError, match="hashes to .*not kept"):
            server.call("PUT", f"/api/v1/blobs/{sha256}/parts?offset={LIMIT}&sha256="
                        f"{hashlib.sha256(data[LIMIT:2 * LIMIT]).hexdigest()}", damaged)
        assert server.call("GET", f"/api/v1/blobs/{sha256}/upload")["offset"] == LIMIT  # cut back to the good part
        with pytest.raises(mltrail.WrongStateError, match="holds 65,536 bytes"):  # a part that skips ahead
            server.call("PUT", f"/api/v1/blobs/{sha256}/parts?offset={2 * LIMIT}&sha256="
                        f"{hashlib.sha256(data[2 * LIMIT:]).hexdigest()}", data[2 * LIMIT:])
        assert send_blob(server, sha256, model, large=False) == 2 * LIMIT


@pytest.fixture
def users(tmp_path):
    """A server with users ana and dan (no grants between them), its folder and their tokens."""
    folder = tmp_path / "central"
    local = mltrail.Store(folder)
    local.layout.ensure()  # as mltrail server does
    tokens = {name: local.access.add_user(name) for name in ("ana", "dan")}
    with serving_store(folder, max_body=LIMIT) as url:
        yield url, folder, tokens


@pytest.mark.slow
def test_whether_a_blob_exists_is_said_only_to_who_may_read_it(users, tmp_path):
    url, _, tokens = users
    notes, sha256 = _random_file(tmp_path / "notes.bin", 2 * LIMIT, seed=9)
    ana = mltrail.Store(url, token=tokens["ana"], spool=tmp_path / "spool-ana")
    with quiet_run(ana, "ana-private") as run:
        run.log_artifact(notes)
    assert ana.close(wait=60) == 0
    assert _status(f"{url}/api/v1/blobs/{sha256}", tokens["ana"])[0] == 200
    nothing = "0" * 64
    for path in ("", "/content", "/upload"):
        private = _status(f"{url}/api/v1/blobs/{sha256}{path}", tokens["dan"])
        missing = _status(f"{url}/api/v1/blobs/{nothing}{path}", tokens["dan"])
        assert private[0] == missing[0]
        assert private[1].replace(sha256.encode(), b"SHA") == missing[1].replace(nothing.encode(), b"SHA")
    assert _status(f"{url}/api/v1/blobs/{sha256}", tokens["dan"])[0] == 404
    dan = Server(url, tokens["dan"])  # the same bytes, sent by dan himself: he may know he sent them
    assert send_blob(dan, sha256, notes, large=False) == 2 * LIMIT
    assert _status(f"{url}/api/v1/blobs/{sha256}", tokens["dan"])[0] == 200
    assert _status(f"{url}/api/v1/blobs/{sha256}/content", tokens["dan"])[0] == 404  # but not read ana's


@pytest.mark.slow
def test_bytes_nothing_names_stay_out_of_git_and_gc_removes_them(users, tmp_path):
    url, folder, tokens = users
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "the store")
    dan = Server(url, tokens["dan"])
    small = b"small, in one body"
    small_sha256 = hashlib.sha256(small).hexdigest()
    dan.call("PUT", f"/api/v1/blobs/{small_sha256}", small)
    assert git(folder, "status", "--porcelain", "--untracked-files=all") == ""
    stray, sha256 = _random_file(tmp_path / "stray.bin", 3 * LIMIT, seed=10)
    assert send_blob(dan, sha256, stray, large=False) == 3 * LIMIT
    assert _status(f"{url}/api/v1/blobs/{sha256}", tokens["dan"])[0] == 200  # his own upload
    assert _status(f"{url}/api/v1/blobs/{sha256}", tokens["ana"])[0] == 404
    assert git(folder, "status", "--porcelain", "--untracked-files=all") == ""
    store = mltrail.Store(folder)
    for name in (sha256, small_sha256):
        assert not store.layout.blob_path(name).exists() and not store.layout.blob_path(name, large=True).exists()
    assert store.gc().uploads == []  # kept a while: the line that names it may be on its way
    staged = [p for p in store.layout.uploads.rglob("*") if p.is_file()]
    assert len(staged) == 2
    day_and_more = time.time() - 25 * 3600
    for path in staged:
        os.utime(path, (day_and_more, day_and_more))  # as if sent a day ago
    assert sorted(store.gc().uploads) == sorted(staged)
    assert not any(p.is_file() for p in store.layout.uploads.rglob("*"))
    assert _status(f"{url}/api/v1/blobs/{sha256}", tokens["dan"])[0] == 404


def test_a_blob_another_sender_is_sending_is_left_for_later_not_refused(tmp_path):
    """While one part of a blob is on its way, a second sender of the same user (the job's
    close() beside its uploader thread, or sync beside the job) is told to come back: an
    UpstreamError its caller retries, not a refusal that would drop the run's lines."""
    model, sha256 = _random_file(tmp_path / "model.bin", 2 * LIMIT, seed=11)
    data = model.read_bytes()
    go_on = threading.Event()
    with serving_store(tmp_path / "central", max_body=LIMIT) as url:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)

        def slow_part():  # the first half, then the rest only once told
            yield data[:LIMIT // 2]
            go_on.wait(30)
            yield data[LIMIT // 2:LIMIT]

        def first_sender():
            connection.request("PUT", f"/api/v1/blobs/{sha256}/parts?offset=0&sha256={hashlib.sha256(data[:LIMIT]).hexdigest()}",
                               body=slow_part(), headers={"Content-Length": str(LIMIT)})
            connection.getresponse().read()

        sending = threading.Thread(target=first_sender)
        sending.start()
        store = mltrail.Store(tmp_path / "central")
        try:
            wait_for(lambda: any(store.layout.uploads.rglob("*.part")), what="the first part to be on its way")
            with pytest.raises(UpstreamError, match="being written"):
                send_blob(Server(url), sha256, model, large=False)
        finally:
            go_on.set()
            sending.join(30)
            connection.close()
        assert send_blob(Server(url), sha256, model, large=False) == LIMIT  # the rest, after the first part


@pytest.mark.slow
def test_mltrail_server_max_body_sets_the_limit(tmp_path):
    limit = 16 << 20
    refused = CliRunner().invoke(main, ["server", "--store", str(tmp_path / "c"), "--max-body", str(8 << 20)])
    assert refused.exit_code == 2 and "--max-body" in refused.output  # below a run's batch of lines
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "server", "--store",
                               str(tmp_path / "central"), "--port", str(port), "--max-body", str(limit)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v1/health", server)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.putrequest("PUT", f"/api/v1/blobs/{'ab' * 32}")  # one byte too many, declared up front
        connection.putheader("Content-Length", str(limit + 1))
        connection.endheaders()
        answer = connection.getresponse()
        assert answer.status == 413 and "16,777,216 bytes" in answer.read().decode()
        connection.close()
    finally:
        server.terminate()
        server.communicate(timeout=30)


class ResettingServer(Server):
    """The real client behind something that resets every blob body on its way (a proxy
    with a lower limit than the server's): counts the bytes it was asked to send."""

    def __init__(self, url):
        super().__init__(url)
        self.bytes_tried = 0
        self.tries = 0

    def call(self, method, path, body=None, missing_ok=False, raw=False):
        if method == "PUT" and path.startswith("/api/v1/blobs/") and body:
            self.tries += 1
            self.bytes_tried += len(body)
            raise UpstreamError(f"cannot reach {self.url}: [Errno 104] Connection reset by peer")
        return super().call(method, path, body, missing_ok, raw)


@pytest.mark.slow
def test_a_blob_that_keeps_failing_is_tried_again_a_part_at_a_time_and_less_often(tmp_path):
    model, _ = _random_file(tmp_path / "model.bin", 1 << 20, seed=12)
    with serving_store(tmp_path / "central", max_body=LIMIT) as url:
        remote = mltrail.Store(url, spool=tmp_path / "spool")
        remote.server = flaky = ResettingServer(url)  # (before the run: its uploader takes this one)
        started = time.monotonic()
        with quiet_run(remote, "big") as run:
            run.log_artifact(model)
        assert remote.close(wait=3) == 1  # the run waits in the spool
        seconds = time.monotonic() - started
    # at four ticks a second the whole file went every tick; now a try sends one part, and the
    # tries are 0.25, 0.5, 1, 2... s apart (the first two allowed extra: the thread's and close's)
    assert flaky.tries <= 2 + math.log2(seconds / 0.25 + 1), (flaky.tries, seconds)
    assert flaky.bytes_tried == flaky.tries * LIMIT < model.stat().st_size


@pytest.mark.slow
def test_a_line_naming_a_blob_its_writer_never_sent_is_refused(users, tmp_path):
    """Naming a hash in a run line must not stand in for the bytes: it would make another
    user's private blob readable, and say whether the server holds it."""
    url, _, tokens = users
    notes, sha256 = _random_file(tmp_path / "notes.bin", 2 * LIMIT, seed=13)
    ana = mltrail.Store(url, token=tokens["ana"], spool=tmp_path / "spool-ana")
    with quiet_run(ana, "ana-private") as run:
        run.log_artifact(notes)
    assert ana.close(wait=60) == 0
    dans = mltrail.Store(tmp_path / "dan-local")  # dan has the same file, and logs it locally
    with quiet_run(dans, "dan-exp") as forged:
        forged.log_artifact(notes)
    dan = Server(url, tokens["dan"])  # then sends the run's lines without the blob
    with pytest.raises(InvalidInputError, match=f"names blob {sha256}, which you have not sent"):
        dan.call("POST", f"/api/v1/runs/{forged.id}/events?experiment=dan-exp", forged.path.read_bytes())
    assert _status(f"{url}/api/v1/blobs/{sha256}", tokens["dan"])[0] == 404
    assert _status(f"{url}/api/v1/blobs/{sha256}/content", tokens["dan"])[0] == 404
    assert send_blob(dan, sha256, notes, large=False) == 2 * LIMIT  # with the bytes sent first, it goes
    assert dan.call("POST", f"/api/v1/runs/{forged.id}/events?experiment=dan-exp", forged.path.read_bytes())["written"]
    assert _status(f"{url}/api/v1/blobs/{sha256}/content", tokens["dan"])[1] == notes.read_bytes()


@pytest.mark.slow
def test_a_users_runs_that_share_a_blob_send_it_once(users, tmp_path):
    url, folder, tokens = users
    model, sha256 = _random_file(tmp_path / "model.bin", 2 * LIMIT, seed=14)
    ana = mltrail.Store(url, token=tokens["ana"], spool=tmp_path / "spool-ana")
    ids = []
    for name in ("first", "second"):  # (the same package list too: each run's environment names it)
        with ana.start_run("ana-exp", name=name, log_git=False) as run:
            run.log_artifact(model)
        ids.append(run.id)
        assert ana.close(wait=60) == 0
    local = mltrail.Store(folder)
    assert [local.artifact_path(i, "model.bin").read_bytes() == model.read_bytes() for i in ids] == [True, True]
    packages = {local.get_run(i)["run"]["packages_sha256"] for i in ids}
    assert len(packages) == 1 and local.blobs.path(packages.pop()).exists()


@pytest.mark.slow
def test_a_runs_package_list_is_read_by_who_may_read_the_run(users, tmp_path):
    url, _, tokens = users
    ana = mltrail.Store(url, token=tokens["ana"], spool=tmp_path / "spool-ana")
    with ana.start_run("ana-exp", log_git=False) as run:  # its environment names the package list, a blob
        pass
    assert ana.close(wait=60) == 0
    elsewhere = mltrail.Store(url, token=tokens["ana"], spool=tmp_path / "ana-elsewhere")  # (not her job's spool)
    packages = elsewhere.get_run(run.id)["run"]["packages_sha256"]
    assert b"pytest" in elsewhere.blob(packages)  # {name: version} of this environment
    with pytest.raises(mltrail.NotFoundError):
        mltrail.Store(url, token=tokens["dan"], spool=tmp_path / "spool-dan").blob(packages)


def test_a_users_unnamed_uploads_are_bounded_and_an_abandoned_one_frees_its_room(users, tmp_path, monkeypatch):
    """Bytes nothing names wait a day for the line naming them; without a bound one user
    could fill the server's disk meanwhile. Past MLTRAIL_STAGED_MAX_BYTES their next part
    waits (503, which a job's uploader retries); others are not concerned; an upload
    untouched for a day gives its room back by itself."""
    url, folder, tokens = users
    monkeypatch.setenv("MLTRAIL_STAGED_MAX_BYTES", str(4 * LIMIT))
    dan = Server(url, tokens["dan"])
    first, first_sha256 = _random_file(tmp_path / "first.bin", 2 * LIMIT, seed=11)
    second, second_sha256 = _random_file(tmp_path / "second.bin", 2 * LIMIT, seed=12)
    assert send_blob(dan, first_sha256, first, large=False) == 2 * LIMIT
    assert send_blob(dan, second_sha256, second, large=False) == 2 * LIMIT
    third, third_sha256 = _random_file(tmp_path / "third.bin", LIMIT, seed=13)
    part = third.read_bytes()
    put_third = f"/api/v1/blobs/{third_sha256}/parts?offset=0&sha256={hashlib.sha256(part).hexdigest()}"
    with pytest.raises(mltrail.BusyError, match="no run names yet"):
        dan.call("PUT", put_third, part)
    assert send_blob(Server(url, tokens["ana"]), third_sha256, third, large=False) == LIMIT  # ana's own room
    store = mltrail.Store(folder)
    day_and_more = time.time() - 25 * 3600
    for path in store.layout.upload_dir("dan").glob(f"{first_sha256}.*"):
        os.utime(path, (day_and_more, day_and_more))  # dan's first upload was abandoned a day ago
    dan.call("PUT", put_third, part)
    assert not list(store.layout.upload_dir("dan").glob(f"{first_sha256}.*"))
