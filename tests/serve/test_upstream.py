"""The router's upstream client against real sockets: an answer, a refused port, a
service that accepts and never answers, one that hangs up mid-request."""

import asyncio
import socket

import pytest

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


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:  # keep-alive: answer every request on the connection
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        body = await reader.readexactly(length)
        reply = b'{"prediction": 0.5, "echo": ' + body + b"}"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(reply)).encode() + b"\r\n\r\n" + reply)
        await writer.drain()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


def run(coroutine):
    return asyncio.run(coroutine)


def test_posts_and_reuses_the_connection():
    async def scenario():
        service = Service(answer)
        url = await service.start()
        upstream = Upstream(timeout=2)
        await upstream.open()
        try:
            replies = [await upstream.post(url, b'{"features": {"x": 1}}') for _ in range(3)]
        finally:
            await upstream.close()
            await service.stop()
        return replies, len(service.writers)

    replies, connections = run(scenario())
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
