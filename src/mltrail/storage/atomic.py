"""Whole-or-nothing file writes: the one place a file is renamed over another.

Promises:

- **Old or new, never a part.** :func:`write_atomic` writes the bytes to a temporary file
  in the target's own folder, named ``.<name>.<pid>.<thread>.tmp`` (the store's
  .gitignore keeps ``.*.tmp`` out of git; the pid and thread keep two writers of one
  file apart), then renames it over the target: a reader, or a crash at any moment,
  sees the old content or the new.
- **Durable once it returns.** The file is fsynced before the rename and its folder
  after it. Without the first, a power cut can leave the new name on an empty or
  partial file (ext4 and xfs commit a rename before the data); without the second,
  the rename itself can be lost.
- **Nothing left behind.** A write that fails midway (a full disk, an exception)
  removes its temporary file and leaves the target as it was.

:func:`replace_durably` gives the same promises to a file staged elsewhere on the same
file system (a blob hashed as it streamed in, an upload checked after its last part).
:func:`stage` and :func:`commit` give them to many new files for one sync of their file
system (an import writing thousands of run files): an fsync is a journal commit each.
Event files are appended, never replaced: nothing here runs per logged metric.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path


def temp_name(path: Path) -> Path:
    """The temporary file this process and thread write ``path`` through."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def write_atomic(path: Path, data: bytes, mode: int | None = None, sync_folder: bool = True) -> None:
    """Replace ``path``'s content with ``data``, whole or not at all, durably.

    ``mode``: the file's permission bits (e.g. ``0o600`` for secrets), set before a byte
    is written; None: the usual ``0o666`` less the umask. ``sync_folder=False``: the
    caller writing many files into one folder calls :func:`fsync_folder` once after the
    last, before anything relies on their names being durable.

    >>> write_atomic(Path("manifest.json"), b"{}")
    """
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)  # exactly these bits, whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_folder:
        fsync_folder(path.parent)


def replace_durably(staged: Path, target: Path) -> None:
    """Move the complete file ``staged`` to ``target`` (on the same file system), with
    :func:`write_atomic`'s promises: its bytes are on disk before the name is, and the
    name is on disk when this returns. A move that fails leaves ``staged`` where it was."""
    with open(staged, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(staged, target)
    fsync_folder(target.parent)
    if staged.parent != target.parent:  # the name it left, too: no second copy after a crash
        fsync_folder(staged.parent)


@dataclass
class Staged:
    """A file's bytes written under its temporary name, not yet durable nor named."""

    temporary: Path
    target: Path
    stat: os.stat_result  # the file's as written (a rename keeps its inode, size and mtime)


def stage(path: Path, data: bytes) -> Staged:
    """Write ``data`` to ``path``'s temporary file (any thread), for :func:`commit`; a
    failed write leaves nothing."""
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            return Staged(tmp, path, os.fstat(handle.fileno()))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def commit(staged: list[Staged]) -> list[OSError | None]:
    """Give staged files their names with :func:`write_atomic`'s promises: their bytes are
    made durable first (one sync of their file system, see :func:`sync_files`), then each
    is renamed and the names made durable. A crash before leaves none of the names (only
    temporary files, which nothing reads); after, the files whole. Per file: None, or why
    it has no name (its temporary file then removed)."""
    if not staged:
        return []
    sync_files([s.temporary for s in staged], [s.stat.st_dev for s in staged])
    failed: list[OSError | None] = []
    for item in staged:
        try:
            os.replace(item.temporary, item.target)
            failed.append(None)
        except OSError as exc:
            item.temporary.unlink(missing_ok=True)
            failed.append(exc)
    for folder in {item.target.parent for item in staged}:
        fsync_folder(folder)
    return failed


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def sync_files(paths: list[Path], devices: list[int] | None = None) -> None:
    """Make the bytes of many written files durable: on Linux one ``syncfs`` of each file
    system they are on (its journal committed once for all of them; measured 1.5-4x
    faster than an fsync each from 4 threads, for 3,000 files of 2 KB), elsewhere an fsync
    each. ``devices``: each path's ``st_dev``, when known. (Linux reports a writeback error
    to syncfs from 5.8 on.)"""
    syncfs = getattr(_LIBC, "syncfs", None)
    if syncfs is None:
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return
    one_each: dict[int, Path] = {}
    for path, device in zip(paths, devices or [os.stat(path).st_dev for path in paths], strict=True):
        one_each.setdefault(device, path)
    for path in one_each.values():
        fd = os.open(path, os.O_RDONLY)
        try:
            if syncfs(fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code), str(path))
        finally:
            os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Make the names in ``folder`` (a file created, renamed or removed) durable."""
    if os.name == "nt":  # Windows cannot open a folder; NTFS journals its renames
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
