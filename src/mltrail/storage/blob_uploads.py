"""Blobs sent to a server in parts, kept out of git until something the server accepts names them.

Promises:

- **Constant memory.** A part is streamed to its uploader's staging file as it arrives and
  hashed as it goes; nothing holds a whole part, let alone a whole blob.
- **Resumable.** The staging file holds every part acknowledged so far; :meth:`StagedBlobs.held`
  says how many bytes, and a client sends from there. A part whose bytes do not hash to the
  sha256 it was sent with, or that is cut off, is cut back off the file: the file only ever
  holds whole, checked parts.
- **Verified before use.** :meth:`StagedBlobs.finish` hashes the whole staging file; only a
  file that hashes to the blob's sha256 is kept (as complete), any other is removed.
- **Out of git until named.** Uploads live under ``.cache/uploads/<uploader>/`` (the store's
  .gitignore keeps ``.cache/`` out): bytes that nothing names never reach ``blobs/``. When
  a line the server accepts names a blob (a run's artifact, diff or package list),
  :meth:`StagedBlobs.adopt` moves a complete upload into ``blobs/`` (or ``blobs-large/``,
  as its sender said). Staged files untouched for :data:`STAGED_KEEP_SECONDS` are removed
  by :meth:`StagedBlobs.expire` (``store.gc()``).

Each uploader (a user of the server; everyone on a server without users) has a staging
folder of their own: what one user sent says nothing about what another may see.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from ..config import STAGED_MAX_BYTES
from ..errors import BusyError, InvalidInputError, PayloadTooLargeError, WrongStateError
from .atomic import replace_durably
from .layout import Layout

PART_BYTES = 8 << 20  # a client's part, unless the server's body limit is lower
# a day: an upload interrupted overnight still resumes; a blob nothing named is gone the day after
STAGED_KEEP_SECONDS = 24 * 3600
_PART, _GIT, _LARGE = ".part", ".git", ".large"


class StagedBlobs:
    """The blob uploads a server holds for its uploaders."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._writing: set[Path] = set()  # a part is being written to these staging files
        self._guard = threading.Lock()

    def _file(self, uploader: str | None, sha256: str, suffix: str) -> Path:
        self.layout.blob_path(sha256)  # refuses a name that is not a sha256 before it becomes a path
        return self.layout.upload_dir(uploader) / f"{sha256}{suffix}"

    def held(self, uploader: str | None, sha256: str) -> int:
        """The bytes of blob ``sha256`` this uploader's unfinished upload holds (0: none)."""
        try:
            return self._file(uploader, sha256, _PART).stat().st_size
        except FileNotFoundError:
            return 0

    def complete(self, uploader: str | None, sha256: str) -> bool:
        """True when this uploader sent the whole blob, checked, and nothing named it yet."""
        return any(self._file(uploader, sha256, s).exists() for s in (_GIT, _LARGE))

    def part(self, uploader: str | None, sha256: str, offset: int, part_sha256: str | None, limit: int) -> Part:
        """A part of blob ``sha256`` written from byte ``offset``, which must be what the
        upload holds (WrongStateError otherwise: ask again how much it holds);
        ``part_sha256`` None: the part is the whole blob, checked by :meth:`finish`."""
        if part_sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", part_sha256):
            raise InvalidInputError(f"a part names its own sha256 (64 hex digits), not {part_sha256!r}")
        path = self._file(uploader, sha256, _PART)
        with self._guard:
            if path in self._writing:
                raise BusyError(f"a part of blob {sha256} is being written already: send one part at a time")
            held = self.held(uploader, sha256)
            if offset != held:
                raise WrongStateError(f"the server holds {held:,} bytes of blob {sha256}, not {offset:,}: "
                                      "send from there")
            staged = self._staged_bytes(uploader)
            quota = STAGED_MAX_BYTES.get()
            if staged + limit > quota:
                raise BusyError(f"{uploader or 'this token'} has {staged:,} bytes of blobs on the server that no "
                                f"run names yet (at most {quota:,}, MLTRAIL_STAGED_MAX_BYTES): the next part waits "
                                "until runs naming them arrive, or a day has passed")
            self._writing.add(path)
        self.layout.ensure()  # the store's .gitignore keeps .cache/, and so the uploads, out of git
        return Part(self, path, offset, part_sha256.lower() if part_sha256 else None, limit)

    def _staged_bytes(self, uploader: str | None) -> int:
        """The bytes this uploader's staging folder holds, once its own files untouched for
        STAGED_KEEP_SECONDS are gone (so an abandoned upload frees its room by itself, without
        waiting for an admin's gc). Called under the guard."""
        folder = self.layout.upload_dir(uploader)
        if not folder.is_dir():
            return 0
        cutoff, total = time.time() - STAGED_KEEP_SECONDS, 0
        for path in folder.iterdir():
            try:
                info = path.stat()
            except FileNotFoundError:  # adopted meanwhile
                continue
            if info.st_mtime < cutoff and path not in self._writing:
                path.unlink(missing_ok=True)
            else:
                total += info.st_size
        return total

    def discard(self, uploader: str | None, sha256: str) -> None:
        """Drop this uploader's unfinished upload of ``sha256`` (to send it afresh)."""
        path = self._file(uploader, sha256, _PART)
        with self._guard:
            if path in self._writing:
                raise BusyError(f"a part of blob {sha256} is being written: send one part at a time")
            path.unlink(missing_ok=True)

    def finish(self, uploader: str | None, sha256: str, large: bool) -> None:
        """Check the whole upload against ``sha256`` and keep it, complete, until a line
        names it; an upload that hashes to anything else is removed (send it again)."""
        path = self._file(uploader, sha256, _PART)
        if self.complete(uploader, sha256):
            return
        if path in self._writing:
            raise BusyError(f"a part of blob {sha256} is still being written: complete it after its last part")
        if not path.exists():  # an empty blob has no parts
            if sha256 != hashlib.sha256(b"").hexdigest():
                raise WrongStateError(f"no part of blob {sha256} arrived: send its parts first")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        if digest.hexdigest() != sha256:
            path.unlink(missing_ok=True)
            raise InvalidInputError(f"the bytes sent as blob {sha256} have another sha256 ({digest.hexdigest()}): "
                                    "the upload was removed, send the blob again from its start")
        replace_durably(path, self._file(uploader, sha256, _LARGE if large else _GIT))

    def adopt(self, sha256s: Iterable[str]) -> list[str]:
        """Move complete uploads of these blobs (named by a line the server accepted) into
        the store's blobs; the ones moved. A blob the store holds already keeps its file
        (the upload is dropped); one no uploader sent is left to whoever sends it."""
        moved = []
        for sha256 in dict.fromkeys(sha256s):
            for staged in sorted(self.layout.uploads.glob(f"*/{sha256}.*")) if self.layout.uploads.is_dir() else []:
                if staged.suffix not in (_GIT, _LARGE):
                    continue
                target = self.layout.blob_path(sha256, large=staged.suffix == _LARGE)
                if target.exists():
                    staged.unlink(missing_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    replace_durably(staged, target)  # (.cache/ and the blobs are on one file system: one rename)
                except FileNotFoundError:  # another run's line naming it moved it first
                    continue
                moved.append(sha256)
        return moved

    def expire(self, older_than: float = STAGED_KEEP_SECONDS, dry_run: bool = False) -> list[Path]:
        """Remove staged uploads (complete or not) untouched for ``older_than`` seconds:
        bytes that nothing named in that time; the files removed."""
        if not self.layout.uploads.is_dir():
            return []
        cutoff = time.time() - older_than
        gone = [p for p in sorted(self.layout.uploads.glob("*/*")) if p.is_file() and p.stat().st_mtime < cutoff
                and p not in self._writing]
        if not dry_run:
            for path in gone:
                path.unlink(missing_ok=True)
        return gone


class Part:
    """One part being written: its chunks appended and hashed; :meth:`commit` keeps it
    when it hashes to the sha256 it was sent with, :meth:`close` cuts back whatever was
    not committed."""

    def __init__(self, staged: StagedBlobs, path: Path, offset: int, sha256: str | None, limit: int) -> None:
        self.staged = staged
        self.path = path
        self.offset = offset
        self.sha256 = sha256
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()
        self.committed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "ab")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLargeError(f"a part is at most {self.limit:,} bytes (ask the server how "
                                       "large a part may be: GET /api/v1/blobs/SHA256/upload)")
        self.digest.update(chunk)
        self.handle.write(chunk)

    def commit(self) -> int:
        """Keep the part if it is what its sender hashed; the bytes the upload now holds."""
        if self.sha256 is not None and self.digest.hexdigest() != self.sha256:
            raise InvalidInputError(f"the part sent at byte {self.offset:,} hashes to {self.digest.hexdigest()}, "
                                    f"not {self.sha256}: it was not kept, send it again")
        self.handle.flush()
        self.committed = True
        return self.offset + self.size

    def close(self) -> None:
        try:
            if not self.committed:  # refused or cut off: the file keeps only checked parts
                self.handle.truncate(self.offset)
            self.handle.close()
            if not self.committed and not self.offset:  # (and no empty upload is left behind)
                self.path.unlink(missing_ok=True)
        finally:
            with self.staged._guard:
                self.staged._writing.discard(self.path)
