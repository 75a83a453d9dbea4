"""The router's client for model services: pooled keep-alive HTTP/1.1 over aiohttp.

aiohttp rather than httpx: under 64 concurrent requests httpx's pool re-checks every
pooled connection (a ``select`` each) for every request, and the router spent ~70% of its
time there (229 req/s against ~1,800 straight at a model service). aiohttp's connector
hands out an idle connection in constant time.

Faults become two exceptions that name nothing but the cause; the router names the
variant: :class:`UpstreamTimeout` (no answer within the per-request timeout) and
:class:`UpstreamUnreachable` (refused, reset, closed mid-answer).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp


class UpstreamTimeout(Exception):
    """The model service did not answer within the timeout."""


class UpstreamUnreachable(Exception):
    """The model service could not be reached or dropped the connection."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


class Upstream:
    """POSTs JSON to model services over one pooled session, opened inside the event loop."""

    def __init__(self, timeout: float = 2.0, max_connections: int = 256) -> None:
        self.timeout = timeout
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout),
            skip_auto_headers=("User-Agent",), raise_for_status=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes) -> Reply:
        """POST ``body`` (JSON bytes) to ``url``; the status and body of the answer."""
        if self._session is None:
            raise RuntimeError("Upstream.open() was not awaited")
        try:
            async with self._session.post(url, data=body, headers={"Content-Type": "application/json"}) as reply:
                return Reply(reply.status, await reply.read())
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(f"no answer within {self.timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(type(exc).__name__) from exc
