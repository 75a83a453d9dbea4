"""Sending one blob (an artifact, a diff) to ``mltrail server`` in resumable, checksummed parts.

The client asks how much of the blob the server holds (``GET .../upload``: also how large a
part may be, within the server's ``--max-body``), sends the rest a part at a time, each
with its own sha256, and asks the server to check the whole (``POST .../complete``). Only
one part is ever in memory. An upload cut short (the server restarted, the network
dropped) resumes from the last part the server acknowledged, so a retry costs at most
one part, never the whole file. See :mod:`mltrail.server.blob_routes`.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ..errors import BusyError, InvalidInputError, UpstreamError, WrongStateError
from .http import Server

log = logging.getLogger(__name__)


def send_blob(server: Server, sha256: str, path: Path, large: bool) -> int:
    """Send what the server lacks of blob ``sha256`` (the file ``path``); the bytes sent.
    UpstreamError when the server is out of reach (call again: it resumes); any other
    MltrailError is the server's refusal (retrying will not help)."""
    sent = 0
    for attempt in range(3):
        state = server.call("GET", f"/api/v1/blobs/{sha256}/upload")
        if state["complete"]:
            return sent
        try:
            sent += _send_parts(server, sha256, path, int(state["offset"]), int(state["part_bytes"]))
            server.call("POST", f"/api/v1/blobs/{sha256}/complete?large={int(large)}")
            return sent
        except WrongStateError:  # the server holds another amount than it said (another sender): ask again
            log.info("blob %s: the server's upload moved on; asking again where it stands", sha256)
        except BusyError as exc:  # another process of this user is sending it now: a later try resumes
            raise UpstreamError(f"blob {sha256}: {exc}") from None
        except InvalidInputError:
            # the whole did not hash to sha256 (a damaged staging file): the server dropped it, start over once
            if attempt:
                raise
            log.warning("blob %s: the server's copy did not check out; sending it again from the start", sha256)
    raise WrongStateError(f"blob {sha256}: the server's upload kept moving under this client; try again later")


def _send_parts(server: Server, sha256: str, path: Path, offset: int, part_bytes: int) -> int:
    sent = 0
    size = path.stat().st_size
    with open(path, "rb") as handle:
        handle.seek(offset)
        while offset < size:
            part = handle.read(part_bytes)
            digest = hashlib.sha256(part).hexdigest()
            server.call("PUT", f"/api/v1/blobs/{sha256}/parts?offset={offset}&sha256={digest}", part)
            offset += len(part)
            sent += len(part)
    return sent
