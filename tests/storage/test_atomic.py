"""Whole-or-nothing writes: old or new content, durable, nothing left behind, one helper."""

import ast
import errno
import fnmatch
import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

import mltrail
from mltrail.compaction.manifest import MANIFEST_NAME
from mltrail.storage import registry_events as rev
from mltrail.storage.atomic import write_atomic
from mltrail.storage.blob_uploads import StagedBlobs
from mltrail.storage.eventfiles import write_event_file
from mltrail.storage.ids import new_id

SRC = Path(mltrail.__file__).parent


def _fail(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_write_that_fails_midway_keeps_the_old_content_and_leaves_no_temporary_file(tmp_path, monkeypatch, failing):
    path = tmp_path / "manifest.json"
    path.write_bytes(b"old")
    monkeypatch.setattr(os, failing, _fail)  # the disk fills after the bytes went to the temporary file
    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, b"new" * 1000)
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["manifest.json"]


def test_the_temporary_file_is_in_the_same_folder_and_named_as_the_gitignore_expects(tmp_path, monkeypatch):
    renamed = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(Path(src)), real(src, dst)))
    write_atomic(tmp_path / "tokens.json", b"{}")
    [tmp] = renamed
    assert tmp.parent == tmp_path
    assert tmp.name == f".tokens.json.{os.getpid()}.{threading.get_ident()}.tmp"
    assert fnmatch.fnmatch(tmp.name, ".*.tmp")  # the store's .gitignore line


def test_a_mode_is_set_before_a_byte_is_written_whatever_the_umask(tmp_path, monkeypatch):
    seen = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (seen.append(stat.S_IMODE(os.fstat(fd).st_mode)), real(fd)))
    old = os.umask(0)
    try:
        write_atomic(tmp_path / "secret", b"hash", mode=0o600)
    finally:
        os.umask(old)
    assert seen[0] == 0o600  # the temporary file, before its rename
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600


# -- every replacing write in the package is durable ----------------------------------


@pytest.fixture
def fsynced(monkeypatch):
    """The files and folders fsynced from now on, as (device, inode): a file is fsynced
    under its temporary name and keeps its inode when renamed into place."""
    synced = []
    real = os.fsync

    def spy(fd):
        info = os.fstat(fd)
        synced.append((info.st_dev, info.st_ino))
        real(fd)
    monkeypatch.setattr(os, "fsync", spy)
    return synced


def _inode(path):
    info = path.stat()
    return info.st_dev, info.st_ino


def _event_file(store):
    return write_event_file(store.root / "events", new_id(), rev.ModelCreated(ts=1.0, model="m", id=new_id()))


def _tokens(store):
    store.access.add_user("ann", admin=True)
    path = store.root / ".secrets" / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a secret stays the owner's alone
    return path


def _blob_bytes(store):
    return store.blobs.layout.blob_path(store.blobs.put_bytes(b"a diff"))


def _blob_file(store):
    source = store.root.parent / "model.bin"
    source.write_bytes(b"weights" * 100)
    sha256, _, in_git = store.blobs.put_file(source)
    return store.blobs.path(sha256, in_git)


def _blob_fetched(store):
    fetched = store.blobs.staging_file()
    fetched.write_bytes(b"fetched")
    sha256 = hashlib.sha256(b"fetched").hexdigest()
    return store.blobs.keep_fetched(fetched, sha256, sha256, large=False)


def _blob_uploaded(store):
    staged, data = StagedBlobs(store.layout), b"uploaded"
    sha256 = hashlib.sha256(data).hexdigest()
    part = staged.part("ann", sha256, 0, None, limit=1 << 20)
    try:
        part.write(data)
        part.commit()
    finally:
        part.close()
    staged.finish("ann", sha256, large=False)
    assert staged.adopt([sha256]) == [sha256]
    return store.layout.blob_path(sha256)


def _manifest(store):
    with store.start_run("e", log_git=False, log_packages=False) as run:
        run.log_metric("x", 1.0)
    store.compact()
    [path] = (store.root / ".cache").rglob(MANIFEST_NAME)
    return path


@pytest.mark.parametrize("write", [_event_file, _tokens, _blob_bytes, _blob_file, _blob_fetched, _blob_uploaded,
                                   _manifest])
def test_a_replacing_write_is_on_disk_file_and_folder_when_it_returns(store, fsynced, write):
    path = write(store)
    assert _inode(path) in fsynced, "the file's bytes were not fsynced before its rename"
    assert _inode(path.parent) in fsynced, "the folder was not fsynced after the rename"
    assert not list(path.parent.glob(".*.tmp"))


@pytest.mark.slow
def test_os_replace_is_called_in_the_atomic_helper_only():
    """One helper keeps the promises (fsync, temporary name, clean-up); a rename written
    anywhere else would quietly skip them."""
    found = []
    for file in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr in ("replace", "rename", "move")
                    and isinstance(node.value, ast.Name) and node.value.id in ("os", "shutil")) or (
                    isinstance(node, ast.ImportFrom) and node.module in ("os", "shutil")
                    and {a.name for a in node.names} & {"replace", "rename", "move"}):
                found.append(f"{file.relative_to(SRC)}:{node.lineno}")
    assert {place.split(":")[0] for place in found} == {"storage/atomic.py"}, found


# -- many new files for one sync ------------------------------------------------------


def test_staged_files_are_named_only_once_their_bytes_are_synced(tmp_path, monkeypatch, fsynced):
    from mltrail.storage import atomic

    targets = [tmp_path / "runs" / f"{i}.jsonl" for i in range(5)]
    targets[0].parent.mkdir()
    staged = [atomic.stage(path, f"run {i}\n".encode()) for i, path in enumerate(targets)]
    assert not any(path.exists() for path in targets)  # nothing named before the commit
    named_at_sync = []
    real = atomic.sync_files
    monkeypatch.setattr(atomic, "sync_files",
                        lambda *args: named_at_sync.append([p.exists() for p in targets]) or real(*args))
    assert atomic.commit(staged) == [None] * 5
    assert named_at_sync == [[False] * 5]  # one sync, before any rename
    assert [path.read_bytes() for path in targets] == [f"run {i}\n".encode() for i in range(5)]
    for item, path in zip(staged, targets):  # the stat as staged is the file's as named
        assert (item.stat.st_ino, item.stat.st_size, item.stat.st_mtime_ns) == \
            (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns)
    assert _inode(targets[0].parent) in fsynced
    assert not list(targets[0].parent.glob(".*.tmp"))


def test_without_syncfs_each_staged_file_is_fsynced(tmp_path, monkeypatch, fsynced):
    from mltrail.storage import atomic

    monkeypatch.setattr(atomic, "_LIBC", None)  # (macOS, Windows)
    staged = [atomic.stage(tmp_path / f"{i}.jsonl", b"x") for i in range(3)]
    assert atomic.commit(staged) == [None] * 3
    assert {_inode(tmp_path / f"{i}.jsonl") for i in range(3)} <= set(fsynced)


def test_a_staged_file_that_cannot_be_named_says_why_and_leaves_nothing(tmp_path, monkeypatch):
    from mltrail.storage import atomic

    staged = [atomic.stage(tmp_path / f"{i}.jsonl", b"x") for i in range(3)]
    (tmp_path / "1.jsonl").mkdir()  # a folder where the file should go
    (tmp_path / "1.jsonl" / "in-the-way").touch()
    failed = atomic.commit(staged)
    assert failed[0] is None and failed[2] is None and isinstance(failed[1], OSError)
    assert (tmp_path / "0.jsonl").read_bytes() == b"x" and (tmp_path / "2.jsonl").is_file()
    assert not list(tmp_path.glob(".*.tmp"))
