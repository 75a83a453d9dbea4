"""Finding the event files that have bytes compaction has not read, cheaply.

Every query compacts first, so on a store of 10,000 runs this must cost far less than
10,000 ``stat`` calls. It rests on one fact: appending to a file does not change its
folder's mtime, while adding, removing or replacing a file (a new run, a ``git
checkout``, a merge) does. So a runs folder whose mtime is what it was when last
listed holds the same files, and only those of runs that have not ended can have
grown (an edit file, ``edits/<id>.jsonl``, is written whole once and never grows). As git does for its index, an mtime within ``RACY_SECONDS`` of now is not
trusted (two changes in one timestamp tick would look like one).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from ..storage.layout import EDITS_FOLDER, Layout
from .manifest import FileProgress, Manifest
from .reader import Todo

RACY_SECONDS = 2.0


@dataclass
class Scan:
    todo: Todo = field(default_factory=list)
    must_rebuild: bool = False  # a file shrank or vanished: the tables hold stale rows
    files_seen: int = 0
    folders: dict[str, int] = field(default_factory=dict)  # trustworthy folder mtimes now


def scan(layout: Layout, manifest: Manifest) -> Scan:
    """Which files have unread bytes, by the manifest's record of what was read."""
    result = Scan()
    trusted_before = time.time_ns() - int(RACY_SECONDS * 1e9)
    known_by_folder = manifest.files_by_folder
    visited = set()
    root = str(layout.root)
    try:
        experiments = sorted(e.name for e in os.scandir(layout.experiments))
    except FileNotFoundError:
        experiments = []
    for name in experiments:
        for sub in ("runs", EDITS_FOLDER):
            folder_rel = f"experiments/{name}/{sub}"
            if _scan_folder(root, folder_rel, manifest, known_by_folder, trusted_before, result):
                visited.add(folder_rel)
    if any(folder not in visited for folder in known_by_folder):
        result.must_rebuild = True  # a whole experiment vanished
    result.todo.sort(key=lambda item: item[1])
    return result


def _scan_folder(root: str, folder_rel: str, manifest: Manifest, known_by_folder: dict[str, list[str]],
                 trusted_before: int, result: Scan) -> bool:
    """Put the files of one folder with unread bytes on the to-do list; False when the
    folder is not there."""
    folder = os.path.join(root, folder_rel)
    try:
        mtime = os.stat(folder).st_mtime_ns
    except (FileNotFoundError, NotADirectoryError):
        return False
    known = known_by_folder.get(folder_rel, [])
    if mtime < trusted_before:
        result.folders[folder_rel] = mtime
    if mtime < trusted_before and manifest.folders.get(folder_rel) == mtime:
        result.files_seen += len(known)  # the same files: only unended runs can grow
        candidates = [(rel, os.path.join(root, rel)) for rel in manifest.unended(folder_rel)]
    else:
        try:
            with os.scandir(folder) as entries:
                candidates = [(f"{folder_rel}/{e.name}", e.path) for e in entries
                              if e.name.endswith(".jsonl") and not e.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):  # removed since its stat (a git checkout)
            return False
        result.files_seen += len(candidates)
        if len(known) and not set(known) <= {rel for rel, _ in candidates}:
            result.must_rebuild = True  # a file vanished
    check_sizes(manifest, candidates, result)
    return True


def check_sizes(manifest: Manifest, candidates: list[tuple[str, str]], result: Scan) -> None:
    """Put each candidate ``(name in the manifest, path)`` with unread bytes on the to-do
    list; one that shrank or vanished since it was read means a rebuild."""
    for rel, path in candidates:
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:  # removed since it was listed
            result.must_rebuild = True
            continue
        known = manifest.files.get(rel)
        if known is None:
            result.todo.append((path, rel, None, size))
        elif size < known.offset:
            result.must_rebuild = True
        elif size != known.size:
            result.todo.append((path, rel, known, size))
