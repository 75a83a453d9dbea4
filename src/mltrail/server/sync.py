"""``mltrail sync``: upload a local store's runs (and the blobs they name), run edits and A/B
log segments to a server, only what it lacks; what it refuses is reported, not fatal.

For a job that logged into a folder where the server was out of reach (a cluster with
no network to it, a laptop on a train). Each run's lines go in order, a batch at a time,
each after the one before was acknowledged; the server drops what it holds already
(:mod:`mltrail.tracking.ingest`), so a sync cut short, or run twice, sends nothing twice.
Exposure and feedback segments (a router's spool) go to the experiments of the same key
on the server, from the offset the server holds (:mod:`mltrail.ab.ingest`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from pydantic import ValidationError

from ..errors import MltrailError, PermissionDeniedError, SchemaVersionError, UpstreamError
from ..remote.ab import SegmentUpload
from ..remote.blob_upload import send_blob
from ..remote.http import Server
from ..remote.store import spool_user
from ..remote.upload import BATCH_BYTES, RunUpload
from ..storage.eventlog import parse_line
from ..storage.run_edits import RUN_EDIT
from ..store import Store


@dataclass
class SyncReport:
    runs: int = 0  # runs looked at
    runs_sent: int = 0  # runs with lines the server did not have
    lines_sent: int = 0
    lines_skipped: int = 0  # unreadable lines of the local files, left behind
    blobs_sent: int = 0
    blob_bytes_sent: int = 0
    segments_sent: int = 0  # A/B log segments with lines the server did not have
    edits_sent: int = 0  # run edits (renames, notes, tags, deletes) the server did not have
    refused: list[tuple[str, str]] = field(default_factory=list)  # (what, the server's reason)

    def summary(self) -> str:
        skipped = f"; {self.lines_skipped} unreadable lines left behind" if self.lines_skipped else ""
        return (f"{self.runs_sent} of {self.runs} runs had new lines: sent {self.lines_sent:,} lines "
                f"and {self.blobs_sent} blobs{skipped}"
                + (f"; {self.edits_sent} run edits" if self.edits_sent else "")
                + (f"; {self.segments_sent} A/B log segments had new lines" if self.segments_sent else "")
                + (f"; the server refused {len(self.refused)}" if self.refused else ""))


def sync_store(source: Store, url: str, token: str | None = None, batch_bytes: int = BATCH_BYTES,
               progress: Callable[[int, int], None] | None = None) -> SyncReport:
    """Upload what the server at ``url`` lacks of ``source``: each run's new lines, a blob
    (in resumable parts) just before the first line that names it. A run, edit or log
    segment the server refuses (no permission there, a line it will not take, a blob it
    will not keep) is reported in ``refused`` and the sync goes on with the rest; only a
    server out of reach (UpstreamError) stops it, and running it again resumes."""
    server = _as_author(Server(url, token), source)
    report = SyncReport()
    layout = source.layout
    blobs = _BlobSender(server, source, report)
    files = sorted(layout.experiments.glob("*/runs/*.jsonl")) if layout.experiments.is_dir() else []
    for done, path in enumerate(files, 1):
        report.runs += 1
        try:
            _sync_run(server, path, batch_bytes, report, blobs)
        except UpstreamError:
            raise
        except MltrailError as exc:
            report.refused.append((f"run {_run_label(path)}", str(exc)))
        if progress:
            progress(done, len(files))
    for path in sorted(layout.experiments.glob("*/edits/*.jsonl")) if layout.experiments.is_dir() else []:
        try:  # (after the runs: an edit names a run the server must hold)
            edit = RUN_EDIT.validate_json(path.read_bytes())
        except ValidationError:
            report.lines_skipped += 1
            continue
        try:
            answer = server.call("PUT", f"/api/v1/runs/{edit.run}/edits/{edit.id}",
                                 orjson.dumps(edit.model_dump(mode="json", exclude_none=True)))
        except UpstreamError:
            raise
        except MltrailError as exc:
            report.refused.append((f"edit {edit.id} of run {edit.run}", str(exc)))
            continue
        report.edits_sent += bool(answer["written"])
    on_server = set(server.call("GET", "/api/v1/ab"))
    for segment in sorted((layout.root / "ab").glob("*/log/*.jsonl")):
        key = segment.parent.parent.name
        try:
            if key in on_server and SegmentUpload(server, key, segment).send():
                report.segments_sent += 1
        except UpstreamError:
            raise
        except MltrailError as exc:
            report.refused.append((f"A/B log {key}/{segment.name}", str(exc)))
    return report


class _BlobSender:
    """Sends each blob a run's lines name, once per sync, in resumable parts."""

    def __init__(self, server: Server, source: Store, report: SyncReport) -> None:
        self.server, self.source, self.report = server, source, report
        self.sent: set[str] = set()

    def __call__(self, sha256: str) -> None:
        if sha256 in self.sent:
            return
        path = self.source.blobs.path(sha256)  # NotFoundError: the run is refused, the rest go on
        sent = send_blob(self.server, sha256, path, large=path.is_relative_to(self.source.layout.large_blobs))
        self.sent.add(sha256)
        if sent:
            self.report.blobs_sent += 1
            self.report.blob_bytes_sent += sent


def _as_author(server: Server, source: Store) -> Server:
    """The server's calls as the user whose runs the source holds: a job's spool records
    its user (``spool.json``), and its runs keep that author whoever sends them. An
    admin's token sends them as that user (who then manages an experiment they create);
    another user's token is refused before anything is sent."""
    server.call("GET", "/api/v1/health")
    author = spool_user(source.layout.root)
    if author is None:
        return server
    me = server.call("GET", "/api/v1/whoami")
    if not me["users"] or me["user"] == author:
        return server
    if not me["admin"]:
        raise PermissionDeniedError(f"{source.layout.root} holds {author}'s runs: send them with {author}'s token "
                                    f"(or an admin's, which sends them as {author}), not {me['user']}'s")
    return Server(server.url, server.token, acting_as=author)


def _sync_run(server: Server, path: Path, batch_bytes: int, report: SyncReport, blobs: _BlobSender) -> None:
    upload = RunUpload(server, path, blobs)
    sent = upload.send(batch_bytes)
    report.lines_skipped += upload.lines_skipped
    if sent:
        report.runs_sent += 1
        report.lines_sent += sent


def _run_label(path: Path) -> str:
    """A run as its user knows it: its name (else its ID) and its experiment."""
    try:
        with open(path, "rb") as handle:
            first = parse_line(handle.readline())
        return f"{first.get('name') or path.stem} ({first['experiment']})"
    except (ValueError, KeyError, SchemaVersionError, OSError):
        return path.stem
