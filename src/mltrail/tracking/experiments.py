"""Experiments as things of their own: an ID, tags and a lifecycle beside the runs.

mltrail names an experiment and creates it with its first run; MLflow's clients create an
experiment first, know it by a numeric ID, tag it and delete it. What they do is kept as
event files (:mod:`mltrail.storage.experiment_events`), so an experiment made through
MLflow exists before its first run, keeps its tags, and has the same ID on every machine:
an ID is derived from the name (``Default`` is ``"0"``, as in MLflow), unless the
experiment was created with one (an import keeps MLflow's).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import current_user
from ..errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ..storage import experiment_events as xev
from ..storage.eventfiles import EventFolder, write_event_file
from ..storage.fields import name_problem
from ..storage.ids import id_time, new_id
from ..storage.layout import META_FOLDER, Layout, check_key

DEFAULT_EXPERIMENT = "Default"
DEFAULT_EXPERIMENT_ID = "0"


def derived_id(name: str) -> str:
    """The ID an experiment has unless it was created with one: stable across machines and
    processes, so two clones that both start logging into ``churn`` agree on its ID."""
    if name == DEFAULT_EXPERIMENT:
        return DEFAULT_EXPERIMENT_ID
    # 15 hex digits: at most 18 decimal ones, within an int64 and never "0"
    return str(int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:15], 16) or 1)


@dataclass
class ExperimentRecord:
    """What MLflow calls an experiment: name, ID, tags, lifecycle and times (seconds)."""

    name: str
    experiment_id: str
    lifecycle_stage: str = "active"  # or "deleted"
    tags: dict[str, str] = field(default_factory=dict)
    artifact_location: str | None = None
    creation_time: float | None = None
    last_update_time: float | None = None
    created: bool = False  # has an experiment_created event (else known only by its runs)


class ExperimentCatalog:
    """The experiments of one store: those with runs and those created without one.

    ``run_experiments`` answers the names of the experiments that have runs (deleted runs
    included) with the time of their first run; the tracker passes its run index.
    """

    def __init__(self, layout: Layout, run_experiments: Callable[[], Mapping[str, float | None]]) -> None:
        self.layout = layout
        self._run_experiments = run_experiments
        self._folders: dict[Path, EventFolder] = {}

    # -- reading -----------------------------------------------------------------------

    def records(self) -> dict[str, ExperimentRecord]:
        """Every experiment by name, oldest first."""
        found: dict[str, ExperimentRecord] = {}
        for events in self._event_lists():
            record = _replay(events)
            if record is not None:
                found[record.name] = record
        for name, first_start in self._run_experiments().items():
            record = found.get(name)
            if record is None:
                found[name] = ExperimentRecord(name=name, experiment_id=derived_id(name),
                                               creation_time=first_start, last_update_time=first_start)
        return dict(sorted(found.items(), key=lambda item: (item[1].creation_time or 0.0, item[0])))

    def of_runs(self, name: str) -> ExperimentRecord:
        """The record of an experiment known to exist (a run names it), read from its own
        folder alone: no look at the store's runs, which :meth:`records` needs."""
        record = _replay(self._reader(self.layout.experiment_meta(name)).events())
        return record if record is not None else ExperimentRecord(name=name, experiment_id=derived_id(name))

    def by_name(self, name: str) -> ExperimentRecord | None:
        return self.records().get(name)

    def by_id(self, experiment_id: str) -> ExperimentRecord:
        for record in self.records().values():
            if record.experiment_id == experiment_id:
                return record
        raise NotFoundError(f"no experiment with ID {experiment_id!r} in {self.layout.root}")

    def _event_lists(self) -> Iterable[list[xev.ExperimentEvent]]:
        try:
            folders = [entry.path for entry in os.scandir(self.layout.experiments) if entry.is_dir()]
        except FileNotFoundError:
            return
        for folder in folders:
            meta = Path(folder) / META_FOLDER
            if not meta.is_dir():
                continue
            events = self._reader(meta).events()
            if events:
                yield events

    def _reader(self, meta: Path) -> EventFolder:
        reader = self._folders.get(meta)
        if reader is None:
            reader = self._folders[meta] = EventFolder(meta, xev.EXPERIMENT_EVENT_ADAPTER, "experiment")
        return reader

    # -- writing -----------------------------------------------------------------------

    def create(self, name: str, *, experiment_id: str | None = None, artifact_location: str | None = None,
               tags: Mapping[str, Any] | None = None, by: str | None = None) -> ExperimentRecord:
        """Create experiment ``name`` (no run yet). A name taken, by a deleted experiment too,
        is refused (as MLflow does: restore it, or pick another name)."""
        problem = name_problem(name)
        if problem:
            raise InvalidInputError(f"experiment name {name!r} {problem}")
        existing = self.by_name(name)
        if existing is not None:
            state = " (deleted: restore it or pick another name)" if existing.lifecycle_stage == "deleted" else ""
            raise AlreadyExistsError(f"experiment {name!r} already exists{state}")
        experiment_id = derived_id(name) if experiment_id is None else experiment_id
        clash = next((r for r in self.records().values() if r.experiment_id == experiment_id), None)
        if clash is not None:
            raise AlreadyExistsError(f"experiment ID {experiment_id} is experiment {clash.name!r}'s")
        checked = {check_key("tag", k): str(v) for k, v in (tags or {}).items()}
        self._write(xev.ExperimentCreated(ts=time.time(), id=new_id(), by=by or current_user(), experiment=name,
                                          experiment_id=experiment_id, artifact_location=artifact_location,
                                          tags=checked))
        created = self.by_name(name)
        assert created is not None
        return created

    def set_tag(self, name: str, key: str, value: Any, *, by: str | None = None) -> None:
        self._require(name)
        self._write(xev.ExperimentTagSet(ts=time.time(), id=new_id(), by=by or current_user(), experiment=name,
                                         key=check_key("tag", key), value=str(value)))

    def delete_tag(self, name: str, key: str, *, by: str | None = None) -> None:
        if key not in self._require(name).tags:
            raise NotFoundError(f"experiment {name!r} has no tag {key!r}")
        self._write(xev.ExperimentTagDeleted(ts=time.time(), id=new_id(), by=by or current_user(), experiment=name,
                                             key=key))

    def delete(self, name: str, *, by: str | None = None) -> None:
        """Mark the experiment deleted (its runs stay; searches of active experiments skip it)."""
        if self._require(name).lifecycle_stage == "deleted":
            raise InvalidInputError(f"experiment {name!r} is already deleted")
        self._write(xev.ExperimentDeleted(ts=time.time(), id=new_id(), by=by or current_user(), experiment=name))

    def restore(self, name: str, *, by: str | None = None) -> None:
        if self._require(name).lifecycle_stage != "deleted":
            raise InvalidInputError(f"experiment {name!r} is not deleted")
        self._write(xev.ExperimentRestored(ts=time.time(), id=new_id(), by=by or current_user(), experiment=name))

    def _require(self, name: str) -> ExperimentRecord:
        record = self.by_name(name)
        if record is None:
            raise NotFoundError(f"no experiment {name!r} in {self.layout.root}")
        return record

    def _write(self, event: xev.ExperimentEvent) -> None:
        """An experiment known only by its runs gets its creation written first (with its
        derived ID), so that every meta folder starts with one: a reader needs no run index
        to know its name and ID."""
        folder = self.layout.experiment_meta(event.experiment)
        self.layout.ensure()
        if not isinstance(event, xev.ExperimentCreated) and not (record := self._require(event.experiment)).created:
            first = xev.ExperimentCreated(ts=record.creation_time or time.time(), id=new_id(), by=event.by,
                                          experiment=event.experiment, experiment_id=record.experiment_id)
            write_event_file(folder, first.id, first)
            event = event.model_copy(update={"id": new_id()})  # after the creation, in ID order
        write_event_file(folder, event.id, event)


def _replay(events: list[xev.ExperimentEvent]) -> ExperimentRecord | None:
    """One experiment's state from its events, oldest first; None without a creation."""
    record: ExperimentRecord | None = None
    for event in events:
        if isinstance(event, xev.ExperimentCreated):
            if record is None:  # a second creation (a merge of two clones) changes nothing
                record = ExperimentRecord(name=event.experiment, experiment_id=event.experiment_id,
                                          tags=dict(event.tags), artifact_location=event.artifact_location,
                                          creation_time=event.ts, created=True)
        elif record is None:
            continue
        elif isinstance(event, xev.ExperimentTagSet):
            record.tags[event.key] = event.value
        elif isinstance(event, xev.ExperimentTagDeleted):
            record.tags.pop(event.key, None)
        elif isinstance(event, xev.ExperimentDeleted):
            record.lifecycle_stage = "deleted"
        elif isinstance(event, xev.ExperimentRestored):
            record.lifecycle_stage = "active"
        if record is not None:
            record.last_update_time = id_time(event.id)
    return record
