"""The server's blobs: artifacts, diffs and package lists sent in resumable parts, and read back.

- ``GET /api/v1/blobs/{sha256}``: is it here *for the caller*? Yes only to a caller who may
  read it (through a run, model version or training set that names it) or who uploaded
  it themselves; anyone else gets the 404 a blob that does not exist gets.
- ``GET /api/v1/blobs/{sha256}/content``: its bytes, streamed from disk (same rule, minus
  uploads that nothing names yet)
- ``GET /api/v1/blobs/{sha256}/upload``: ``{"offset", "complete", "part_bytes"}``: how much
  of the caller's upload the server holds, and how large a part may be (at most
  ``--max-body``)
- ``PUT /api/v1/blobs/{sha256}/parts?offset=N&sha256=PART``: the next part, from byte N of
  the blob; kept only if it hashes to PART
- ``POST /api/v1/blobs/{sha256}/complete?large=0|1``: check the whole upload against the
  blob's sha256; it then waits, out of git, for a line that names it
  (:mod:`mltrail.storage.blob_uploads`)
- ``PUT /api/v1/blobs/{sha256}?large=0|1``: a small blob in one body (up to ``--max-body``),
  staged the same way

A run's line that names a blob is taken only from a writer who sent that blob or may read
it already (:func:`require_sent`, called by the run events route): naming a hash never
stands in for having the bytes.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ..errors import InvalidInputError, NotFoundError, PayloadTooLargeError
from ..storage.blob_uploads import PART_BYTES, Part, StagedBlobs
from ..storage.blobs import blobs_named
from ..store import Store
from .gate import Gate, gate

_SHA256 = re.compile(r"[0-9a-f]{64}")


def routes(store: Store) -> APIRouter:
    api = APIRouter(prefix="/api/v1/blobs")
    staged = StagedBlobs(store.layout)

    def present(sha256: str, g: Gate) -> bool:
        return _present(store, staged, g, sha256)

    @api.get("/{sha256}")
    def has_blob(sha256: str, g: Gate = Depends(gate)) -> dict[str, bool]:
        if not present(_checked(sha256), g):
            raise NotFoundError(f"no blob {sha256}")
        return {"ok": True}

    @api.get("/{sha256}/content")
    def blob_content(sha256: str, g: Gate = Depends(gate)) -> FileResponse:
        _checked(sha256)
        if g.experiments() is not None and not _may_read_blob(store, g, sha256):
            raise NotFoundError(f"no blob {sha256}")
        return FileResponse(store.blobs.verified(sha256, f"blob {sha256}"), media_type="application/octet-stream")

    @api.get("/{sha256}/upload")
    def upload_state(sha256: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        complete = present(_checked(sha256), g)
        return {"offset": 0 if complete else staged.held(_uploader(g), sha256), "complete": complete,
                "part_bytes": part_bytes(request)}

    @api.put("/{sha256}/parts")
    async def put_part(sha256: str, offset: int, request: Request, part_sha256: str = Query(alias="sha256"),
                       g: Gate = Depends(gate)) -> dict[str, int]:
        part = staged.part(_uploader(g), _checked(sha256), offset, part_sha256, part_bytes(request))
        return {"offset": await _receive(part, request)}

    @api.post("/{sha256}/complete")
    async def complete(sha256: str, large: bool = False, g: Gate = Depends(gate)) -> dict[str, bool]:
        await run_in_threadpool(staged.finish, _uploader(g), _checked(sha256), large)  # hashes the whole file
        return {"ok": True}

    @api.put("/{sha256}")
    async def put_blob(sha256: str, request: Request, large: bool = False, g: Gate = Depends(gate)) -> dict[str, bool]:
        """A whole blob in one body (older clients, small blobs): checked whole at the end."""
        uploader = _uploader(g)
        if not staged.complete(uploader, _checked(sha256)):
            staged.discard(uploader, sha256)  # a whole body starts afresh
            await _receive(staged.part(uploader, sha256, 0, None, request.app.state.max_body), request)
            await run_in_threadpool(staged.finish, uploader, sha256, large)
        return {"ok": True}

    return api


def require_sent(store: Store, g: Gate, body: bytes) -> None:
    """Refuse run lines that name a blob their writer neither sent nor may read: naming a
    hash would otherwise make the blob readable to whoever names it, and say whether the
    server holds those bytes (a run's artifact, diff or package list goes up before the
    line that names it; a job resending lines already here may read the blob through
    its own run). Only lines that can name a blob are parsed."""
    if b'sha256"' not in body:  # the common batch (metric points) costs one substring search
        return
    for raw in body.splitlines():
        if b'sha256"' not in raw:
            continue
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # the run's own validation refuses it, with its line number
        for sha256 in blobs_named(event) if isinstance(event, dict) else []:
            if _SHA256.fullmatch(sha256) and not _present(store, StagedBlobs(store.layout), g, sha256):
                raise InvalidInputError(f"a {event.get('type')} line names blob {sha256}, which you have not sent: "
                                        f"send its bytes first (GET /api/v1/blobs/{sha256}/upload), then the line")


def _present(store: Store, staged: StagedBlobs, g: Gate, sha256: str) -> bool:
    """Is the blob here for this caller: sent by them (and not yet named), or here and
    readable by them?"""
    if staged.complete(_uploader(g), sha256):
        return True
    try:
        store.blobs.path(sha256)
    except NotFoundError:
        return False
    return g.experiments() is None or _may_read_blob(store, g, sha256)


def part_bytes(request: Request) -> int:
    """How large a part may be: the client's default, within the server's body limit."""
    return int(min(PART_BYTES, request.app.state.max_body))


async def _receive(part: Part, request: Request) -> int:
    """Stream a request's body into ``part`` (never more than the part's limit); the bytes
    the upload holds after it."""
    try:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > part.limit:
            raise PayloadTooLargeError(f"a part is at most {part.limit:,} bytes")
        # a chunk is one socket read's worth: written to the page cache right here (a 64 KiB
        # chunk took 30 us so, 221 us through the thread pool, on the 2-core test machine)
        async for chunk in request.stream():
            part.write(chunk)
        return part.commit()
    finally:
        part.close()


def _uploader(g: Gate) -> str | None:
    return g.user.name if g.user is not None else None


def _checked(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise InvalidInputError(f"{sha256!r} is not a sha256 (64 lowercase hex digits)")
    return sha256


def _may_read_blob(store: Store, g: Gate, sha256: str) -> bool:
    """A blob is readable through what names it: an artifact, diff or package list of a
    run the caller may read, a version of a model they may read, a saved training set."""
    visible = g.experiments() or []
    if visible:
        runs = store.tracking.all_runs()  # (search_runs leaves out the diff's and package list's columns)
        runs = runs[runs["experiment"].isin(visible)]
        named = {c for column in ("git_diff_sha256", "packages_sha256") if column in runs
                 for c in runs[column].dropna()}
        artifacts = store.tracking.artifacts()
        if sha256 in named or sha256 in set(artifacts[artifacts["run_id"].isin(runs["run_id"])]["sha256"]):
            return True
    for model in g.readable("model", store.registry.names()):
        if any(getattr(e, "sha256", None) == sha256 for e in store.registry.events(model)):
            return True
    return any(getattr(e, "sha256", None) == sha256 and g.may_read_training_set(e)
               for e in store.features.events() if e.type == "dataset_saved")
