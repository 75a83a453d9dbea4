"""Content-addressed blobs: artifacts, git diffs, package lists, saved training sets.

A blob is stored once under its sha256 (``blobs/sha256/ab/cdef...``); one larger than
``MLTRAIL_GIT_ARTIFACT_MAX`` goes to ``blobs-large/``, which the store's .gitignore keeps
out of git. Writes go to a temporary file first and are renamed into place, so a reader
never sees half a blob and two writers of the same content both succeed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from ..config import GIT_ARTIFACT_MAX
from ..errors import InvalidInputError, NotFoundError, StoreCorruptError
from .atomic import replace_durably, write_atomic
from .ids import new_id
from .layout import Layout


def file_sha256(path: Path) -> tuple[str, int]:
    """The sha256 (hex) and size of a file, read a MiB at a time."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def blobs_named(event: dict[str, Any]) -> list[str]:
    """The blobs a run's event names: an artifact's content, a git diff, a package list."""
    field = {"artifact": "sha256", "git": "diff_sha256", "environment": "packages_sha256"}.get(str(event.get("type")))
    value = event.get(field) if field else None
    return [value] if isinstance(value, str) else []


class BlobStore:
    """The blobs of one store root."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (always in git: diffs and package lists are small); its sha256."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.layout.blob_path(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
        return sha256

    def keep_fetched(self, fetched: Path, sha256: str, digest: str, large: bool) -> Path:
        """Move a file fetched as blob ``sha256`` (``digest``: what it hashed to as it
        arrived) into place; refused, and removed, unless it is that blob."""
        path = self.layout.blob_path(sha256, large=large)  # checks the name first
        if digest != sha256:
            fetched.unlink(missing_ok=True)
            raise InvalidInputError(f"the bytes fetched as blob {sha256} have another sha256 ({digest})")
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_durably(fetched, path)
        return path

    def staging_file(self) -> Path:
        """A new temporary file's name in the store's staging folder (out of git)."""
        staging = self.layout.cache / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        return staging / f"{os.getpid()}.{threading.get_ident()}.{new_id()}"

    def put_file(self, source: Path) -> tuple[str, int, bool]:
        """Copy a file in while hashing it: ``(sha256, size, in_git)``."""
        in_git = source.stat().st_size <= GIT_ARTIFACT_MAX.get()
        tmp = self.staging_file()
        digest = hashlib.sha256()
        size = 0
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
                size += len(block)
        sha256 = digest.hexdigest()
        path = self.layout.blob_path(sha256, large=not in_git)
        if path.exists():
            tmp.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_durably(tmp, path)
        return sha256, size, in_git

    def path(self, sha256: str, in_git: bool | None = None) -> Path:
        """The file of a blob that is here (``in_git`` None: look in both places)."""
        places = [True, False] if in_git is None else [in_git]
        for small in places:
            path = self.layout.blob_path(sha256, large=not small)
            if path.exists():
                return path
        raise NotFoundError(f"blob {sha256} is not in {self.layout.root} (large artifacts are not "
                            "in git: copy blobs-large/ from the machine that logged it)")

    def read(self, sha256: str) -> bytes:
        """The content of a blob."""
        return self.path(sha256).read_bytes()

    def verified(self, sha256: str, what: str, in_git: bool | None = None) -> Path:
        """The blob's file, after checking that it still hashes to ``sha256``."""
        path = self.path(sha256, in_git)
        digest, _ = file_sha256(path)
        if digest != sha256:
            raise StoreCorruptError(f"{what}: the file {path} no longer matches its sha256 "
                                    f"{sha256[:12]}... (it hashes to {digest[:12]}...)")
        return path
