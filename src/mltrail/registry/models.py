"""The model registry: ``store.registry``.

A registered model is a folder of immutable event files (see
:mod:`mltrail.storage.registry_events`); what it holds now is the replay of those events
in ID order. A version points at one artifact of one run and snapshots the run's
params, final metrics and datasets; aliases (``production``, ``candidate``...) point at
versions, and every move is an event, so :meth:`ModelRegistry.alias_history` can say
which version held an alias at any time, who moved it and why.

Writes that depend on the current state (alias moves, archives) hold the model's lock
while they check and write; registering needs no lock: each version is its own file
with its own ID, so two processes registering at once both succeed.
"""

from __future__ import annotations

import builtins
import posixpath
import time
import warnings
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
from pydantic import ValidationError

from ..config import current_user
from ..errors import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    SkippedLinesWarning,
    StoreCorruptError,
    WrongStateError,
)
from ..query.cells import json_ready
from ..storage import registry_events as ev
from ..storage.blobs import BlobStore
from ..storage.eventfiles import EventFolder, write_event_file
from ..storage.ids import new_id
from ..storage.layout import Layout
from ..storage.locks import held
from ..storage.logged_model_events import ModelFile
from .mlflow_models import MLMODEL, folder_files, load_resolved, mlflow_folder
from .uris import LOGGED_MODEL_URI, RUNS_URI, ResolvedModel, looks_pickled, parse_model_uri

if TYPE_CHECKING:
    from ..tracking.tracker import Tracker

E = TypeVar("E", bound=ev.RegistryEvent)


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model, as the registry says now."""

    model: str
    number: int
    id: str
    run: str | None  # None: registered in MLflow without a run (and imported)
    experiment: str | None
    run_name: str | None
    artifact: str | None  # None: imported from MLflow without its files (``missing`` says why)
    sha256: str | None
    size: int | None
    params: dict[str, str]
    metrics: dict[str, float | None]
    datasets: list[dict[str, Any]]
    description: str | None
    tags: dict[str, str]
    created: float
    by: str | None
    archived: bool
    aliases: tuple[str, ...]
    # registered through MLflow's API: its source URI, logged model and folder's files
    source: str | None = None
    model_id: str | None = None
    files: tuple[ModelFile, ...] = ()
    deleted: bool = False  # deleted through MLflow's API (and so archived)
    updated: float = 0.0  # the last change of its tags or description (its creation if none)
    missing: str | None = None  # why it has no files: imported from MLflow without them

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.number}"

    def main_file(self) -> tuple[str, str]:
        """``(artifact, sha256)`` of the file mltrail loads; a NotFoundError saying why
        when the version has none (imported from MLflow without its files)."""
        if self.artifact is None or self.sha256 is None:
            raise NotFoundError(f"version {self.number} of {self.model!r} was imported from MLflow without its model "
                                f"files, so it cannot be loaded: {self.missing or 'no reason recorded'}. Register "
                                "a version with files, or point the alias at one")
        return self.artifact, self.sha256


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model as the registry says now, with every version (archived and
    deleted ones included), oldest first."""

    name: str
    description: str | None
    tags: dict[str, str]
    created: float
    updated: float  # its last event's time
    by: str | None
    aliases: dict[str, int]  # alias -> version number
    versions: tuple[ModelVersion, ...]


@dataclass
class _ModelState:
    """A model after replaying its events."""

    name: str
    created: ev.ModelCreated
    versions: list[ev.VersionRegistered] = field(default_factory=list)
    archived: dict[str, ev.VersionArchived] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> version ID
    moves: list[tuple[ev.AliasSet | ev.AliasDeleted, str | None]] = field(default_factory=list)  # (event, from ID)
    deleted: set[str] = field(default_factory=set)  # version IDs deleted through MLflow's API
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    updated: float = 0.0  # the last event's time
    version_tags: dict[str, dict[str, str]] = field(default_factory=dict)  # version ID -> tags now
    version_descriptions: dict[str, str | None] = field(default_factory=dict)
    version_updated: dict[str, float] = field(default_factory=dict)

    def number(self, version_id: str) -> int:
        for number, version in enumerate(self.versions, 1):
            if version.id == version_id:
                return number
        raise StoreCorruptError(f"model {self.name!r} refers to a version {version_id} whose file is "
                                "missing or unreadable")

    def version(self, number: int) -> ev.VersionRegistered:
        """Version ``number`` (1-based), or a NotFoundError saying how many there are."""
        if not 1 <= number <= len(self.versions):
            raise NotFoundError(f"model {self.name!r} has no version {number} (it has {len(self.versions)})")
        return self.versions[number - 1]

    def live(self) -> list[ev.VersionRegistered]:
        return [v for v in self.versions if v.id not in self.archived]


def _replay(name: str, events: list[ev.RegistryEvent]) -> _ModelState:
    created = next((e for e in events if isinstance(e, ev.ModelCreated)), None)
    if created is None:
        raise StoreCorruptError(f"model {name!r} has events but no model_created event")
    state = _ModelState(name, created, tags=dict(created.tags), description=created.description, updated=created.ts)
    known = {e.id for e in events if isinstance(e, ev.VersionRegistered)}
    for event in events:
        state.updated = max(state.updated, event.ts)
        if isinstance(event, ev.VersionRegistered):
            state.versions.append(event)
            state.version_tags[event.id] = dict(event.tags)
            state.version_descriptions[event.id] = event.description
            state.version_updated[event.id] = event.ts
        elif isinstance(event, (ev.VersionArchived, ev.AliasSet)) and event.version not in known:
            continue  # its version's file is unreadable (skipped with a warning): nothing to point at
        elif isinstance(event, (ev.TagSet, ev.TagDeleted, ev.DescriptionSet)):
            _edit(state, event, known)
        elif isinstance(event, ev.VersionArchived):
            state.archived.setdefault(event.version, event)
            if event.deleted:
                state.deleted.add(event.version)
                state.version_updated[event.version] = event.ts
        elif isinstance(event, ev.AliasSet):
            state.moves.append((event, state.aliases.get(event.alias)))
            state.aliases[event.alias] = event.version
        elif isinstance(event, ev.AliasDeleted):
            state.moves.append((event, state.aliases.pop(event.alias, None)))
    return state


def _edit(state: _ModelState, event: ev.TagSet | ev.TagDeleted | ev.DescriptionSet, known: set[str]) -> None:
    """A tag or description set later, on the model or on one of its versions."""
    if event.version is not None and event.version not in known:
        return  # its version's file is unreadable: nothing to edit
    if event.version is None:
        tags = state.tags
    else:
        tags = state.version_tags[event.version]
        state.version_updated[event.version] = event.ts
    if isinstance(event, ev.TagSet):
        tags[event.key] = event.value
    elif isinstance(event, ev.TagDeleted):
        tags.pop(event.key, None)
    elif event.version is None:
        state.description = event.description
    else:
        state.version_descriptions[event.version] = event.description


def main_file(paths: list[str]) -> str:
    """The file of a model folder mltrail loads: its pickle (``model.pkl``...), else any
    pickle or joblib file, else its ``MLmodel``, else the first."""
    ordered = sorted(paths, key=lambda p: (p.count("/"), p))
    for preferred in (lambda p: posixpath.basename(p) in MODEL_FILES,
                      lambda p: p.endswith((".pkl", ".joblib", ".pickle")),
                      lambda p: posixpath.basename(p) == "MLmodel"):
        chosen = [p for p in ordered if preferred(p)]
        if chosen:
            return chosen[0]
    if not ordered:
        raise InvalidInputError("a model folder with no files cannot be registered")
    return ordered[0]


MODEL_FILES = ("model.pkl", "model.joblib", "model.pickle")


def _unarchived(state: _ModelState, name: str, number: int, refusal: str) -> ev.VersionRegistered:
    """Version ``number`` of the model; a WrongStateError ending in ``refusal`` if archived."""
    target = state.version(number)
    if target.id in state.archived:
        raise WrongStateError(f"version {number} of {name!r} is {refusal}")
    return target


class ModelRegistry:
    """The store's registered models and their versions and aliases.

    It reads runs (their artifacts, params and metrics) through ``runs``, the store's
    tracking part, and verifies artifacts through ``blobs``."""

    def __init__(self, layout: Layout, blobs: BlobStore, runs: Tracker) -> None:
        self.layout = layout
        self.blobs = blobs
        self.runs = runs
        self.root = layout.root / "registry"
        self._folders: dict[str, EventFolder] = {}

    def exists(self, name: str) -> bool:
        """True when a model of exactly this name is registered."""
        return self._folder(name).is_dir()

    # -- reading ---------------------------------------------------------------------

    def names(self) -> list[str]:
        """The registered models' names, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _folder(self, name: str) -> Path:
        if not isinstance(name, str) or not ev.MODEL_NAME.fullmatch(name):
            raise InvalidInputError(f"model name {name!r} must be letters, digits, '_', '-', '.' "
                                    "(at most 100, starting with a letter or digit)")
        return self.root / name

    def events(self, name: str) -> list[ev.RegistryEvent]:
        """A model's events in ID order (its state is their replay)."""
        folder = self._folder(name)
        if not folder.is_dir():
            similar = [n for n in self.names() if n.lower() == name.lower()]
            hint = f"(did you mean {similar[0]!r}?)" if similar else ""
            raise NotFoundError(f"no model {name!r} in the registry of {self.layout.root}", hint)
        if name not in self._folders:
            self._folders[name] = EventFolder(folder, ev.REGISTRY_EVENT_ADAPTER, "registry")
        return self._folders[name].events()

    def _state(self, name: str) -> _ModelState:
        return _replay(name, self.events(name))

    def _version(self, state: _ModelState, event: ev.VersionRegistered) -> ModelVersion:
        return ModelVersion(
            model=state.name, number=state.number(event.id), id=event.id, run=event.run,
            experiment=event.experiment, run_name=event.run_name, artifact=event.artifact,
            sha256=event.sha256, size=event.size, params=dict(event.params), metrics=dict(event.metrics),
            datasets=list(event.datasets), description=state.version_descriptions.get(event.id, event.description),
            tags=dict(state.version_tags.get(event.id, event.tags)),
            created=event.ts, by=event.by, archived=event.id in state.archived,
            aliases=tuple(sorted(a for a, v in state.aliases.items() if v == event.id)),
            source=event.source, model_id=event.model_id, files=tuple(event.files or ()),
            deleted=event.id in state.deleted, updated=state.version_updated.get(event.id, event.ts),
            missing=event.missing)

    def get(self, name: str, version: int | str | None = None, alias: str | None = None) -> ModelVersion:
        """A version by number, by alias (``latest`` is the newest live version), or the
        newest live version when neither is given."""
        state = self._state(name)
        if version is not None and alias is not None:
            raise InvalidInputError("give a version or an alias, not both")
        if alias is not None and alias.lower() != "latest":
            if alias not in state.aliases:
                known = ", ".join(sorted(state.aliases)) or "none"
                raise NotFoundError(f"model {name!r} has no alias {alias!r} (aliases: {known})")
            return self._version(state, state.versions[state.number(state.aliases[alias]) - 1])
        if version is None or alias is not None:  # latest
            live = state.live()
            if not live:
                raise NotFoundError(f"model {name!r} has no live version")
            return self._version(state, live[-1])
        return self._version(state, state.version(_version_number(version)))

    def model(self, name: str) -> RegisteredModel:
        """The model ``name`` now: its tags, description, aliases and every version."""
        state = self._state(name)
        return RegisteredModel(
            name=name, description=state.description, tags=dict(state.tags), created=state.created.ts,
            updated=state.updated, by=state.created.by,
            aliases={a: state.number(v) for a, v in sorted(state.aliases.items())},
            versions=tuple(self._version(state, v) for v in state.versions))

    def list(self) -> pd.DataFrame:
        """One row per model: description, version counts, the latest version, aliases."""
        rows = []
        for name in self.names():
            try:
                state = self._state(name)
            except StoreCorruptError as exc:  # one unreadable model never hides the others
                warnings.warn(SkippedLinesWarning(f"model {name!r} left out: {exc}"), stacklevel=2)
                continue
            live = state.live()
            rows.append({
                "model": name, "description": state.description,
                "versions": len(state.versions), "live_versions": len(live),
                "latest": state.number(live[-1].id) if live else None,
                "aliases": ", ".join(f"{a}=v{state.number(v)}" for a, v in sorted(state.aliases.items())),
                "created": pd.Timestamp(state.created.ts, unit="s", tz="UTC"),
                "tags": dict(state.tags)})
        columns = ["model", "description", "versions", "live_versions", "latest", "aliases", "created", "tags"]
        return pd.DataFrame(rows, columns=columns)

    def versions(self, name: str) -> pd.DataFrame:
        """One row per version of a model, oldest first."""
        state = self._state(name)
        rows = []
        for event in state.versions:
            v = self._version(state, event)
            rows.append({"version": v.number, "id": v.id, "run": v.run, "run_name": v.run_name,
                         "experiment": v.experiment, "artifact": v.artifact, "sha256": v.sha256,
                         "aliases": ", ".join(v.aliases), "archived": v.archived, "missing": v.missing,
                         "created": pd.Timestamp(v.created, unit="s", tz="UTC"), "by": v.by,
                         "description": v.description,
                         **{f"metrics.{k}": val for k, val in v.metrics.items()}})
        return pd.DataFrame(rows)

    def alias_history(self, name: str, alias: str | None = None) -> pd.DataFrame:
        """Every move of an alias (of every alias when ``alias`` is None), oldest first:
        when, from which version to which, by whom, why, and the A/B experiment that
        decided it for a promotion."""
        state = self._state(name)
        rows = []
        for event, previous in state.moves:
            if alias is not None and event.alias != alias:
                continue
            to = event.version if isinstance(event, ev.AliasSet) else None
            promotion = event.promotion if isinstance(event, ev.AliasSet) else None
            rows.append({
                "time": pd.Timestamp(event.ts, unit="s", tz="UTC"), "alias": event.alias,
                "action": "set" if to else "deleted",
                "from_version": state.number(previous) if previous else None,
                "to_version": state.number(to) if to else None,
                "by": event.by, "reason": event.reason,
                "experiment": (promotion or {}).get("experiment")})
        columns = ["time", "alias", "action", "from_version", "to_version", "by", "reason", "experiment"]
        return pd.DataFrame(rows, columns=columns).astype({"from_version": "Int64", "to_version": "Int64"})

    def alias_at(self, name: str, alias: str, when: Any) -> ModelVersion | None:
        """The version an alias pointed at at a moment: seconds since the epoch, a
        datetime, or a string such as ``"2026-11-17 09:00"`` (naive means UTC)."""
        is_number = isinstance(when, (int, float)) and not isinstance(when, bool)
        moment = pd.Timestamp(when, unit="s", tz="UTC") if is_number else pd.Timestamp(when)
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
        state = self._state(name)
        holder: str | None = None
        for event, _ in state.moves:
            if event.alias != alias or pd.Timestamp(event.ts, unit="s", tz="UTC") > moment:
                continue
            holder = event.version if isinstance(event, ev.AliasSet) else None
        return None if holder is None else self._version(state, state.versions[state.number(holder) - 1])

    # -- writing ---------------------------------------------------------------------

    def create(self, name: str, description: str | None = None, tags: Mapping[str, str] | None = None, *,
               by: str | None = None) -> pd.Series:
        """Create a registered model. Names are unique ignoring case."""
        folder = self._folder(name)
        with self._lock("registry"):
            clash = [n for n in self.names() if n.lower() == name.lower()]
            if clash:
                raise AlreadyExistsError(f"model {clash[0]!r} already exists"
                                        + ("" if clash[0] == name else f" (names are unique ignoring case: {name!r})"))
            event = self._event(ev.ModelCreated, name, by=by, description=description, tags=dict(tags or {}))
            self._write(folder, event)
        return self.list().set_index("model").loc[name]

    def register(self, name: str, run_id: str, artifact: str = "model.pkl", description: str | None = None,
                 tags: Mapping[str, str] | None = None, *, by: str | None = None) -> ModelVersion:
        """A new version from an artifact a run logged: its hash is checked against the
        run's record, and the run's params, final metrics and datasets are snapshotted.
        An MLflow model the run logged (``artifact`` its folder, such as ``"model"``, or a
        file of it) is registered whole: each of its files, as :meth:`register_files` does."""
        self._state(name)  # the model exists
        run = self.runs.get_run(run_id)
        info = run["run"]
        folder = mlflow_folder(artifact, set(run["artifacts"]["path"]))
        if folder is not None:
            return self.register_files(name, info["run_id"], self.run_folder(info["run_id"], folder),
                                       source=f"runs:/{info['run_id']}/{folder}", folder=folder,
                                       description=description, tags=tags, by=by)
        self.runs.artifact_path(info["run_id"], artifact)  # the run has it, and it is here
        recorded = run["artifacts"].set_index("path").loc[artifact]
        path = self.blobs.verified(recorded["sha256"], f"artifact {artifact!r} of run {info['run_id']} "
                                   "(not registered)", in_git=bool(recorded["in_git"]))
        with open(path, "rb") as handle:
            head = handle.read(8)
        if not looks_pickled(head):
            raise InvalidInputError(f"artifact {artifact!r} of run {info['run_id']} is not a pickled model "
                                    f"(it starts with {head!r}) nor part of an MLflow model (a folder with an "
                                    "MLmodel file): register the model file itself, saved with pickle or joblib, "
                                    "or the MLflow model's folder; nothing was registered")
        event = self._event(
            ev.VersionRegistered, name, by=by, run=info["run_id"], experiment=info["experiment"],
            run_name=info.get("run_name"), artifact=artifact, sha256=recorded["sha256"],
            size=int(recorded["size"]), **run_snapshot(run), description=description, tags=dict(tags or {}))
        self._write(self._folder(name), event)
        state = self._state(name)
        return self._version(state, event)

    def register_files(self, name: str, run_id: str, files: builtins.list[ModelFile], *, source: str, folder: str = "",
                       model_id: str | None = None, description: str | None = None,
                       tags: Mapping[str, str] | None = None, by: str | None = None) -> ModelVersion:
        """A new version that is a model folder (MLflow's): ``files`` by their path inside
        it, already in the store's blobs (a run's artifacts under ``folder``, or a logged
        model's files). The file mltrail loads is its pickle, else its ``MLmodel``."""
        self._state(name)  # the model exists
        run = self.runs.get_run(run_id)
        info = run["run"]
        main = main_file([f.path for f in files])
        chosen = next(f for f in files if f.path == main)
        self.blobs.verified(chosen.sha256, f"file {main!r} of {source} (not registered)", in_git=chosen.in_git)
        event = self._event(
            ev.VersionRegistered, name, by=by, run=info["run_id"], experiment=info["experiment"],
            run_name=info.get("run_name"), artifact=posixpath.join(folder, main) if folder else main,
            sha256=chosen.sha256, size=chosen.size, **run_snapshot(run), description=description,
            tags=dict(tags or {}), source=source, model_id=model_id, files=sorted(files, key=lambda f: f.path))
        self._write(self._folder(name), event)
        return self._version(self._state(name), event)

    def run_folder(self, run_id: str, folder: str) -> builtins.list[ModelFile]:
        """The artifacts of a run under ``folder`` (the file itself when it names one), by
        their path inside it: a model folder to :meth:`register_files`."""
        self.runs.experiment_of(run_id)  # the run exists (a NotFoundError names it)
        artifacts = self.runs.artifacts()
        folder = folder.strip("/")
        found = []
        for row in artifacts[artifacts["run_id"] == run_id].to_dict("records"):
            path = row["path"]
            if path == folder:
                inside = posixpath.basename(path)
            elif not folder or path.startswith(folder + "/"):
                inside = path[len(folder) + 1:] if folder else path
            else:
                continue
            found.append(ModelFile(path=inside, sha256=row["sha256"], size=int(row["size"]), in_git=bool(row["in_git"])))
        if not found:
            raise NotFoundError(f"run {run_id} has no artifacts under {folder!r}")
        return found

    def set_tag(self, name: str, key: str, value: str, version: int | str | None = None, *,
                by: str | None = None) -> None:
        """Tag the model, or one of its versions."""
        with self._lock(f"registry-{name}"):
            target = self._edited(name, version)
            self._write(self._folder(name), self._event(ev.TagSet, name, by=by, key=key, value=value, version=target))

    def delete_tag(self, name: str, key: str, version: int | str | None = None, *, by: str | None = None) -> None:
        """Remove a tag of the model, or of one of its versions."""
        with self._lock(f"registry-{name}"):
            target = self._edited(name, version)
            state = self._state(name)
            tags = state.tags if target is None else state.version_tags[target]
            if key not in tags:
                where = f"model {name!r}" if version is None else f"version {version} of {name!r}"
                raise NotFoundError(f"{where} has no tag {key!r}")
            self._write(self._folder(name), self._event(ev.TagDeleted, name, by=by, key=key, version=target))

    def describe(self, name: str, description: str | None, version: int | str | None = None, *,
                 by: str | None = None) -> None:
        """A new description of the model, or of one of its versions."""
        with self._lock(f"registry-{name}"):
            target = self._edited(name, version)
            self._write(self._folder(name), self._event(ev.DescriptionSet, name, by=by, description=description,
                                                        version=target))

    def _edited(self, name: str, version: int | str | None) -> str | None:
        """The ID of the version an edit names (None: the model itself)."""
        state = self._state(name)
        if version is None:
            return None
        target = state.version(_version_number(version))
        if target.id in state.deleted:
            raise NotFoundError(f"version {version} of {name!r} was deleted")
        return target.id

    def delete_version(self, name: str, version: int | str, reason: str | None = None, *,
                       by: str | None = None) -> None:
        """MLflow's delete of a version: its aliases are deleted and it is archived as
        deleted. Its number stays taken (as in MLflow) and its history stays in the store."""
        with self._lock(f"registry-{name}"):
            target = self._edited(name, version)
            state = self._state(name)
            folder = self._folder(name)
            for alias in sorted(a for a, v in state.aliases.items() if v == target):
                self._write(folder, self._event(ev.AliasDeleted, name, by=by, alias=alias, previous=target,
                                                reason=reason or "its version was deleted"))
            self._write(folder, self._event(ev.VersionArchived, name, by=by, version=target, reason=reason,
                                            deleted=True))

    def set_alias(self, name: str, alias: str, version: int | str, reason: str | None = None, *,
                  by: str | None = None, promotion: dict[str, Any] | None = None) -> ModelVersion:
        """Point ``alias`` at a version (moving it if it points elsewhere)."""
        check_alias(alias)
        number = _version_number(version)
        with self._lock(f"registry-{name}"):
            state = self._state(name)
            target = _unarchived(state, name, number, "archived: an alias cannot point at it")
            previous = state.aliases.get(alias)
            if previous == target.id:
                return self._version(state, target)  # already there: nothing to record
            self._write(self._folder(name), self._event(ev.AliasSet, name, by=by, alias=alias, version=target.id,
                                                        previous=previous, reason=reason, promotion=promotion))
        return self.get(name, number)

    def delete_alias(self, name: str, alias: str, reason: str | None = None, *, by: str | None = None) -> None:
        with self._lock(f"registry-{name}"):
            state = self._state(name)
            if alias not in state.aliases:
                raise NotFoundError(f"model {name!r} has no alias {alias!r}")
            self._write(self._folder(name), self._event(ev.AliasDeleted, name, by=by, alias=alias,
                                                        previous=state.aliases[alias], reason=reason))

    def archive(self, name: str, version: int | str, reason: str | None = None, *,
                by: str | None = None) -> ModelVersion:
        """Retire a version: it stays readable, but ``latest`` and new aliases skip it."""
        number = _version_number(version)
        with self._lock(f"registry-{name}"):
            state = self._state(name)
            target = _unarchived(state, name, number, "already archived")
            holding = sorted(a for a, v in state.aliases.items() if v == target.id)
            if holding:
                raise WrongStateError(f"version {number} of {name!r} holds alias(es) {', '.join(holding)}: "
                                    "move or delete them first")
            self._write(self._folder(name), self._event(ev.VersionArchived, name, by=by, version=target.id,
                                                        reason=reason))
        return self.get(name, number)

    # -- loading -------------------------------------------------------------------

    def resolve(self, uri: str) -> ResolvedModel:
        """The artifact file a ``models:/`` or ``runs:/RUN/artifact`` URI names, its
        sha256 checked against the record. An MLflow model (``runs:/RUN/model``, a folder
        with an ``MLmodel``; a file of one; a version registered from one) resolves to every
        file of its folder, each checked."""
        runs = RUNS_URI.fullmatch(uri) if isinstance(uri, str) else None
        logged_model = LOGGED_MODEL_URI.fullmatch(uri) if isinstance(uri, str) else None
        if logged_model is not None:
            return self._logged_model(uri, logged_model["model_id"])
        if runs is not None:
            details = self._run_details(runs["run"])
            run_id, artifact = details["run"]["run_id"], runs["artifact"]
            logged = artifact_files(details["artifacts"])
            folder = mlflow_folder(artifact, logged)
            if folder is not None:  # the folder's MLmodel stands for it
                main = logged[posixpath.join(folder, MLMODEL) if folder else MLMODEL]
                return self._resolved(uri, run_id, artifact, main.sha256, main.in_git, None,
                                      folder_files(folder, logged.values()))
            if artifact not in logged:
                raise NotFoundError(f"run {run_id} has no artifact {artifact!r}")
            return self._resolved(uri, run_id, artifact, logged[artifact].sha256, logged[artifact].in_git, None, [])
        name, number, alias = parse_model_uri(uri)
        version = self.get(name, number, alias)
        artifact, sha256 = version.main_file()  # says why a version imported without its files cannot load
        if version.files:  # a folder registered whole (its files may be a logged model's, not the run's)
            files = list(version.files) if any(f.path == MLMODEL for f in version.files) else []
            return self._resolved(uri, version.run, artifact, sha256, None, version, files)
        # registered from one file: of an MLflow model's folder (imported from MLflow, its MLmodel
        # or pickle), whose other files are then the run's artifacts beside it?
        beside = self._version_run_artifacts(version)
        if beside is None:  # the run is not readable here (a server's user may read the model only)
            if posixpath.basename(artifact) == MLMODEL:
                raise NotFoundError(f"{uri} is an MLflow model whose files are artifacts of run {version.run}, "
                                    "which you may not read here")
            return self._resolved(uri, version.run, artifact, sha256, None, version, [])
        if artifact not in beside:
            raise NotFoundError(f"run {version.run} has no artifact {artifact!r} (the file of {uri})")
        folder = mlflow_folder(artifact, beside)
        files = [] if folder is None else folder_files(folder, beside.values())
        return self._resolved(uri, version.run, artifact, sha256, beside[artifact].in_git, version, files)

    def _resolved(self, uri: str, run_id: str | None, artifact: str, sha256: str, in_git: bool | None,
                  version: ModelVersion | None, files: builtins.list[ModelFile]) -> ResolvedModel:
        """The main file and the folder's ``files``, each fetched (against a server) and checked."""
        verified = {f.path: self._blob(f.sha256, f"file {f.path!r} of {uri}", f.in_git) for f in files}
        return ResolvedModel(uri, self._blob(sha256, uri, in_git), sha256, run_id, artifact, version, verified)

    def _run_details(self, run: str) -> dict[str, Any]:
        """A run's info and artifacts (``tracker.get_run``'s answer)."""
        return self.runs.get_run(run)

    def _version_run_artifacts(self, version: ModelVersion) -> dict[str, ModelFile] | None:
        """The artifacts of a version's run, by path (None: the run cannot be read here)."""
        if version.run is None:  # a version made without a run (its logged model's files are its own)
            return None
        artifacts = self.runs.artifacts()
        return artifact_files(artifacts[artifacts["run_id"] == version.run])

    def _blob(self, sha256: str, what: str, in_git: bool | None) -> Path:
        """A blob's file, checked against its sha256."""
        return self.blobs.verified(sha256, what, in_git)

    def _logged_model(self, uri: str, model_id: str) -> ResolvedModel:
        """A logged model's main file (its pickle, else its ``MLmodel``), as MLflow 3 reads
        ``models:/m-<ID>``."""
        record = self.runs.logged_models.get(model_id)
        if not record.files:
            raise NotFoundError(f"{uri}: logged model {model_id} ({record.name!r}) has no files (status "
                                f"{record.status}): nothing to load")
        if MLMODEL in record.files:  # an MLflow model folder: every file, its MLmodel stands for it
            main = record.files[MLMODEL]
            return self._resolved(uri, record.source_run_id, MLMODEL, main.sha256, main.in_git, None,
                                  list(record.files.values()))
        found = record.files[main_file(list(record.files))]
        return self._resolved(uri, record.source_run_id, found.path, found.sha256, found.in_git, None, [])

    def load(self, uri: str) -> Any:
        """The model a URI names (every file hash verified first): the object pickled in its
        file, or an MLflow model's (its library's own model for scikit-learn, XGBoost and
        LightGBM; see :mod:`.mlflow_models`). Unpickling runs code from the file: load only
        from a store you trust."""
        return load_resolved(self.resolve(uri))

    # -- files -----------------------------------------------------------------------

    def _event(self, model: type[E], name: str, **fields: Any) -> E:
        try:
            fields["by"] = fields.get("by") or current_user()
            return model(ts=time.time(), model=name, id=new_id(), **fields)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InvalidInputError(f"invalid {model.__name__} event: {problems}") from None

    def _write(self, folder: Path, event: ev.RegistryEvent) -> None:
        write_event_file(folder, event.id, event)

    def _lock(self, name: str) -> AbstractContextManager[None]:
        return held(self.layout.lock_file(name), "the registry" if name == "registry" else
                    f"model {name.removeprefix('registry-')!r}")


def run_snapshot(run: dict[str, Any]) -> dict[str, Any]:
    """What a version keeps of its run (``tracker.get_run``'s answer): params, final
    metrics, datasets."""
    return {
        "params": {r["key"]: r["value"] for r in run["params"].to_dict("records")},
        "metrics": {r["key"]: (None if pd.isna(r["value"]) else float(r["value"]))
                    for r in run["metrics"].to_dict("records")},
        "datasets": [{k: json_ready(d.get(k)) for k in ("name", "path", "sha256", "rows", "context")}
                     for d in run["datasets"].to_dict("records")]}


def artifact_files(artifacts: pd.DataFrame) -> dict[str, ModelFile]:
    """A run's artifacts table (``get_run``'s) as its files by path."""
    return {r["path"]: ModelFile(path=r["path"], sha256=r["sha256"], size=int(r["size"]), in_git=bool(r["in_git"]))
            for r in artifacts.to_dict("records")}


def check_alias(alias: str) -> None:
    if not isinstance(alias, str) or not ev.ALIAS_NAME.fullmatch(alias):
        raise InvalidInputError(f"alias {alias!r} must be letters, digits, '_' or '-' (1 to 100)")
    if ev.RESERVED_ALIAS.fullmatch(alias):
        raise InvalidInputError(f"alias {alias!r} is reserved: 'latest' is always the newest live version "
                                "and 'v<N>' names version N")


def _version_number(version: int | str) -> int:
    text = str(version)
    text = text[1:] if text[:1] in ("v", "V") else text
    if isinstance(version, bool) or not text.isdigit():
        raise InvalidInputError(f"a version is a number (3 or 'v3'), not {version!r}")
    return int(text)
