"""The manifest: which Parquet files make up each derived table, and how far each event
file has been read.

A compaction writes new Parquet files under fresh names, then commits by replacing
``_manifest.json`` atomically. Readers only open files the manifest lists, so they
never see a half-written table; files a crashed compaction left behind are ignored
and removed by the next one.

The progress of an ended run's file never changes again (unless the run is resumed), so
it is *sealed*: written once into a small immutable file under ``_files/`` that the
manifest lists, the later overriding the earlier, and merged into one past
``MAX_SEALED``. ``_manifest.json`` itself holds only the files still being written:
with one live run among 100,000 ended ones, a commit rewrites a few hundred bytes, not
the progress of every file (a 10 MB rewrite took ~300 ms).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import StoreCorruptError
from ..storage.atomic import write_atomic

MANIFEST_NAME = "_manifest.json"
MANIFEST_FORMAT = 2  # 2: sealed progress files; format 1 (all progress inline) still reads
SEALED_FOLDER = "_files"
MAX_SEALED = 16  # sealed progress files before they are merged into one
# the shape of the derived tables: a manifest of an older shape makes the next compaction
# rebuild them from the events (2: runs can be deleted, edits have a table; 3: datasets
# keep what MLflow knows of them; 4: a metric point keeps the dataset it was measured on)
TABLES_FORMAT = 4


@dataclass(frozen=True, slots=True)
class FileProgress:
    """How much of one event file the tables already hold."""

    offset: int  # bytes read: everything before this is in the tables
    size: int  # file size when last read (more than offset while a tail is torn)
    line: int  # 1-based number of the next line to read
    done: bool = False  # its run has ended: its writer appends nothing more


class ProgressMap(dict[str, FileProgress]):
    """Progress by file name that remembers which names were set since it was made: a
    commit looks at those and the open ones, never at every file of a big store."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.changed: set[str] = set()

    def __setitem__(self, name: str, progress: FileProgress) -> None:
        super().__setitem__(name, progress)
        self.changed.add(name)


@dataclass
class Manifest:
    generation: int = 0
    files: ProgressMap = field(default_factory=ProgressMap)  # every file: sealed and open
    tables: dict[str, list[str]] = field(default_factory=dict)
    bad_lines: list[dict[str, Any]] = field(default_factory=list)
    # runs folder -> its mtime (ns) when it was listed, recorded only once that mtime was
    # old enough to be trustworthy (see compaction.scan)
    folders: dict[str, int] = field(default_factory=dict)
    sealed: list[str] = field(default_factory=list)  # sealed progress files, oldest first
    sealed_files: dict[str, FileProgress] = field(default_factory=dict)  # what they hold, merged
    open_files: set[str] = field(default_factory=set)  # in files but not (as they are) sealed
    tables_format: int = TABLES_FORMAT
    _by_folder: tuple[int, dict[str, list[str]]] | None = field(default=None, repr=False, compare=False)

    def copy(self) -> Manifest:
        """A copy a compaction may change: its containers are new, the FileProgress records
        (immutable) are shared."""
        files = ProgressMap(self.files)
        files.changed = set(self.files.changed)
        return Manifest(self.generation, files, {k: list(v) for k, v in self.tables.items()},
                        list(self.bad_lines), dict(self.folders), list(self.sealed), dict(self.sealed_files),
                        self.unsealed(), self.tables_format, self._by_folder)

    def unended(self, folder: str) -> list[str]:
        """The files directly in ``folder`` whose run has not ended. Only ended runs'
        files are sealed, so these are among the few unsealed ones."""
        prefix = folder + "/"
        return [name for name in self.open_files | self.files.changed
                if name.startswith(prefix) and "/" not in name[len(prefix):] and not self.files[name].done]

    def unsealed(self) -> set[str]:
        """The files whose progress is not in the sealed files as it is now."""
        return {name for name in self.open_files | self.files.changed
                if self.sealed_files.get(name) != self.files[name]}

    @property
    def files_by_folder(self) -> dict[str, list[str]]:
        """The files grouped by folder. Files are only ever added to a manifest (a rebuild
        starts a new one), so the grouping is current while the count is."""
        if self._by_folder is None or self._by_folder[0] != len(self.files):
            grouped: dict[str, list[str]] = {}
            for rel in self.files:
                grouped.setdefault(rel.rsplit("/", 1)[0], []).append(rel)
            self._by_folder = (len(self.files), grouped)
        return self._by_folder[1]

    def to_json(self) -> bytes:
        return orjson.dumps({
            "format": MANIFEST_FORMAT,
            "generation": self.generation,
            "files": {k: _record(self.files[k]) for k in sorted(self.unsealed())},
            "sealed": self.sealed,
            "tables": self.tables,
            "bad_lines": self.bad_lines,
            "folders": dict(sorted(self.folders.items())),
            "tables_format": self.tables_format,
        })

    @classmethod
    def from_json(cls, raw: bytes, tables_dir: Path, fresh: bool = False) -> Manifest:
        data = orjson.loads(raw)
        if data.get("format") not in (1, MANIFEST_FORMAT):
            raise StoreCorruptError(
                f"derived tables have format {data.get('format')!r}; "
                "run `mltrail compact --rebuild`"
            )
        sealed_files: dict[str, FileProgress] = {}
        for name in data.get("sealed", []):
            sealed_files.update(_read_sealed(tables_dir, name, fresh))
        files = ProgressMap(sealed_files)
        files.update((k, FileProgress(*v)) for k, v in data["files"].items())  # update(): not "changed"
        return cls(
            generation=data["generation"],
            files=files,
            open_files=set(data["files"]),
            tables=data["tables"],
            bad_lines=data["bad_lines"],
            folders=data.get("folders", {}),
            sealed=list(data.get("sealed", [])),
            sealed_files=sealed_files,
            tables_format=data.get("tables_format", 1),
        )


_cache: dict[Path, tuple[bytes, Manifest]] = {}  # tables folder -> (manifest bytes, their parse)
_sealed_cache: dict[Path, tuple[tuple[int, int, int], dict[str, FileProgress]]] = {}


def _read_sealed(tables_dir: Path, name: str, fresh: bool = False) -> dict[str, FileProgress]:
    """One sealed progress file, read once per version: immutable under its name, which
    carries the generation that wrote it (a rebuild numbers past the files it replaces);
    only a deleted and rebuilt tables folder reuses names, and its files are new inodes,
    written atomically (never rewritten in place)."""
    path = tables_dir / name
    info = os.stat(path)
    version = (info.st_ino, info.st_size, info.st_mtime_ns)
    cached = _sealed_cache.get(path)
    if fresh or cached is None or cached[0] != version:
        raw = orjson.loads(path.read_bytes())
        cached = _sealed_cache[path] = (version, {k: FileProgress(*v) for k, v in raw["files"].items()})
    return cached[1]


def load_manifest(tables_dir: Path, private: bool = False) -> Manifest:
    """The committed manifest, or an empty one if there is none yet.

    Parsed once per committed version and shared: callers must not change it.
    ``private=True`` gives a copy that the caller may change (a compaction does). A
    version is the file's bytes, read each time (a few hundred bytes: the ended runs'
    progress is in the sealed files): a manifest replaced or rewritten in place within
    the file system's timestamp tick, by this process or another, is never answered
    from the old parse, as an (inode, size, mtime) key could.
    """
    try:
        raw = (tables_dir / MANIFEST_NAME).read_bytes()
    except FileNotFoundError:
        return Manifest()
    cached = _cache.get(tables_dir)
    if cached is not None and cached[0] == raw:
        return cached[1].copy() if private else cached[1]
    manifest = _parse(tables_dir, raw)
    if manifest is None:  # replaced while its sealed files were read
        return load_manifest(tables_dir, private)
    _cache[tables_dir] = (raw, manifest)
    return manifest.copy() if private else manifest


def read_manifest(tables_dir: Path) -> Manifest:
    """The committed manifest parsed from the files, as a new process reads it (nothing
    this process parsed before is reused): for checking what is on disk."""
    try:
        raw = (tables_dir / MANIFEST_NAME).read_bytes()
    except FileNotFoundError:
        return Manifest()
    manifest = _parse(tables_dir, raw, fresh=True)
    return read_manifest(tables_dir) if manifest is None else manifest


def _parse(tables_dir: Path, raw: bytes, fresh: bool = False) -> Manifest | None:
    """The manifest ``raw`` with its sealed files; None if it was replaced since (and a
    sealed file it named merged away)."""
    path = tables_dir / MANIFEST_NAME
    try:
        return Manifest.from_json(raw, tables_dir, fresh)
    except FileNotFoundError as exc:
        try:
            now = path.read_bytes()
        except FileNotFoundError:
            return Manifest()
        if now != raw:
            return None
        raise StoreCorruptError(f"{exc.filename} is missing; run `mltrail compact --rebuild`") from None
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise StoreCorruptError(
            f"{tables_dir / MANIFEST_NAME} is unreadable ({exc}); run `mltrail compact --rebuild`"
        ) from None


def committed_bytes(tables_dir: Path) -> bytes | None:
    """The committed manifest's bytes (None before the first commit): what identifies a
    committed version, for state kept beside it."""
    try:
        return (tables_dir / MANIFEST_NAME).read_bytes()
    except FileNotFoundError:
        return None


def commit_manifest(tables_dir: Path, manifest: Manifest) -> bytes:
    """Atomically replace the manifest: the moment the new tables become visible. The
    progress of files ended since the last commit is sealed first. The committed
    manifest is remembered as this version's, so the next compaction in this process
    does not parse it again. Returns the committed bytes."""
    unsealed = manifest.unsealed()
    newly = {name: manifest.files[name] for name in unsealed if manifest.files[name].done}
    if newly:
        if len(manifest.sealed) >= MAX_SEALED:  # merge: one file with every ended file's progress
            newly = {name: p for name, p in manifest.files.items() if p.done}
            manifest.sealed, manifest.sealed_files = [], {}
        name = f"{SEALED_FOLDER}/{manifest.generation:08d}.json"
        (tables_dir / SEALED_FOLDER).mkdir(exist_ok=True)
        write_atomic(tables_dir / name, orjson.dumps({"files": {k: _record(p) for k, p in sorted(newly.items())}}))
        manifest.sealed.append(name)
        manifest.sealed_files.update(newly)
    manifest.open_files = manifest.unsealed()
    manifest.files.changed.clear()
    path = tables_dir / MANIFEST_NAME
    raw = manifest.to_json()
    write_atomic(path, raw)
    _cache[tables_dir] = (raw, manifest.copy())
    return raw


def _record(progress: FileProgress) -> list[Any]:
    return [progress.offset, progress.size, progress.line, progress.done]


def collect_sealed_garbage(tables_dir: Path, manifest: Manifest) -> None:
    """Remove sealed progress files the manifest no longer lists (merged or orphaned)."""
    keep = set(manifest.sealed)
    folder = tables_dir / SEALED_FOLDER
    for path in folder.glob("*.json") if folder.is_dir() else []:
        if f"{SEALED_FOLDER}/{path.name}" not in keep:
            _sealed_cache.pop(path, None)
            path.unlink(missing_ok=True)

