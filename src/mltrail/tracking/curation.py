"""Curating runs after the fact: rename, notes, tags, delete and restore, and the
garbage collection that purges deleted runs.

Every change is an edit file (see :mod:`mltrail.storage.run_edits`): nothing is
rewritten, two branches merge as the union, and the history of who changed what is
kept (``get_run(...)["edits"]``). Deleting hides a run from searches and the dashboard
and can be undone; only :meth:`Curation.gc` removes files, and only of deleted runs.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import current_user
from ..errors import InvalidInputError, WrongStateError
from ..storage.blob_uploads import STAGED_KEEP_SECONDS, StagedBlobs
from ..storage.eventfiles import write_event_file
from ..storage.ids import new_id
from ..storage.fields import name_problem
from ..storage.layout import check_key, is_unicode_text
from ..storage.run_edits import (
    NAME_TAG,
    NOTES_TAG,
    RESERVED_TAGS,
    RunDeleted,
    RunEdit,
    RunRestored,
    RunTagRemoved,
    RunTagsSet,
)

if TYPE_CHECKING:
    from .tracker import Tracker

MAX_CLOCK_SKEW = 300.0  # seconds an edit made elsewhere may be ahead of this clock
MAX_NOTES = 1 << 20  # a megabyte of Markdown; a bigger text belongs in an artifact
_SHA256_IN_JSON = re.compile(rb'"([0-9a-f]{64})"')


def check_name(name: object) -> str:
    problem = name_problem(name)
    if problem:
        raise InvalidInputError(f"run name {str(name)[:60]!r} {problem}")
    return name  # type: ignore[return-value]  # (a str: name_problem refuses anything else)


def check_notes(notes: object) -> str:
    if not isinstance(notes, str):
        raise InvalidInputError(f"run notes are text (Markdown), not {type(notes).__name__}")
    if len(notes.encode("utf-8", "replace")) > MAX_NOTES or not is_unicode_text(notes):
        raise InvalidInputError(f"run notes must be valid Unicode text of at most {MAX_NOTES:,} bytes")
    return notes


def check_user_tag(key: object, running: bool = False) -> str:
    """A tag key a user may set or remove: its name and notes have their own calls
    (``run.set_name``/``set_notes`` while it runs, ``store.set_run_name``/``set_run_notes`` after)."""
    checked = check_key("tag", key)
    if checked in RESERVED_TAGS:
        calls = ("run.set_name", "run.set_notes") if running else ("set_run_name", "set_run_notes")
        raise InvalidInputError(f"tag {checked!r} holds the run's "
                                f"{'name' if checked == NAME_TAG else 'notes'}: use "
                                f"{calls[0] if checked == NAME_TAG else calls[1]}")
    return checked


@dataclass
class GcResult:
    """What ``gc`` purged (or, in a dry run, would purge)."""

    runs: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    blobs: list[Path] = field(default_factory=list)
    uploads: list[Path] = field(default_factory=list)  # a server's staged blob uploads nothing named in time
    bytes_freed: int = 0
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        return (f"{verb} {len(self.runs)} deleted run(s): {len(self.files)} event file(s), "
                f"{len(self.blobs)} blob(s) no other event names, {self.bytes_freed:,} bytes"
                + (f"; {len(self.uploads)} blob upload(s) nothing named within "
                   f"{STAGED_KEEP_SECONDS // 3600} h" if self.uploads else ""))


class Curation:
    """The edits of one store's runs."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def set_run_name(self, ref: str, name: str, *, by: str | None = None) -> str:
        """Rename a run (a name taken in its experiment reads with ``_2`` appended)."""
        return self._write(ref, RunTagsSet, by, tags={NAME_TAG: check_name(name)})

    def set_run_notes(self, ref: str, notes: str, *, by: str | None = None) -> str:
        """Set a run's notes (Markdown; they are its description). ``""`` clears them."""
        return self._write(ref, RunTagsSet, by, tags={NOTES_TAG: check_notes(notes)})

    def set_tag(self, ref: str, key: str, value: Any, *, by: str | None = None) -> str:
        """Set one tag of a run, ended or not; it wins over the value the run logged."""
        return self._write(ref, RunTagsSet, by, tags={check_user_tag(key): str(value)})

    def delete_tag(self, ref: str, key: str, *, by: str | None = None) -> str:
        checked = check_user_tag(key)
        run_id = self.tracker.resolve_run(ref)
        if checked not in self.tracker.get_run(run_id)["tags"]:
            raise InvalidInputError(f"run {run_id} has no tag {checked!r}")
        return self._write(run_id, RunTagRemoved, by, key=checked)

    def delete_run(self, ref: str, *, by: str | None = None, running_too: bool = False) -> str:
        """Hide a run from searches and the dashboard (restorable; ``gc`` purges it). A
        RUNNING run is refused unless ``running_too`` (MLflow's stores delete any run, and
        its clients on mltrail do): its writer goes on writing a hidden run."""
        run_id = self.tracker.resolve_run(ref)
        info = self.tracker.get_run(run_id)["run"]
        if info["deleted"]:
            raise WrongStateError(f"run {run_id} is deleted already")
        if info["status"] == "RUNNING" and not running_too:
            raise WrongStateError(f"run {run_id} is RUNNING: stop it before deleting it")
        return self._write(run_id, RunDeleted, by)

    def restore_run(self, ref: str, *, by: str | None = None) -> str:
        run_id = self.tracker.resolve_run(ref)
        if not self.tracker.get_run(run_id)["run"]["deleted"]:
            raise WrongStateError(f"run {run_id} is not deleted: nothing to restore")
        return self._write(run_id, RunRestored, by)

    def import_edit(self, edit: RunEdit) -> bool:
        """Keep an edit made elsewhere (``mltrail sync`` of a store curated offline) under
        its own ID, once: False when this store has it already. One dated in the future
        is refused: among edits of one field the latest wins, so it would win over every
        edit made until then."""
        if edit.ts > time.time() + MAX_CLOCK_SKEW:
            raise InvalidInputError(f"edit {edit.id} is dated {edit.ts - time.time():,.0f} s in the future "
                                    "(the clocks of its machine and this one disagree?): not kept")
        folder = self.tracker.layout.run_edits(self.tracker.run_file(edit.run))
        if (folder / f"{edit.id}.jsonl").exists():
            return False
        write_event_file(folder, edit.id, edit)
        return True

    def _write(self, ref: str, model: type[RunEdit], by: str | None, **fields: Any) -> str:
        """Write one edit of run ``ref`` beside its experiment's runs; its run ID."""
        run_id = self.tracker.resolve_run(ref)
        edit = model(ts=time.time(), id=new_id(), by=by or current_user(), run=run_id, **fields)
        layout = self.tracker.layout
        write_event_file(layout.run_edits(self.tracker.run_file(run_id)), edit.id, edit)
        return run_id

    # -- purging -------------------------------------------------------------------

    def gc(self, runs: Sequence[str] | None = None, *, dry_run: bool = False) -> GcResult:
        """Purge deleted runs (all of them, or those named): their event file, their edits
        and stop requests, and the blobs that no other event file names (an artifact
        another run or a registered model shares is kept). Files go as ``git rm`` would
        take them; the tables are rebuilt from what is left. Blobs a server received that
        no line named within ``STAGED_KEEP_SECONDS`` (a day) go too: they never were in git."""
        tracker = self.tracker
        layout = tracker.layout
        staged = StagedBlobs(layout).expire(dry_run=dry_run)
        frame = tracker.all_runs()
        deleted = frame[frame["deleted"].fillna(False).astype(bool)]
        if runs:
            chosen = [tracker.resolve_run(ref) for ref in runs]
            alive = [run_id for run_id in chosen if run_id not in deleted.index]
            if alive:
                raise WrongStateError(f"run {alive[0]} is not deleted: delete it before purging it")
            deleted = deleted.loc[chosen]
        result = GcResult(runs=sorted(deleted.index), uploads=staged, dry_run=dry_run)
        if deleted.empty:
            return result
        doomed: set[Path] = set()
        for run_id in result.runs:
            run_file = layout.root / str(deleted.loc[run_id, "file"])
            doomed.add(run_file)
            stop = layout.stop_requests(run_file)
            if stop.is_dir():
                doomed.update(p for p in stop.iterdir() if p.is_file())
        edits = tracker.run_edits()
        for row in edits[edits["run_id"].isin(result.runs)].itertuples():
            run_file = layout.root / str(deleted.loc[row.run_id, "file"])
            doomed.add(layout.run_edits(run_file) / f"{row.edit_id}.jsonl")
        doomed = {p for p in doomed if p.exists()}
        candidates = _blobs_named(doomed)
        kept: set[str] = set()
        for path in _event_files(layout.root):
            if path not in doomed and candidates - kept:
                kept |= candidates & _blobs_named([path])
        for sha256 in sorted(candidates - kept):
            for large in (False, True):
                blob = layout.blob_path(sha256, large=large)
                if blob.exists():
                    result.blobs.append(blob)
        result.files = sorted(doomed)
        result.bytes_freed = sum(p.stat().st_size for p in result.files + result.blobs)
        if dry_run:
            return result
        for path in result.files + result.blobs:
            path.unlink(missing_ok=True)
        for run_id in result.runs:
            stop = layout.stop_requests(layout.root / str(deleted.loc[run_id, "file"]))
            shutil.rmtree(stop, ignore_errors=True)
        tracker.compact()
        return result


def _event_files(root: Path) -> list[Path]:
    """Every event file of the store (runs, edits, A/B, registry, features, access), not
    the derived tables."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("blobs", "blobs-large")]
        found.extend(Path(folder) / name for name in files if name.endswith(".jsonl"))
    return found


def _blobs_named(paths: Any) -> set[str]:
    """The sha256 values quoted in these event files (artifacts, diffs, package lists,
    registered models, feature datasets all name blobs so)."""
    named: set[str] = set()
    for path in paths:
        try:
            named.update(m.decode() for m in _SHA256_IN_JSON.findall(Path(path).read_bytes()))
        except FileNotFoundError:
            pass
    return named
