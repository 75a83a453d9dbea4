"""The router's upstream client against real sockets: an answer, a refused port, a
service that accepts and never answers, one that hangs up mid-request."""

import asyncio
import socket
import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mltrail.serve.upstream import Upstream, UpstreamTimeout, UpstreamUnreachable


class Service:
    """A raw asyncio TCP service on a free port; stop() closes it and every connection."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        async def handle(reader, writer):
            self.writers.append(writer)
            try:
                await self.handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/predict"

    async def stop(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()
        await asyncio.sleep(0)


def reply_bytes(body: bytes, *extra_headers: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return head + b"".join(h + b"\r\n" for h in extra_headers) + b"\r\n" + body


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    return await reader.readexactly(length)


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:  # keep-alive: answer every request on the connection
        body = await read_request(reader)
        writer.write(reply_bytes(b'{"prediction": 0.5, "echo": ' + body + b"}"))
        await writer.drain()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


def run(coroutine):
    return asyncio.run(coroutine)


async def posts(handler, bodies, pause=0.0, **options):
    """POST each body in turn (``pause`` seconds apart) to a service running ``handler``:
    the replies (or the exception raised) and how many connections the service saw."""
    service = Service(handler)
    url = await service.start()
    upstream = Upstream(**options)
    await upstream.open()
    outcomes = []
    try:
        for body in bodies:
            await asyncio.sleep(pause if outcomes else 0)
            try:
                outcomes.append(await upstream.post(url, body))
            except Exception as exc:  # noqa: BLE001 - the test looks at it
                outcomes.append(exc)
    finally:
        await upstream.close()
        await service.stop()
    return outcomes, len(service.writers)


def test_posts_and_reuses_the_connection():
    replies, connections = run(posts(answer, [b'{"features": {"x": 1}}'] * 3))
    assert [r.status for r in replies] == [200, 200, 200] and connections == 1  # pooled
    assert replies[0].body == b'{"prediction": 0.5, "echo": {"features": {"x": 1}}}'


def test_a_refused_connection_is_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused

        async def scenario():
            upstream = Upstream(timeout=2)
            await upstream.open()
            try:
                await upstream.post(f"http://127.0.0.1:{port}/predict", b"{}")
            finally:
                await upstream.close()

        with pytest.raises(UpstreamUnreachable, match="Connect"):
            run(scenario())


@pytest.mark.parametrize("handler,error", [(never_answer, UpstreamTimeout), (hang_up, UpstreamUnreachable)])
def test_a_silent_or_hanging_up_service(handler, error):
    async def scenario():
        service = Service(handler)
        url = await service.start()
        upstream = Upstream(timeout=0.3)
        await upstream.open()
        try:
            await upstream.post(url, b"{}")
        finally:
            await upstream.close()
            await service.stop()

    with pytest.raises(error):
        run(scenario())


def test_post_before_open_is_a_clear_error():
    with pytest.raises(RuntimeError, match="open"):
        run(Upstream().post("http://127.0.0.1:1/predict", b"{}"))


def test_an_answer_with_connection_close_is_not_reused():
    async def answer_once(reader, writer):
        body = await read_request(reader)
        writer.write(reply_bytes(b'{"prediction": ' + body + b"}", b"Connection: close"))
        await writer.drain()
        writer.close()

    outcomes, connections = run(posts(answer_once, [b"1", b"2", b"3"]))
    assert [o.body for o in outcomes] == [b'{"prediction": 1}', b'{"prediction": 2}', b'{"prediction": 3}']
    assert connections == 3


def test_a_connection_the_service_closed_while_idle_is_replaced_without_an_error():
    async def one_per_connection(reader, writer):  # like a keep-alive timeout that fires after each answer
        body = await read_request(reader)
        writer.write(reply_bytes(b'{"prediction": ' + body + b"}"))  # says nothing of closing
        await writer.drain()
        writer.close()

    # the second POST waits until the close has reached the client while the connection is idle
    (first, second), connections = run(posts(one_per_connection, [b"1", b"2"], pause=0.05))
    assert (first.body, second.body, connections) == (b'{"prediction": 1}', b'{"prediction": 2}', 2)


def test_a_request_lost_to_a_closing_idle_connection_is_sent_again_on_a_new_one():
    connections = []

    async def closes_on_the_second_request(reader, writer):  # the race of a keep-alive timeout
        connections.append(writer)
        first_connection = len(connections) == 1
        answered = 0
        while True:
            body = await read_request(reader)
            if first_connection and answered == 1:
                writer.close()  # the request arrived as the service was closing the idle connection
                return
            writer.write(reply_bytes(b'{"prediction": ' + body + b"}"))
            await writer.drain()
            answered += 1

    outcomes, seen = run(posts(closes_on_the_second_request, [b"1", b"2", b"3"]))
    assert [o.body for o in outcomes] == [b'{"prediction": 1}', b'{"prediction": 2}', b'{"prediction": 3}']
    assert seen == 2


def test_an_answer_cut_off_midway_is_not_sent_again():
    requests = []

    async def cuts_off(reader, writer):
        while True:
            requests.append(await read_request(reader))
            if len(requests) == 1:
                writer.write(reply_bytes(b'{"prediction": 1}'))
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"predic")
                await writer.drain()
                writer.close()
                return
            await writer.drain()

    outcomes, _ = run(posts(cuts_off, [b"1", b"2"]))
    assert isinstance(outcomes[1], UpstreamUnreachable) and len(requests) == 2  # half an answer: no retry


def test_a_chunked_answer_and_an_error_status_are_read_whole():
    async def chunked(reader, writer):
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\n{\"det\r\n9\r\nail\": 1}\n\r\n0\r\n\r\n")
            await writer.drain()

    outcomes, connections = run(posts(chunked, [b"{}", b"{}"]))
    assert [(o.status, o.body) for o in outcomes] == [(503, b'{"detail": 1}\n')] * 2 and connections == 1


def test_an_answer_that_ends_with_the_connection_is_read_whole():
    async def close_delimited(reader, writer):  # no length, no chunks: the body ends at the close
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"prediction": 0.25}')
        await writer.drain()
        writer.close()

    outcomes, connections = run(posts(close_delimited, [b"{}", b"{}"]))
    assert [o.body for o in outcomes] == [b'{"prediction": 0.25}'] * 2 and connections == 2


def test_an_informational_answer_before_the_answer_is_skipped():
    async def early_hints(reader, writer):
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                         + reply_bytes(b'{"prediction": 0.75}'))
            await writer.drain()

    outcomes, connections = run(posts(early_hints, [b"{}", b"{}"]))
    assert [(o.status, o.body) for o in outcomes] == [(200, b'{"prediction": 0.75}')] * 2 and connections == 1


def test_an_answer_that_is_not_http_is_unreachable_and_the_pool_recovers():
    calls = []

    async def garbage_then_good(reader, writer):
        while True:
            await read_request(reader)
            calls.append(1)
            writer.write(b"SSH-2.0-OpenSSH\r\n\r\n" if len(calls) == 1 else reply_bytes(b'{"prediction": 1}'))
            await writer.drain()

    outcomes, connections = run(posts(garbage_then_good, [b"{}", b"{}"]))
    assert isinstance(outcomes[0], UpstreamUnreachable) and "not an HTTP answer" in str(outcomes[0])
    assert outcomes[1].body == b'{"prediction": 1}' and connections == 2  # the spoilt one was dropped


def test_an_answer_over_the_limit_is_refused_and_the_pool_recovers():
    sizes = iter([5000, 10])

    async def huge_then_small(reader, writer):
        while True:
            await read_request(reader)
            writer.write(reply_bytes(b"7" * next(sizes)))
            await writer.drain()

    outcomes, connections = run(posts(huge_then_small, [b"{}", b"{}"], max_answer_bytes=1000))
    assert isinstance(outcomes[0], UpstreamUnreachable) and "over 1,000 bytes" in str(outcomes[0])
    assert outcomes[1].body == b"7" * 10 and connections == 2  # the spoilt one was dropped


def test_a_timed_out_connection_is_not_reused_for_the_next_request():
    calls = []

    async def slow_first(reader, writer):
        while True:
            body = await read_request(reader)
            calls.append(body)
            if len(calls) == 1:
                await asyncio.sleep(0.5)  # past the client's timeout; its answer would come late
            writer.write(reply_bytes(b'{"prediction": ' + body + b"}"))
            await writer.drain()

    outcomes, connections = run(posts(slow_first, [b"1", b"2"], timeout=0.2))
    assert isinstance(outcomes[0], UpstreamTimeout)
    assert outcomes[1].body == b'{"prediction": 2}' and connections == 2  # not the late answer to "1"


def test_at_most_max_connections_calls_are_in_flight():
    in_flight, most = [0], [0]

    async def slow(reader, writer):
        while True:
            await read_request(reader)
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            await asyncio.sleep(0.05)
            in_flight[0] -= 1
            writer.write(reply_bytes(b'{"prediction": 1}'))
            await writer.drain()

    async def scenario():
        service = Service(slow)
        url = await service.start()
        upstream = Upstream(timeout=5, max_connections=2)
        await upstream.open()
        try:
            replies = await asyncio.gather(*(upstream.post(url, b"{}") for _ in range(6)))
        finally:
            await upstream.close()
            await service.stop()
        return replies, len(service.writers)

    replies, connections = run(scenario())
    assert [r.status for r in replies] == [200] * 6 and most[0] == 2 and connections == 2


def test_https_with_the_system_trust_store(tmp_path, monkeypatch):
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    authority.cert_pem.write_to_path(tmp_path / "ca.pem")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # what the router trusts, as OpenSSL reads it

    async def scenario():
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(server_tls)
        service = Service(answer)
        service.server = await asyncio.start_server(
            lambda r, w: service.writers.append(w) or answer(r, w), "127.0.0.1", 0, ssl=server_tls)
        url = f"https://127.0.0.1:{service.server.sockets[0].getsockname()[1]}/predict"
        upstream = Upstream(timeout=2)
        await upstream.open()
        try:
            return await upstream.post(url, b'{"x": 1}')
        finally:
            await upstream.close()
            await service.stop()

    assert run(scenario()).body == b'{"prediction": 0.5, "echo": {"x": 1}}'


def test_a_url_that_is_not_http_names_itself():
    with pytest.raises(UpstreamUnreachable, match="ftp://model"):
        async def scenario():
            upstream = Upstream()
            await upstream.open()
            await upstream.post("ftp://model/predict", b"{}")

        run(scenario())


class _Transport:
    """What a _Connection writes to, without a socket: the protocol is fed by hand."""

    def __init__(self) -> None:
        self.closed = False

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


ANSWERS = [reply_bytes(b'{"prediction": 0.5}'),
           b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + reply_bytes(b'{"prediction": 1}'),
           b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"p\r\n9\r\nrediction\r\n3\r\n\": \r\n1\r\n2\r\n1\r\n}\r\n0\r\n\r\n",
           reply_bytes(b'{"prediction": 0}', b"Connection: close")]
BODIES = [b'{"prediction": 0.5}', b'{"prediction": 1}', b'{"prediction": 2}', b'{"prediction": 0}']


@given(answers=st.lists(st.sampled_from(range(len(ANSWERS))), min_size=1, max_size=4),
       cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=12))
def test_answers_split_anywhere_across_reads_parse_the_same(answers, cuts):
    """One connection's answers in sequence, arriving in reads cut at arbitrary points."""
    from mltrail.serve.upstream import _Connection

    async def scenario():
        connection = _Connection(max_answer_bytes=1 << 20)
        connection.connection_made(_Transport())
        got = []
        for index in answers:
            waiter = connection.send(b"POST / HTTP/1.1\r\n\r\n")
            data = ANSWERS[index]
            points = sorted({c % len(data) for c in cuts} - {0})
            for start, end in zip([0, *points], [*points, len(data)]):
                connection.data_received(data[start:end])
            reply = await waiter
            got.append((reply.status, reply.body, connection.reusable))
            if not connection.reusable:
                break
        return got

    got = run(scenario())
    expected = []
    for index in answers:
        expected.append((200, BODIES[index], index != 3))
        if index == 3:
            break
    assert got == expected
