"""``mltrail sync``: upload a local store's runs and blobs to a server, only what it lacks.

For a job that logged into a folder where the server was out of reach (a cluster with
no network to it, a laptop on a train). Each run's lines go in order, a batch at a time,
each after the one before was acknowledged; the server drops what it holds already
(:mod:`mltrail.tracking.ingest`), so a sync cut short, or run twice, sends nothing twice.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import InvalidInputError, SchemaVersionError, UpstreamError
from ..storage.eventlog import parse_line
from ..storage.events import EVENT_ADAPTER
from ..store import Store

BATCH_BYTES = 8 << 20


@dataclass
class SyncReport:
    runs: int = 0  # runs looked at
    runs_sent: int = 0  # runs with lines the server did not have
    lines_sent: int = 0
    lines_skipped: int = 0  # unreadable lines of the local files, left behind
    blobs_sent: int = 0

    def summary(self) -> str:
        skipped = f"; {self.lines_skipped} unreadable lines left behind" if self.lines_skipped else ""
        return (f"{self.runs_sent} of {self.runs} runs had new lines: sent {self.lines_sent:,} lines "
                f"and {self.blobs_sent} blobs{skipped}")


class Server:
    """The few calls sync makes, over the standard library's HTTP client."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: bytes | None = None, missing_ok: bool = False) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", data=body, method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if body is not None:
            request.add_header("Content-Type", "application/octet-stream")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return orjson.loads(reply.read())
        except urllib.error.HTTPError as exc:
            if missing_ok and exc.code == 404:
                return None
            try:
                message = orjson.loads(exc.read()).get("error", "")
            except (orjson.JSONDecodeError, AttributeError):
                message = ""
            error = InvalidInputError if exc.code in (401, 409, 413, 422) else UpstreamError
            raise error(f"{self.url} refused {method} {path.split('?')[0]} ({exc.code}): {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise UpstreamError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None


def sync_store(source: Store, url: str, token: str | None = None, batch_bytes: int = BATCH_BYTES,
               progress: Callable[[int, int], None] | None = None) -> SyncReport:
    """Upload what the server at ``url`` lacks of ``source``: blobs first (a run's
    artifact events name them), then each run's new lines."""
    server = Server(url, token)
    server.call("GET", "/api/v1/health")
    report = SyncReport()
    layout = source.layout
    for large, base in ((False, layout.blobs), (True, layout.large_blobs)):
        for path in sorted(base.glob("sha256/*/*")):
            sha256 = path.parent.name + path.name
            if path.name.startswith(".") or server.call("GET", f"/api/v1/blobs/{sha256}", missing_ok=True):
                continue
            server.call("PUT", f"/api/v1/blobs/{sha256}?large={int(large)}", path.read_bytes())
            report.blobs_sent += 1
    files = sorted(layout.experiments.glob("*/runs/*.jsonl")) if layout.experiments.is_dir() else []
    for done, path in enumerate(files, 1):
        report.runs += 1
        _sync_run(server, path, batch_bytes, report)
        if progress:
            progress(done, len(files))
    return report


def _sync_run(server: Server, path: Path, batch_bytes: int, report: SyncReport) -> None:
    run_id = path.stem
    data = path.read_bytes()
    data = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next sync
    lines = list(_lines_with_seq(data, report))
    if not lines or lines[0][0].get("type") != "run_started":
        return  # no readable start: nothing the server could file it under
    experiment = lines[0][0]["experiment"]
    last = server.call("GET", f"/api/v1/runs/{run_id}/last-seq")["last_seq"]
    new = [raw for _, raw, end in lines if end > last]
    if not new:
        return
    report.runs_sent += 1
    query = urllib.parse.urlencode({"experiment": experiment})
    for batch in _batches(new, batch_bytes):
        server.call("POST", f"/api/v1/runs/{run_id}/events?{query}", b"".join(batch))
        report.lines_sent += len(batch)


def _lines_with_seq(data: bytes, report: SyncReport) -> Iterator[tuple[dict[str, Any], bytes, int]]:
    """Each readable line with the last seq it holds; an unreadable one is left behind
    (the server would refuse its batch)."""
    for raw in data.splitlines(keepends=True):
        try:
            event = parse_line(raw)
            model = EVENT_ADAPTER.validate_python(event)
        except (ValueError, SchemaVersionError):  # the server checks each line the same way
            report.lines_skipped += 1
            continue
        yield event, raw, model.seq + len(model.steps) - 1 if model.type == "metrics" else model.seq


def _batches(lines: list[bytes], limit: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    size = 0
    for raw in lines:
        if batch and size + len(raw) > limit:
            yield batch
            batch, size = [], 0
        batch.append(raw)
        size += len(raw)
    if batch:
        yield batch



