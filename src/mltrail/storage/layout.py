"""Where everything lives inside a store root, and which names are allowed.

::

    <root>/
      .gitignore                      keeps .cache/ and large blobs out of git
      experiments/<experiment>/runs/<run_id>.jsonl   one append-only event file per run
      experiments/<experiment>/edits/<id>.jsonl      one file per curation of a run (rename, delete...)
      experiments/<experiment>/meta/<id>.jsonl       the experiment's own facts: ID, tags, deleted (MLflow's)
      experiments/<experiment>/models/<model>/<id>.jsonl   one file per fact of a logged model (MLflow 3's)
      blobs/sha256/<ab>/<cdef...>     content-addressed artifacts, committed to git
      blobs-large/sha256/...          artifacts over MLTRAIL_GIT_ARTIFACT_MAX, not committed
      .cache/                         derived: Parquet tables, locks (rebuildable)
      .cache/uploads/<uploader>/      a server's blob uploads, until a line it accepts names them

A folder name is only a place: the true experiment name is in the events, so the
folder is a sanitised form of the name that can never escape the root, plus a short
hash whenever sanitising lost information (so two names never share a folder).
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from ..errors import InvalidKeyError, StoreCorruptError

MAX_KEY_LENGTH = 250
EDITS_FOLDER = "edits"  # experiments/<experiment>/edits/: curation of its runs
META_FOLDER = "meta"  # experiments/<experiment>/meta/: the experiment's ID, tags, lifecycle
MODELS_FOLDER = "models"  # experiments/<experiment>/models/<model ID>/: MLflow 3's logged models
# a name that is also a folder and a URL path segment: A/B experiment keys, model names
FOLDER_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
GITIGNORE = """\
# Written by mltrail: derived tables and large artifacts stay out of git, and so does a
# file a killed writer left half-written beside the one it was to become.
/.cache/
/blobs-large/
.*.tmp
"""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNSAFE_DIR_CHARS = re.compile(r"[^\w.\-]+", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Layout:
    """Paths of one store root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.experiments = root / "experiments"
        self.blobs = root / "blobs"
        self.large_blobs = root / "blobs-large"
        self.cache = root / ".cache"
        self.tables = self.cache / "tables"
        self.locks = self.cache / "locks"
        self.uploads = self.cache / "uploads"  # a server's blobs in transit: out of git until named

    def ensure(self) -> None:
        """Create the root, its folders and its .gitignore (idempotent)."""
        for folder in (self.experiments, self.blobs, self.tables, self.locks):
            folder.mkdir(parents=True, exist_ok=True)
        gitignore = self.root / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text(GITIGNORE, encoding="utf-8")

    def experiment_dir(self, experiment: str) -> Path:
        return self.experiments / experiment_dirname(experiment)

    def experiment_meta(self, experiment: str) -> Path:
        return self.experiment_dir(experiment) / META_FOLDER

    def models_dir(self, experiment: str) -> Path:
        """The folder of an experiment's logged models: one folder of event files each."""
        return self.experiment_dir(experiment) / MODELS_FOLDER

    def run_file(self, experiment: str, run_id: str) -> Path:
        return self.experiment_dir(experiment) / "runs" / f"{run_id}.jsonl"

    def blob_path(self, sha256: str, large: bool = False) -> Path:
        """Where the blob of ``sha256`` lives. A hash read from an event file is checked
        again here: one that is not 64 hex digits could name a path outside the store."""
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise StoreCorruptError(f"{sha256!r} is not a sha256 (64 hex digits): an event file of "
                                    f"{self.root} was changed by hand or damaged")
        base = self.large_blobs if large else self.blobs
        return base / "sha256" / sha256[:2] / sha256[2:]

    def upload_dir(self, uploader: str | None) -> Path:
        """The staging folder of one uploader's blobs on a server (a hash of the user's
        name: a name is never a path)."""
        key = hashlib.sha256(f"user:{uploader}".encode()).hexdigest()[:24] if uploader else "anonymous"
        return self.uploads / key

    def run_edits(self, run_file: Path) -> Path:
        """The folder of edits to the runs of ``run_file``'s experiment: beside its runs
        folder, one immutable file per edit (see ``storage.run_edits``)."""
        return run_file.parent.parent / EDITS_FOLDER

    def stop_requests(self, run_file: Path) -> Path:
        """The folder of requests to stop the run of ``run_file``: beside the runs folder
        (compaction reads only that one), one file per request, so that requests from
        two people, or two git branches, never touch one file."""
        return run_file.parent.parent / "stop" / run_file.stem

    def lock_file(self, name: str) -> Path:
        return self.locks / f"{name}.lock"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


@lru_cache(maxsize=4096)
def experiment_dirname(name: str) -> str:
    """A folder name for an experiment that stays inside the root, whatever the name."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidKeyError("experiment", name, "must be a non-empty string")
    if not is_unicode_text(name):
        raise InvalidKeyError("experiment", name, "is not valid Unicode text (it holds a lone surrogate)")
    normal = unicodedata.normalize("NFC", name)
    safe = _UNSAFE_DIR_CHARS.sub("_", normal).strip("._") or "experiment"
    # 80 characters, and at most 240 bytes: with the hash below, within the 255 bytes a file
    # name may have (80 four-byte letters such as '𝓐' were 320)
    safe = safe[:80].encode("utf-8")[:240].decode("utf-8", "ignore")
    if safe != name:
        safe += "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return safe


def partition_name(experiment: str) -> str:
    """An experiment's hive partition value in the derived tables: its folder name, or,
    when ``experiment=<folder>`` would be too long for a file name, a shorter one made
    unique by a hash."""
    folder = experiment_dirname(experiment)
    if len(folder.encode("utf-8")) <= 200:
        return folder
    short = folder.encode("utf-8")[:180].decode("utf-8", "ignore")
    return f"{short}-{hashlib.sha256(folder.encode('utf-8')).hexdigest()[:8]}"


_valid_keys: set[str] = set()  # keys already checked: runs log the same keys again and again


def check_key(kind: str, key: object) -> str:
    """Validate a param, metric, tag or artifact key; return it unchanged.

    Keys like ``train/loss`` are fine; keys that would resolve to another name as a
    path (``..``, ``a/./b``, ``a//b``, ``/abs``) are refused, as are empty keys, keys
    over 250 characters and control characters.
    """
    if isinstance(key, str) and key in _valid_keys:
        return key
    checked = _check_key(kind, key)
    if len(_valid_keys) > 100_000:
        _valid_keys.clear()
    _valid_keys.add(checked)
    return checked


def _check_key(kind: str, key: object) -> str:
    """``key`` itself (a str from here on), or InvalidKeyError saying what is wrong."""
    if not isinstance(key, str):
        raise InvalidKeyError(kind, key, f"must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidKeyError(kind, key, "must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(kind, key, f"is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}")
    if not is_unicode_text(key):
        raise InvalidKeyError(kind, key, "is not valid Unicode text (it holds a lone surrogate)")
    if _CONTROL.search(key):
        raise InvalidKeyError(kind, key, "must not contain control characters")
    if "\\" in key:
        raise InvalidKeyError(kind, key, "must not contain a backslash")
    if key.startswith("/") or key.endswith("/"):
        raise InvalidKeyError(kind, key, "must not start or end with '/'")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKeyError(kind, key, "would resolve to another name as a path ('.', '..' or '//')")
    return key


def stat_signature(path: Path) -> tuple[int, int] | None:
    """(mtime ns, size) of a file or folder, or None when it is not there: a cheap sign
    that it changed (a folder's changes when a file is added or removed)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_mtime_ns, info.st_size


def is_unicode_text(text: str) -> bool:
    """False for strings holding lone surrogates, which no UTF-8 file can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
