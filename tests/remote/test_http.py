"""The remote client (mltrail.remote.http.Server) on its own: the server's errors as their
types, the headers it sends, its timeouts within the caller's deadline, through an
``httpx.MockTransport`` (no server); keep-alive, abort() and close() against real sockets."""

import contextlib
import hashlib
import http.server
import select
import socket
import threading
import time
import tracemalloc

import httpx
import orjson
import pytest

import mltrail
from mltrail.errors import (
    FilterSyntaxError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UpstreamError,
    WrongStateError,
)
from mltrail.remote.http import ACTING_AS, Server
from tests.factories import wait_for

URL = "http://mltrail.test:5050"


def mocked(handler, **kwargs):
    """A Server whose requests go to ``handler`` (an ``httpx.Request`` -> ``httpx.Response``)."""
    return Server(URL, transport=httpx.MockTransport(handler), **kwargs)


def answering(status, content=b"{}", seen=None):
    def handler(request):
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, content=content)
    return handler


# -- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "kind"), [
    (401, InvalidInputError), (403, PermissionDeniedError), (404, NotFoundError), (409, WrongStateError),
    (413, PayloadTooLargeError), (422, InvalidInputError), (500, UpstreamError), (502, UpstreamError),
    (503, UpstreamError), (418, UpstreamError),
])
def test_each_status_is_raised_as_its_type_with_the_servers_message(status, kind):
    said = {"type": "NoSuchErrorType", "error": f"the server's own words ({status})"}
    with pytest.raises(kind) as raised:
        mocked(answering(status, orjson.dumps(said))).call("GET", "/api/v1/runs/r1?x=1")
    assert type(raised.value) is kind and str(raised.value) == f"the server's own words ({status})"


@pytest.mark.parametrize("body", [b"<html>Bad Gateway</html>", b"", b"[1, 2]", b'"text"', b"{}"])
def test_an_error_without_a_json_object_says_which_call_the_server_refused(body):
    with pytest.raises(PermissionDeniedError) as raised:
        mocked(answering(403, body)).call("POST", "/api/v1/models?secret=1", b"x")
    assert str(raised.value) == f"{URL} refused POST /api/v1/models (403)"  # (the query is not repeated)


def test_the_error_type_the_server_names_is_raised_with_its_message_as_it_was():
    message = "unexpected ')' at column 7\n  a = 1 )\n        ^"
    answer = orjson.dumps({"type": "FilterSyntaxError", "error": message})
    with pytest.raises(FilterSyntaxError) as raised:
        mocked(answering(422, answer)).call("GET", "/api/v1/search?filter=x")
    assert str(raised.value) == message


def test_missing_ok_turns_a_404_into_none_and_raw_gives_the_bytes():
    assert mocked(answering(404)).call("GET", "/api/v1/runs/r1", missing_ok=True) is None
    assert mocked(answering(200, b"\x00arrow")).call("GET", "/api/v1/experiments", raw=True) == b"\x00arrow"
    assert mocked(answering(200, b'{"a": [1]}')).call("GET", "/api/v1/x") == {"a": [1]}


@pytest.mark.parametrize(("fault", "said"), [
    (httpx.ConnectError("[Errno 111] Connection refused"), "GET /api/v1/health: ConnectError: .*refused"),
    (httpx.ConnectTimeout("timed out"), r"GET /api/v1/health timed out connecting \(after 60 s\)"),
    (httpx.ReadTimeout("timed out"), r"GET /api/v1/health timed out waiting for the answer \(after 60 s\)"),
    (httpx.WriteTimeout("timed out"), r"GET /api/v1/health timed out sending the request \(after 60 s\)"),
    (httpx.PoolTimeout("timed out"), r"GET /api/v1/health timed out waiting for a free connection"),
    (httpx.RemoteProtocolError("Server disconnected"), "GET /api/v1/health: RemoteProtocolError: Server disc"),
])
def test_a_connection_fault_is_an_upstream_error_naming_the_server_and_what_timed_out(fault, said):
    def handler(request):
        raise fault

    with pytest.raises(UpstreamError, match=f"^cannot reach {URL}: {said}"):
        mocked(handler).call("GET", "/api/v1/health?wait=1")


# -- what is sent -------------------------------------------------------------------------

def test_the_token_and_the_user_acted_as_go_with_every_call():
    seen = []
    server = mocked(answering(200, b"{}", seen), token="s3cret", acting_as="ana")
    server.call("POST", "/api/v1/models", b'{"name": "churn"}')
    server.call("GET", "/api/v1/whoami")
    for request in seen:
        assert request.headers["Authorization"] == "Bearer s3cret" and request.headers[ACTING_AS] == "ana"
    assert seen[0].content == b'{"name": "churn"}' and seen[0].headers["Content-Type"] == "application/octet-stream"
    assert "Content-Type" not in seen[1].headers


def test_without_a_token_no_authorization_header_is_sent():
    seen = []
    mocked(answering(200, b"{}", seen)).call("GET", "/api/v1/health")
    assert "Authorization" not in seen[0].headers and ACTING_AS not in seen[0].headers


# -- deadlines ----------------------------------------------------------------------------

def test_without_a_deadline_each_timeout_is_the_servers_default():
    seen = []
    mocked(answering(200, b"{}", seen), timeout=7.5).call("GET", "/api/v1/health")
    assert seen[0].extensions["timeout"] == {"connect": 7.5, "read": 7.5, "write": 7.5, "pool": 7.5}


def test_a_deadline_shorter_than_the_timeout_bounds_every_phase_of_the_call():
    seen = []
    server = mocked(answering(200, b"{}", seen), timeout=60)
    before = time.monotonic()
    with server.deadline(before + 2.0):
        server.call("GET", "/api/v1/health")
    timeouts = seen[0].extensions["timeout"]
    assert set(timeouts) == {"connect", "read", "write", "pool"}
    for phase, seconds in timeouts.items():
        assert 2.0 - (time.monotonic() - before) <= seconds <= 2.0, (phase, seconds)


def test_the_nearer_of_two_nested_deadlines_counts():
    seen = []
    server = mocked(answering(200, b"{}", seen))
    with server.deadline(time.monotonic() + 1.0), server.deadline(time.monotonic() + 30.0):
        server.call("GET", "/api/v1/health")
    assert seen[0].extensions["timeout"]["read"] <= 1.0


def test_a_call_after_its_deadline_passed_is_not_sent():
    seen = []
    server = mocked(answering(200, b"{}", seen))
    with server.deadline(time.monotonic() - 0.001), \
            pytest.raises(UpstreamError, match=f"no time left to reach {URL}: PUT /api/v1/blobs/x/parts was not sent"):
        server.call("PUT", "/api/v1/blobs/x/parts?offset=0", b"part")
    assert seen == []
    server.call("GET", "/api/v1/health")  # (outside the deadline, calls go again)
    assert len(seen) == 1


def test_a_deadline_is_the_calling_threads_own():
    seen = []
    server = mocked(answering(200, b"{}", seen))
    other = threading.Thread(target=server.call, args=("GET", "/api/v1/health"))
    with server.deadline(time.monotonic() + 0.5):
        other.start()
        other.join()
    assert seen[0].extensions["timeout"]["read"] == 60.0


# -- streaming ----------------------------------------------------------------------------

def test_a_download_streams_to_its_file_in_constant_memory(tmp_path):
    block, blocks = b"m" * (1 << 20), 48  # a 48 MiB answer, made a MiB at a time

    def handler(request):
        return httpx.Response(200, content=(block for _ in range(blocks)))

    tracemalloc.start()
    try:
        digest = mocked(handler).download("/api/v1/blobs/b/content", tmp_path / "model.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest == hashlib.sha256(block * blocks).hexdigest() == hashlib.sha256(
        (tmp_path / "model.bin").read_bytes()).hexdigest()
    assert peak < 8 << 20, f"{peak / 2**20:.1f} MiB held for a 48 MiB download"


def test_a_download_cut_short_is_an_upstream_error(tmp_path):
    def handler(request):
        def body():
            yield b"x" * 1000
            raise httpx.ReadError("connection reset by peer")
        return httpx.Response(200, content=body())

    with pytest.raises(UpstreamError, match=f"cannot reach {URL}: GET .* broke mid-answer .*ReadError"):
        mocked(handler).download("/api/v1/blobs/b/content", tmp_path / "model.bin")


# -- real sockets: keep-alive, abort, close -----------------------------------------------

class _Counted(http.server.BaseHTTPRequestHandler):
    """Answers ``{}`` to every GET, keeping the connection open (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # (its headers and body leave in two writes)
    timeout = 30  # an idle connection the client forgot ends in time

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.server.open += 1

    def finish(self):
        super().finish()
        with self.server.lock:
            self.server.open -= 1

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def counting_server(tls=None):
    """A real keep-alive HTTP server on a free port that counts the connections it accepted
    (``connections``) and those still open (``open``); over TLS with ``tls`` (an SSLContext)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counted)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.lock, server.connections, server.open = threading.Lock(), 0, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_many_calls_go_over_one_kept_alive_connection():
    with counting_server() as (counted, url):
        server = Server(url)
        for _ in range(50):
            assert server.call("GET", "/api/v1/health") == {}
        assert counted.connections == 1
        server.close()
        wait_for(lambda: counted.open == 0, what="close() to let go of the connection")


def test_threads_share_the_pool():
    with counting_server() as (counted, url):
        server = Server(url)
        threads = [threading.Thread(target=lambda: [server.call("GET", "/api/v1/health") for _ in range(25)])
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert 1 <= counted.connections <= 4  # (at most one each at the same time)
        server.close()


def test_after_abort_and_after_close_the_next_call_opens_a_new_connection():
    with counting_server() as (counted, url):
        server = Server(url)
        server.call("GET", "/api/v1/health")
        server.abort()  # (no call in flight: the idle connection goes, and no call fails for it)
        assert server.call("GET", "/api/v1/health") == {}
        assert counted.connections == 2
        server.close()
        assert server.call("GET", "/api/v1/health") == {}
        assert counted.connections == 3
        server.close()


@pytest.fixture
def silent_url():
    """A server that accepts connections and never answers; the connections it holds."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # (so that the accepting thread sees it is done)
    held, done = [], threading.Event()

    def accept():
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", held
    done.set()
    thread.join(timeout=5)
    listener.close()
    for conn in held:
        conn.close()


def test_abort_breaks_a_call_blocked_reading_a_server_that_never_answers(silent_url):
    url, held = silent_url
    server = Server(url, timeout=60)
    outcome = []

    def blocked_call():
        try:
            server.call("GET", "/api/v1/stop-requests?wait=30")
        except UpstreamError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=blocked_call)
    caller.start()
    # the request arrived: the caller now waits for the answer
    wait_for(lambda: held and select.select(held, [], [], 0)[0], what="the request to arrive")
    aborted = time.monotonic()
    server.abort()
    caller.join(timeout=5)
    assert not caller.is_alive(), "abort() did not break the call"
    assert time.monotonic() - aborted < 2
    [error] = outcome
    assert str(error).startswith(f"cannot reach {url}: GET /api/v1/stop-requests")
    server.close()


def test_a_deadline_bounds_a_call_to_a_server_that_never_answers(silent_url):
    url, _ = silent_url
    server = Server(url, timeout=60)
    started = time.monotonic()
    with server.deadline(started + 0.5), pytest.raises(UpstreamError, match="timed out waiting for the answer"):
        server.call("GET", "/api/v1/health")
    assert time.monotonic() - started < 2
    server.close()


def test_a_remote_stores_close_lets_go_of_its_pooled_connections(tmp_path):
    with counting_server() as (counted, url):
        store = mltrail.Store(url, spool=tmp_path / "spool")
        store.server.call("GET", "/api/v1/health")
        assert counted.open == 1  # kept alive for the next call
        assert store.close(wait=0) == 0
        wait_for(lambda: counted.open == 0, what="the store's close() to close its connection")


def test_over_tls_the_connection_is_kept_and_abort_breaks_it(tmp_path, monkeypatch):
    """A server whose CA the default trust store holds (here through SSL_CERT_FILE, which
    the standard library's client honoured too)."""
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    with counting_server(tls) as (counted, url):
        server = Server(url)
        for _ in range(5):
            assert server.call("GET", "/api/v1/health") == {}
        assert counted.connections == 1
        server.abort()  # (TLS sockets too: the idle one goes, the next call makes another)
        assert server.call("GET", "/api/v1/health") == {}
        assert counted.connections == 2
        server.close()
