"""``mltrail import mlflow``: an MLflow tracking store's experiments, runs and registered
models written as mltrail events, once.

Each MLflow run becomes one run file whose ID is derived from the MLflow run (its start
time and a hash of its ID, :func:`mltrail.storage.ids.id_at`), so importing again, or
from another clone of the same ``mlruns``, finds the run it wrote before and appends only
what is new: metric points logged since, tags changed, the end of a run that was running.
Events keep MLflow's times (a point's timestamp, the run's start and end), and MLflow's
IDs stay as tags (``mlflow.run_id``, ``mlflow.experiment_id``) beside every tag MLflow
had, so a filter written for MLflow (``tags.mlflow.runName = 'x'``) still finds the run.
A run keeps its name as MLflow had it, even where other runs share it (a grid search's
folds): names are data (:mod:`mltrail.storage.naming`).

A run is read whole before anything is written; a new run's file appears at once (written
aside, then renamed) and an imported run's new lines are one append, after the blobs they
name. What cannot be read is reported by path in the summary and skipped.

MLflow 3's logged models come with their IDs (``models:/m-<ID>`` still names them), their
params, tags, metrics, files and the runs that made them, as event files whose IDs derive
from what they say: importing again writes only what changed in MLflow since.

Every registered version keeps its MLflow number (a deployed ``models:/churn/3`` must name
the same model after the move): a version whose files cannot be imported (its source is
outside the MLflow store, or was deleted there) is imported without them, saying why, and a
version deleted in MLflow is imported as a deleted version, so that the later ones are not
renumbered.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict  # (pydantic reads typing's only from Python 3.12)

from ..errors import InvalidInputError, MltrailError, NotFoundError
from ..registry.models import ModelRegistry, main_file, run_snapshot
from ..registry.uris import LOGGED_MODEL_URI
from ..storage import events as ev
from ..storage import logged_model_events as lme
from ..storage import registry_events as rev
from ..storage.atomic import Staged, commit, stage, write_atomic
from ..storage.eventfiles import write_event_file
from ..storage.eventlog import EventWriter, events_to_lines, read_events
from ..storage.ids import id_at
from ..storage.naming import IMPORTED_ID_TAG
from ..storage.run_edits import NAME_TAG, RunDeleted
from ..tracking.logged_models import LoggedModelRecord
from ..tracking.run import PARENT_TAG
from .metric_lines import PointKey, metric_lines, shifted
from .mlflow_reader import read_ahead
from .mlflow_source import (
    NOTE_TAG,
    KnownRun,
    MlflowSource,
    ModelPoint,
    Point,
    RunContent,
    RunIdentity,
    Snapshot,
    SourceArtifact,
    SourceError,
    SourceExperiment,
    SourceLoggedModel,
    SourceModel,
    SourceRun,
    SourceVersion,
    scratch_folder,
)

if TYPE_CHECKING:
    from ..tracking.tracker import Tracker

RUN_ID_TAG = IMPORTED_ID_TAG  # MLflow's IDs, kept on the imported run (which keeps its name as MLflow had it)
EXPERIMENT_ID_TAG = "mlflow.experiment_id"
EXPERIMENT_TAG_PREFIX = "mlflow.experiment.tag."  # an MLflow experiment's tags, on each of its runs
VERSION_TAG = "mlflow.version"  # on an imported model version: its number in MLflow
ALIAS_REASON = "imported from MLflow"
DELETED_IN_MLFLOW = "deleted in MLflow, where its number stays taken"
_FINISHED = ("FINISHED", "FAILED", "KILLED")
_MODEL_FILES = ("model.pkl", "model.joblib", "model.pickle")

Progress = Callable[[int, int], None]


@dataclass
class Skipped:
    what: str  # "run", "experiment", "model version", ...
    where: str  # the path or URI that names it
    reason: str


@dataclass
class ImportSummary:
    """What an import did, and what it left out and why."""

    source: str
    experiments: int = 0
    runs_new: int = 0
    runs_updated: int = 0  # imported before, with something new since
    runs_unchanged: int = 0
    points: int = 0
    artifacts: int = 0
    logged_models_new: int = 0
    logged_models_updated: int = 0
    models_new: int = 0
    versions_new: int = 0
    versions_without_files: int = 0  # of versions_new: deleted in MLflow, or their files not in the source
    aliases_set: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # imported, with something left out

    def text(self) -> str:
        lines = [f"Imported from {self.source}: {self.runs_new} new runs, {self.runs_updated} updated, "
                 f"{self.runs_unchanged} unchanged, in {self.experiments} experiments; {self.points:,} metric "
                 f"points, {self.artifacts} artifacts; {self.logged_models_new} logged models new, "
                 f"{self.logged_models_updated} updated; {self.models_new} models, {self.versions_new} versions"
                 f"{f' ({self.versions_without_files} without their files)' if self.versions_without_files else ''}, "
                 f"{self.aliases_set} aliases set."]
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"skipped {s.what} {s.where}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["skipped"] = [dict(s.__dict__) for s in self.skipped]
        return data


def mltrail_run_id(run: SourceRun) -> str:
    """The mltrail ID of an MLflow run: the same on every import, ordered by start time."""
    return id_at(run.start_ms or run.end_ms or 0, f"mlflow-run:{run.id}")


class MlflowImport:
    """One import of ``source`` into a store's tracking part and registry."""

    def __init__(self, tracker: Tracker, registry: ModelRegistry, source: MlflowSource,
                 experiments: Sequence[str] | None = None, include_deleted: bool = False,
                 progress: Progress | None = None) -> None:
        self.tracker = tracker
        self.registry = registry
        self.source = source
        self.wanted = None if experiments is None else list(experiments)
        self.include_deleted = include_deleted
        self.progress = progress
        self.summary = ImportSummary(source.description)
        self.run_ids: dict[str, str] = {}  # MLflow run ID -> mltrail run ID, of runs the source holds
        self.imported: list[SourceExperiment] = []  # the experiments with runs to import
        self.outputs: dict[str, dict[str, int]] = {}  # logged model ID -> {mltrail run ID: step}: the runs that made it
        cache = self.tracker.layout.cache / "mlflow-import"
        self.stamps = _Cached(cache / "stamps.json")  # artifact stamp -> sha256
        self.known = _Cached(cache / "runs.json", _RECORDS)  # run folder -> what the last import read and wrote of it
        self.seen: set[str] = set()  # the runs this import found (their ``where``)
        self.finished = self.total = 0  # runs done (in the store, or skipped), of all to import
        self.run_files: dict[str, Path] = {}  # run ID -> its file, of runs the store had before this import

    def run(self) -> ImportSummary:
        runs = self._runs_to_import()
        self.tracker.layout.ensure()
        with self.stamps, self.known, scratch_folder(self.tracker.layout.cache / "staging") as scratch:
            with _Writes(self._not_written) as self.writes:
                self._import_runs(runs, Path(scratch))
            self._import_logged_models(Path(scratch))
            self._forget_runs_gone()
        self._import_models()
        return self.summary

    def _import_runs(self, runs: list[tuple[SourceExperiment, SourceRun]], scratch: Path) -> None:
        self.total = len(runs)
        # the runs this store has, listed once (an MLflow run is one file, written once an import)
        self.run_files = {path.stem: path for path in self.tracker.layout.experiments.glob("*/runs/*.jsonl")}
        to_read = [(experiment, run) for experiment, run in runs
                   if not (run.unchanged and self._still_imported(experiment, run, self.run_ids[run.id]))]
        ids = [self.run_ids[run.id] for _, run in to_read]
        new_ids = [run_id if run_id not in self.run_files else None for run_id in ids]
        contents = read_ahead(self.source, [run for _, run in to_read], scratch, new_ids)
        for (experiment, run), content in zip(to_read, contents, strict=True):
            try:
                if isinstance(content, SourceError):
                    raise content
                self._import_run(experiment, run, content)  # tells _finished, now or once its file is written
            except SourceError as exc:
                self.summary.skipped.append(Skipped("run", exc.path, exc.reason))
                self._finished()
            except (MltrailError, ValidationError, OSError) as exc:
                self.summary.skipped.append(Skipped("run", run.where, _reason(exc)))
                self._finished()

    def _finished(self) -> None:
        """One more run in the store (or skipped): progress counts what is done, not begun."""
        self.finished += 1
        if self.progress is not None:
            self.progress(self.finished, self.total)

    def _not_written(self, where: str, exc: Exception) -> None:
        """A run whose new file could not be written, or what follows it (its deletion) done."""
        self.summary.skipped.append(Skipped("run", where, _reason(exc)))
        self._finished()

    # -- runs ------------------------------------------------------------------------

    def _runs_to_import(self) -> list[tuple[SourceExperiment, SourceRun]]:
        experiments = []
        for item in self.source.experiments(self.include_deleted):
            if isinstance(item, SourceError):
                self.summary.skipped.append(Skipped("experiment", item.path, item.reason))
            elif self.wanted is None or item.name in self.wanted:
                experiments.append(item)
        if self.wanted is not None:
            missing = sorted(set(self.wanted) - {e.name for e in experiments})
            if missing:
                names = ", ".join(sorted(e.name for e in self.source.experiments(self.include_deleted)
                                         if not isinstance(e, SourceError)))
                raise NotFoundError(f"no experiment {', '.join(map(repr, missing))} in {self.source.description} "
                                    f"(it has: {names or 'none'}); nothing was imported")
        runs: list[tuple[SourceExperiment, SourceRun]] = []
        known = {where: KnownRun(record["run"], Snapshot(record["paths"], record["digest"]))
                 for where, record in self.known.items()}
        for experiment in experiments:
            found = 0
            for entry in self.source.runs(experiment, self.include_deleted, known):
                if isinstance(entry, SourceError):
                    self.summary.skipped.append(Skipped("run", entry.path, entry.reason))
                    continue
                runs.append((experiment, entry))
                self.run_ids[entry.id] = mltrail_run_id(entry)
                self.seen.add(entry.where)
                found += 1
            if found:
                self.summary.experiments += 1
                self.imported.append(experiment)
            else:
                self.summary.skipped.append(Skipped("experiment", experiment.where,
                                                    f"{experiment.name!r} has no runs to import"))
        return runs

    def _import_run(self, experiment: SourceExperiment, run: SourceRun, content: RunContent) -> None:
        """Write what ``content`` (read whole before anything is written) adds to the store."""
        run_id = self.run_ids[run.id]
        path = self.run_files.get(run_id)
        state = _FileState.read(path) if path is not None else _FileState()
        writer = _RunLines(run_id, state.last_seq)
        start = (run.start_ms or run.end_ms or 0) / 1000
        tags = self._tags(experiment, run, content)
        if path is None:
            writer.add(ev.RunStarted(ts=start, run=run_id, experiment=experiment.name,
                                     experiment_description=experiment.description,
                                     name=run.name or content.tags.get("mlflow.runName"),
                                     description=content.tags.get(NOTE_TAG), tags=tags))
            self._provenance(writer, run, content, start)
        else:
            if run.name and (run.name != state.started_name or NAME_TAG in state.tags):
                tags[NAME_TAG] = run.name  # renamed in MLflow since (or back): mltrail's rename
            changed = {k: v for k, v in tags.items() if state.tags.get(k) != v}
            if changed:
                writer.add(ev.Tags(ts=time.time(), run=run_id, tags=changed))
            for key in sorted(set(state.tags) - set(tags)):
                writer.add(ev.TagDeleted(ts=time.time(), run=run_id, key=key))
        params = {k: v for k, v in content.params.items() if state.params.get(k) != v}
        if params:
            writer.add(ev.Params(ts=start, run=run_id, params=params))
        for dataset in content.datasets:
            event = _dataset_event(run_id, start, dataset)
            if (event.name, event.sha256) not in state.datasets:
                writer.add(event)
        if content.metric_lines is None:
            points = writer.add_points(content.metrics, state.points)
        elif path is None:  # (built by a reader for a run new to the store, as asked)
            points = writer.add_metric_lines(*content.metric_lines)
        else:
            raise MltrailError(f"run {run.where}: its points were read for a new run, and the store has it")
        end = (run.end_ms or run.start_ms or 0) / 1000
        artifacts = 0
        for artifact in content.artifacts:
            sha256, size, in_git = self._blob(artifact)  # the blob first, then the line naming it
            if state.artifacts.get(artifact.name) != sha256:
                writer.add(ev.Artifact(ts=end, run=run_id, path=artifact.name, sha256=sha256, size=size, in_git=in_git))
                artifacts += 1
        if run.status in _FINISHED and (state.status, state.ended) != (run.status, end):
            if state.status in _FINISHED:  # resumed in MLflow and ended again since
                writer.add(ev.RunResumed(ts=end, run=run_id))
            # (run.status is one of _FINISHED here, but `in` does not narrow a str to RunFinished's Literal)
            writer.add(ev.RunFinished(ts=end, run=run_id, status=run.status))  # type: ignore[arg-type]
        elif run.status not in _FINISHED and state.status in _FINISHED:
            writer.add(ev.RunResumed(ts=time.time(), run=run_id))
        target = self.tracker.layout.run_file(experiment.name, run_id)

        def done(written: list[int] | None) -> None:  # once the run's lines are in the store; their file's stat
            if path is None:
                self.summary.runs_new += 1
            self.summary.points += points
            self.summary.artifacts += artifacts
            self._said(run, run_id, content.notes, [(str(e.path), e.reason) for e in content.refused],
                       content.outputs)
            if run.deleted:
                self._mark_deleted(run, run_id)
            self._remember(experiment, run, run_id, content, path or target, written)
            self._finished()

        self.known.pop(run.where, None)
        if path is None:
            self.writes.submit(target, writer.bytes(), done, run.where)  # the whole run appears at once
            return
        if writer.lines:
            appender = EventWriter(path)
            try:
                appender.append(writer.bytes())
            finally:
                appender.close()
            os.utime(path.parent)  # compaction re-lists a folder whose files all ended only when it changes
            self.summary.runs_updated += 1
        else:
            self.summary.runs_unchanged += 1
        done(_file_stat(path))

    def _remember(self, experiment: SourceExperiment, run: SourceRun, run_id: str, content: RunContent,
                  file: Path, written: list[int] | None) -> None:
        """Keep what the next import needs to know the run unchanged without reading it
        (``written``: its run file's stat, now)."""
        if content.snapshot is None or written is None:
            return
        parent = content.tags.get("mlflow.parentRunId")
        self.known[run.where] = {
            "run": run.identity(), "paths": content.snapshot.paths, "digest": content.snapshot.digest, "id": run_id,
            "file": [os.path.relpath(file, self.tracker.layout.root), *written],
            "context": self._context(experiment, parent), "parent": parent, "notes": content.notes,
            "refused": [[str(e.path), e.reason] for e in content.refused], "outputs": content.outputs}

    def _said(self, run: SourceRun, run_id: str, notes: list[str], refused: list[tuple[str, str]],
              outputs: dict[str, int]) -> None:
        """What an import of the run tells, whether it read it or knew it unchanged."""
        self.summary.notes += [f"run {run.where}: {note}" for note in notes]
        self.summary.skipped += [Skipped("file", path, reason) for path, reason in refused]
        for model_id, step in outputs.items():
            self.outputs.setdefault(model_id, {})[run_id] = step

    def _context(self, experiment: SourceExperiment, parent: str | None) -> str:
        """A digest of what a run's events take from outside its folder: its experiment's
        ID, name and tags (each run carries them) and the mltrail ID of its parent."""
        text = json.dumps([experiment.id, experiment.name, experiment.tags, self.run_ids.get(parent or "")],
                          sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def _still_imported(self, experiment: SourceExperiment, run: SourceRun, run_id: str) -> bool:
        """True when the source's files of ``run`` are as the last import read them (its
        snapshot holds), what it takes from outside them too, and the run file this store
        has is the one that import left: the run needs no read, and nothing is written."""
        record = self.known.get(run.where)
        if record is None or record["id"] != run_id or record["context"] != self._context(experiment, record["parent"]):
            return False
        relative, *stat = record["file"]
        if _file_stat(self.tracker.layout.root / relative) != stat:  # appended to since, or gone
            return False
        self.summary.runs_unchanged += 1
        self._said(run, run_id, record["notes"], [tuple(pair) for pair in record["refused"]], record["outputs"])
        self._finished()
        return True

    def _forget_runs_gone(self) -> None:
        """Drop what is known of runs no longer in the experiments this import read."""
        folders = tuple(experiment.where.rstrip(os.sep) + os.sep for experiment in self.imported)
        for where in [w for w in self.known if w.startswith(folders) and w not in self.seen]:
            del self.known[where]

    def _blob(self, artifact: SourceArtifact) -> tuple[str, int, bool]:
        """``(sha256, size, in_git)`` of an artifact, its blob in the store: from the stamps of
        earlier imports when its stamp is known and its blob here (no read, no download),
        else fetched and copied in."""
        sha256 = self.stamps.get(artifact.stamp) if artifact.stamp is not None else None
        if sha256 is not None and artifact.size is not None:
            for in_git in (True, False):
                if self.tracker.layout.blob_path(sha256, large=not in_git).exists():
                    return sha256, artifact.size, in_git
        sha256, size, in_git = self.tracker.blobs.put_file(artifact.fetch())
        if artifact.stamp is not None:
            self.stamps[artifact.stamp] = sha256
        return sha256, size, in_git

    def _tags(self, experiment: SourceExperiment, run: SourceRun, content: RunContent) -> dict[str, str]:
        tags = dict(content.tags)
        tags[RUN_ID_TAG] = run.id
        tags[EXPERIMENT_ID_TAG] = experiment.id
        for key, value in experiment.tags.items():
            if key != NOTE_TAG:  # the experiment's description goes to its own field
                tags[EXPERIMENT_TAG_PREFIX + key] = value
        parent = self.run_ids.get(content.tags.get("mlflow.parentRunId", ""))
        if parent is not None:
            tags[PARENT_TAG] = parent
        return tags

    def _provenance(self, writer: _RunLines, run: SourceRun, content: RunContent, start: float) -> None:
        """What MLflow knew of the code and the machine, in mltrail's own events."""
        tags = content.tags
        if run.user or tags.get("mlflow.source.name"):
            writer.add(ev.Environment(ts=start, run=writer.run_id, user=run.user, script=tags.get("mlflow.source.name")))
        if tags.get("mlflow.source.git.commit"):
            writer.add(ev.GitInfo(ts=start, run=writer.run_id, commit=tags["mlflow.source.git.commit"],
                                  branch=tags.get("mlflow.source.git.branch"), remote=tags.get("mlflow.source.git.repoURL")))

    def _mark_deleted(self, run: SourceRun, run_id: str) -> None:
        when = (run.end_ms or run.start_ms or 0)
        edit = RunDeleted(ts=when / 1000, id=id_at(when, f"mlflow-deleted:{run.id}"), by=run.user, run=run_id)
        self.tracker.curation.import_edit(edit)

    # -- logged models (MLflow 3) ------------------------------------------------------

    def _import_logged_models(self, scratch: Path) -> None:
        for experiment in self.imported:
            for model in self.source.logged_models(experiment, self.include_deleted):
                if isinstance(model, SourceError):
                    self.summary.skipped.append(Skipped("logged model", model.path, model.reason))
                    continue
                try:
                    self._import_logged_model(experiment, model, scratch)
                except SourceError as exc:
                    self.summary.skipped.append(Skipped("logged model", exc.path, exc.reason))
                except (MltrailError, ValidationError, OSError) as exc:
                    self.summary.skipped.append(Skipped("logged model", model.where, _reason(exc)))

    def _import_logged_model(self, experiment: SourceExperiment, model: SourceLoggedModel, scratch: Path) -> None:
        """The model's events that its folder here does not hold yet: all of them the first
        time; what changed in MLflow since on an import again (read whole first, its files
        copied in before the line that names them)."""
        if not re.fullmatch(lme.MODEL_ID, model.id):
            raise InvalidInputError(f"its ID {model.id!r} is not MLflow's form of a logged model's ID "
                                    "(m- and 32 hex digits)")
        artifacts, refused = model.files(scratch / model.id)
        files = []
        for artifact in artifacts:
            sha256, size, in_git = self._blob(artifact)
            files.append(lme.ModelFile(path=artifact.name, sha256=sha256, size=size, in_git=in_git))
        try:
            held: LoggedModelRecord | None = self.tracker.logged_models.get(model.id, deleted=True)
        except NotFoundError:
            held = None
        if held is not None and held.experiment != experiment.name:
            raise InvalidInputError(f"mltrail holds logged model {model.id} in experiment {held.experiment!r}, "
                                    f"not {experiment.name!r}")
        run_id = self.run_ids.get(model.run_id or "")
        events = _LoggedModelLines(model, experiment.name, run_id, held).events(
            files, [self._model_metric(p) for p in model.metrics], self.outputs.get(model.id, {}))
        written = self.tracker.logged_models.write_imported(experiment.name, events)
        if written:
            if held is None:
                self.summary.logged_models_new += 1
            else:
                self.summary.logged_models_updated += 1
        self.summary.skipped += [Skipped("file", error.path, error.reason) for error in refused]
        if model.run_id and run_id is None:
            self.summary.notes.append(f"logged model {model.where}: its run {model.run_id} was not imported "
                                      "(deleted, or in an experiment left out): it has no source run here")

    def _model_metric(self, point: ModelPoint) -> tuple[str | None, lme.ModelMetric]:
        """A point of the model as mltrail keeps it, with the mltrail run that logged it."""
        value = point.point.value
        nonfinite = ev.nonfinite_name(value)
        return self.run_ids.get(point.run_id or ""), lme.ModelMetric.model_validate({
            "key": point.key, "value": None if nonfinite else value, "nonfinite": nonfinite,
            "step": point.point.step, "timestamp": point.point.timestamp_ms / 1000,
            "dataset_name": point.dataset_name, "dataset_digest": point.dataset_digest})

    # -- registered models -----------------------------------------------------------

    def _import_models(self) -> None:
        compacted = False
        for model in self.source.models():
            if isinstance(model, SourceError):
                self.summary.skipped.append(Skipped("model", model.path, model.reason))
                continue
            if not rev.MODEL_NAME.fullmatch(model.name):
                self.summary.skipped.append(Skipped("model", model.where, f"the name {model.name!r} is not a folder "
                                                    "name mltrail allows (letters, digits, '_', '-', '.')"))
                continue
            clash = [n for n in self.registry.names() if n.lower() == model.name.lower() and n != model.name]
            if clash:
                self.summary.skipped.append(Skipped("model", model.where, f"mltrail has model {clash[0]!r} "
                                                    "(names are unique ignoring case)"))
                continue
            self.summary.skipped += [Skipped("model version", broken.path, broken.reason) for broken in model.broken]
            if not compacted:  # the versions snapshot their runs' params and metrics
                self.tracker.compact()
                compacted = True
            self._import_model(model)

    def _import_model(self, model: SourceModel) -> None:
        folder = self.registry.root / model.name
        if not folder.is_dir():
            created = model.created_ms or 0
            write_event_file(folder, id_at(created, f"mlflow-model:{model.name}"), rev.ModelCreated(
                ts=created / 1000, id=id_at(created, f"mlflow-model:{model.name}"), by=None, model=model.name,
                description=model.description, tags=dict(model.tags)))
            self.summary.models_new += 1
        held = {e.tags.get(VERSION_TAG): e.id for e in self.registry.events(model.name)
                if isinstance(e, rev.VersionRegistered)}  # imported before, by MLflow's number
        version_ids: dict[int, str] = {}
        for number, version, id_ms in _numbered(model.versions):
            where = f"{model.where} version {number}"
            if str(number) in held:
                version_ids[number] = held[str(number)]
                continue
            version_id = id_at(id_ms, f"mlflow-version:{model.name}:{number}")
            try:
                registered, archived = self._version_events(model.name, number, version, version_id, id_ms)
            except (MltrailError, ValidationError) as exc:
                self.summary.skipped.append(Skipped("model version", where, _reason(exc)))
                continue
            for event in (registered, *archived):
                write_event_file(folder, event.id, event)
            version_ids[number] = version_id
            self.summary.versions_new += 1
            missing = registered.missing
            if missing is not None:
                self.summary.versions_without_files += 1
                if missing != DELETED_IN_MLFLOW:
                    self.summary.notes.append(f"model version {where} imported without its files: {missing}")
        self._check_numbers(model.name, version_ids)
        if model.aliases:
            self._import_aliases(model, version_ids)

    def _check_numbers(self, name: str, version_ids: dict[int, str]) -> None:
        """Say so when a version's number here is not its number in MLflow: the model held
        versions registered in mltrail before the import (numbers follow registration)."""
        numbers = {v.id: v.number for v in self.registry.model(name).versions}
        for number, version_id in sorted(version_ids.items()):
            if numbers.get(version_id, number) != number:
                self.summary.notes.append(f"version {number} of {name!r} in MLflow is version {numbers[version_id]} "
                                          "in mltrail: the model held versions registered here before the import")

    def _version_events(self, name: str, number: int, version: SourceVersion | None, version_id: str,
                        id_ms: int) -> tuple[rev.VersionRegistered, list[rev.VersionArchived]]:
        """A version's registration: with its files, or saying why it has none (and, deleted
        in MLflow, archived as deleted), so that its number stays taken here too."""
        if version is None or version.deleted:
            ts = (version.created_ms if version is not None and version.created_ms is not None else id_ms) / 1000
            tags = {VERSION_TAG: str(number)}
            return (rev.VersionRegistered(ts=ts, id=version_id, model=name, missing=DELETED_IN_MLFLOW, tags=tags),
                    [rev.VersionArchived(ts=ts, id=id_at(id_ms, f"mlflow-version-deleted:{name}:{number}"),
                                         model=name, version=version_id, reason=DELETED_IN_MLFLOW, deleted=True)])
        tags = {**version.tags, VERSION_TAG: str(number)}
        if version.source:
            tags["mlflow.source"] = version.source
        if version.stage not in (None, "None"):
            tags["mlflow.current_stage"] = version.stage  # MLflow 2's stages; aliases replaced them
        fields = self._version_files(version)
        details = self._run_details(fields.get("run"))
        if details is not None:
            info = details["run"]
            fields |= {"experiment": info["experiment"], "run_name": info.get("run_name"), **run_snapshot(details)}
        return rev.VersionRegistered(ts=(version.created_ms or id_ms) / 1000, id=version_id, by=version.user,
                                     model=name, description=version.description, tags=tags, **fields), []

    def _run_details(self, run_id: str | None) -> dict[str, Any] | None:
        if run_id is None:
            return None
        try:
            return self.tracker.get_run(run_id)
        except NotFoundError:
            return None

    def _version_files(self, version: SourceVersion) -> dict[str, Any]:
        """What a version's event says of its files and its run: its logged model's files
        (MLflow 3), the file of its run's artifacts its source names (MLflow 2), or why it
        has none (``missing``)."""
        run_id = self.run_ids.get(version.run_id or "")
        if version.unreadable is not None:
            return {"missing": f"its record in MLflow cannot be read ({version.unreadable.path}: "
                               f"{version.unreadable.reason})"}
        source = version.source or ""
        logged = LOGGED_MODEL_URI.fullmatch(source)
        model_id = version.model_id or (logged["model_id"] if logged else None)
        if model_id is not None:
            return self._logged_model_files(version, model_id, run_id)
        if not version.run_id:
            return {"source": version.source,
                    "missing": f"its source {source or '(none)'} is no file of {self.source.description} (MLflow "
                               "registered it without a run; mltrail imports a version's files from its run or its "
                               "logged model)"}
        details = self._run_details(run_id)
        if details is None:
            return {"source": version.source,
                    "missing": f"its source run {version.run_id} was not imported (deleted, or in an experiment left "
                               f"out); its source: {source or '(none)'}"}
        artifacts = list(details["artifacts"]["path"])
        artifact = _model_artifact(source, version.run_id, artifacts)
        if artifact is None:
            return {"run": run_id, "source": version.source,
                    "missing": f"its source {source or '(none)'} names no file of its run's artifacts in "
                               f"{self.source.description} (deleted there, or kept elsewhere)"}
        recorded = details["artifacts"].set_index("path").loc[artifact]
        return {"run": run_id, "artifact": artifact, "sha256": recorded["sha256"], "size": int(recorded["size"])}

    def _logged_model_files(self, version: SourceVersion, model_id: str, run_id: str | None) -> dict[str, Any]:
        source = version.source or f"models:/{model_id}"
        try:
            record = self.tracker.logged_models.get(model_id, deleted=True)
        except NotFoundError:
            why = next((f"{s.where}: {s.reason}" for s in self.summary.skipped  # (its folder, or its URI, names it)
                        if s.what == "logged model" and model_id in s.where),
                       "deleted in MLflow, or in an experiment left out")
            return {"run": run_id, "source": source,
                    "missing": f"its source {source} is a logged model that was not imported ({why})"}
        run_id = record.source_run_id or run_id
        if not record.files:
            return {"run": run_id, "experiment": record.experiment, "source": source, "model_id": model_id,
                    "missing": f"its source {source} (logged model {record.name!r}) has no files in "
                               f"{self.source.description} (deleted there, or never written: status {record.status})"}
        main = record.files[main_file(list(record.files))]
        return {"run": run_id, "experiment": record.experiment, "source": source, "model_id": model_id,
                "artifact": main.path, "sha256": main.sha256, "size": main.size,
                "files": sorted(record.files.values(), key=lambda f: f.path)}

    def _import_aliases(self, model: Any, version_ids: dict[int, str]) -> None:
        versions = self.registry.versions(model.name)
        numbers = dict(zip(versions["id"], versions["version"]))
        history = self.registry.alias_history(model.name)
        for alias, mlflow_version in sorted(model.aliases.items()):
            target = version_ids.get(mlflow_version)
            where = f"{model.where} alias {alias}"
            if target is None:
                self.summary.skipped.append(Skipped("alias", where, f"its version {mlflow_version} was not imported"))
                continue
            moves = history[history["alias"] == alias]
            if len(moves) and moves.iloc[-1]["reason"] != ALIAS_REASON:
                self.summary.notes.append(f"alias {alias!r} of {model.name!r} kept where it is: moved in mltrail since")
                continue
            before = self.registry.get(model.name, alias=alias).id if len(moves) and moves.iloc[-1]["action"] == "set" else None
            if before == target:
                continue
            self.registry.set_alias(model.name, alias, int(numbers[target]), reason=ALIAS_REASON)
            self.summary.aliases_set += 1


class _Writes:
    """New run files, written by a thread while the import reads the next runs, and made
    durable in batches: one sync of the file system for ``batch`` files, not an fsync each
    (:func:`~mltrail.storage.atomic.commit`), in a thread of its own while the next batch
    is written. (With no fsync to wait on, more writing threads only contend for their
    folder in the kernel: 4 were slower than 1, measured on 10,000 runs.) ``done`` of a file runs in the importing thread once it is in the
    store, with its stat as written; a file not written is reported to ``failed`` with its
    run's ``where``. Two batches at most wait on the disk."""

    def __init__(self, failed: Callable[[str, Exception], None], workers: int = 1, batch: int = 64) -> None:
        self.failed = failed
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="mltrail-import")
        self.committer = ThreadPoolExecutor(1, thread_name_prefix="mltrail-import-commit")
        self.size = batch
        self.batch: list[tuple[Future[Staged], _Written, str]] = []
        self.commits: deque[tuple[Future[list[Staged | Exception]], list[tuple[_Written, str]]]] = deque()
        self.folders: set[Path] = set()  # (made: a mkdir each file cost 0.2 ms)

    def __enter__(self) -> _Writes:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._commit()
            self._settle(0)
        finally:
            self.pool.shutdown()
            self.committer.shutdown()

    def submit(self, target: Path, data: bytes, done: _Written, where: str) -> None:
        if target.parent not in self.folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.folders.add(target.parent)
        self.batch.append((self.pool.submit(stage, target, data), done, where))
        if len(self.batch) >= self.size:
            self._commit()
        self._settle(2)

    def _commit(self) -> None:
        if self.batch:
            batch, self.batch = self.batch, []
            self.commits.append((self.committer.submit(_committed, [future for future, _, _ in batch]),
                                 [(done, where) for _, done, where in batch]))

    def _settle(self, keep: int) -> None:
        """Call back for the files of the oldest batches committed, waiting for them until at
        most ``keep`` batches are pending."""
        while self.commits and (len(self.commits) > keep or self.commits[0][0].done()):
            future, batch = self.commits.popleft()
            for result, (done, where) in zip(future.result(), batch, strict=True):
                try:
                    if isinstance(result, Exception):
                        raise result
                    done(_stat_kept(result.stat))
                except (MltrailError, ValidationError, OSError) as exc:  # as a run read and written at once
                    self.failed(where, exc)


_Written = Callable[[list[int]], None]  # a new run file's callback: its stat as written (see _stat_kept)


def _committed(staged: list[Future[Staged]]) -> list[Staged | Exception]:
    """The staged files of a batch, committed: each with its stat, or why it is not written."""
    results: list[Staged | Exception] = []
    for future in staged:
        try:
            results.append(future.result())
        except OSError as exc:
            results.append(exc)
    written = [result for result in results if isinstance(result, Staged)]
    try:
        failed = iter(commit(written))
    except OSError as exc:  # the sync itself: none of them is durable
        for item in written:
            item.temporary.unlink(missing_ok=True)
        return [exc] * len(results)
    return [result if not isinstance(result, Staged) else (next(failed) or result) for result in results]


class _Cached(dict[str, Any]):
    """A mapping an import keeps in the store's cache for the next one, as git keeps stat
    data in its index: ``stamps.json`` (an artifact file's stamp -> sha256: an import again
    reads no artifact it has seen, however big) and ``runs.json`` (a run folder -> the
    snapshot of its files, and what was written of it: an import again reads no run that is
    unchanged). Derived: losing it costs one read of each run and file."""

    def __init__(self, path: Path, shape: tuple[TypeAdapter[Any], TypeAdapter[Any]] | None = None) -> None:
        """``shape``: of the whole and of a value, checked strictly as the JSON is parsed (a lax
        check would pass ``"deleted": "yes"`` or a time as text on to the import); a value
        that is not one is dropped (the file damaged, or kept by another version)."""
        super().__init__()
        self.path = path
        self.read = b""
        try:
            self.read = path.read_bytes()
            if shape is not None:  # (parsed and checked in one pass: the import-again path)
                self.update(shape[0].validate_json(self.read, strict=True))
                return
        except OSError:
            return
        except ValidationError:
            pass
        try:
            data = orjson.loads(self.read)
        except orjson.JSONDecodeError:
            return
        if not isinstance(data, dict):  # damaged, as good as lost
            return
        for key, value in data.items():
            try:
                self[key] = value if shape is None else shape[1].validate_json(orjson.dumps(value), strict=True)
            except ValidationError:
                pass

    def __enter__(self) -> _Cached:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            data = orjson.dumps(dict(self))
        except orjson.JSONEncodeError:  # a file name that is not UTF-8 (a lone surrogate here): not kept
            for key in [k for k, v in self.items() if not _encodable(k, v)]:
                del self[key]
            data = orjson.dumps(dict(self))
        if data != self.read:  # (an import of nothing new writes nothing)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, data)


class _RunRecord(TypedDict):
    """What ``runs.json`` keeps of a run folder (see MlflowImport._remember)."""

    run: RunIdentity
    paths: list[str]
    digest: str
    id: str
    file: tuple[str, int, int, int]  # the run file (relative to the store), its inode, size and mtime
    context: str
    parent: str | None
    notes: list[str]
    refused: list[tuple[str, str]]
    outputs: dict[str, int]


_RECORDS = (TypeAdapter(dict[str, _RunRecord]), TypeAdapter(_RunRecord))


def _encodable(key: str, value: Any) -> bool:
    try:
        orjson.dumps({key: value})
        return True
    except orjson.JSONEncodeError:
        return False


def _file_stat(path: Path) -> list[int] | None:
    try:
        return _stat_kept(os.stat(path))
    except OSError:
        return None


def _stat_kept(stat: os.stat_result) -> list[int]:
    """What tells an append-only file apart from itself later (an append changes its size;
    a file replaced, its inode)."""
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns]


class _FileState:
    """What an imported run's file holds already: the import appends only the rest."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.points: Counter[PointKey] = Counter()
        self.artifacts: dict[str, str] = {}
        self.datasets: set[tuple[str, str]] = set()
        self.status = "RUNNING"
        self.started_name: str | None = None
        self.ended: float | None = None

    @classmethod
    def read(cls, path: Path) -> _FileState:
        state = cls()
        events, _ = read_events(path)
        for event in events:
            kind = event.get("type")
            seq = int(event.get("seq", 0))
            if kind == "metrics":
                seq += len(event["steps"]) - 1
                start = round(event["ts"] * 1000)
                special = dict(zip(event.get("special_at", []), event.get("special", [])))
                datasets = event.get("datasets") or []
                links = [datasets[j] if j is not None else (None, None) for j in event.get("d") or []] \
                    or [(None, None)] * len(event["steps"])
                for i, (k, step, value, dts, (name, digest)) in enumerate(
                        zip(event["k"], event["steps"], event["values"], event["dts"], links)):
                    state.points[(event["keys"][k], start + dts, step, special.get(i, value), name, digest)] += 1
            elif kind == "metric":
                value = event.get("nonfinite") or event.get("value")
                state.points[(event["key"], round(event["ts"] * 1000), event["step"], value,
                              event.get("dataset_name"), event.get("dataset_digest"))] += 1
            elif kind == "run_started":
                state.tags.update(event.get("tags") or {})
                state.started_name = event.get("name")
            elif kind == "tags":
                state.tags.update(event["tags"])
            elif kind == "tag_deleted":
                state.tags.pop(event["key"], None)
            elif kind == "params":
                state.params.update(event["params"])
            elif kind == "artifact":
                state.artifacts[event["path"]] = event["sha256"]
            elif kind == "dataset":
                state.datasets.add((event["name"], event["sha256"]))
            elif kind == "run_finished":
                state.status, state.ended = event["status"], event["ts"]
            elif kind == "run_resumed":
                state.status = "RUNNING"
            state.last_seq = max(state.last_seq, seq)
        return state


class _RunLines:
    """The lines an import appends to one run's file, numbered from its next seq."""

    def __init__(self, run_id: str, last_seq: int) -> None:
        self.run_id = run_id
        self.seq = last_seq
        self.lines: list[dict[str, Any]] = []

    def add(self, event: ev.Event) -> None:
        self.seq += 1
        line = ev.dump(event)
        line["seq"] = self.seq
        self.lines.append(line)

    def add_points(self, metrics: dict[str, list[Point]], have: Counter[PointKey]) -> int:
        """Dense metric lines of the points the file does not hold, oldest first."""
        lines, count = metric_lines(self.run_id, self.seq + 1, metrics, have)
        return self.add_metric_lines(lines, count)

    def add_metric_lines(self, lines: list[dict[str, Any]], count: int) -> int:
        """Lines of ``count`` points numbered from this file's next seq (a reader's from 1)."""
        self.lines += shifted(lines, self.seq - (lines[0]["seq"] - 1)) if lines else []
        self.seq += count
        return count

    def bytes(self) -> bytes:
        return events_to_lines(self.lines)


class _LoggedModelLines:
    """The events of an MLflow logged model that mltrail's copy of it (``held``; None the
    first time) lacks. Their times are MLflow's (its creation; its last update for the
    rest, always after the creation so that replay meets the creation first) and their IDs
    derive from the model and what each says: two imports of one state write one file."""

    def __init__(self, model: SourceLoggedModel, experiment: str, run_id: str | None,
                 held: LoggedModelRecord | None) -> None:
        self.model = model
        self.experiment = experiment
        self.run_id = run_id
        self.held = held
        self.created = model.created_ms or model.updated_ms or 0
        self.later = max(model.updated_ms or 0, self.created + 1)

    def _fields(self, kind: str, content: Any, ms: int | None = None) -> dict[str, Any]:
        digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
        ms = self.later if ms is None else ms
        return {"ts": ms / 1000, "id": id_at(ms, f"mlflow-logged-model:{self.model.id}:{kind}:{digest}"),
                "model_id": self.model.id}

    def events(self, files: list[lme.ModelFile], metrics: list[tuple[str | None, lme.ModelMetric]],
               outputs: dict[str, int]) -> list[lme.LoggedModelEvent]:
        model, held = self.model, self.held
        found: list[lme.LoggedModelEvent] = []
        if held is None:
            found.append(lme.LoggedModelCreated(
                **self._fields("created", {}, self.created), experiment=self.experiment, name=model.name,
                model_type=model.model_type, source_run_id=self.run_id, params=model.params, tags=model.tags))
            held = LoggedModelRecord(model.id, self.experiment, model.name, 0.0, 0.0, params=dict(model.params),
                                     tags=dict(model.tags))
        params = {k: v for k, v in model.params.items() if held.params.get(k) != v}
        if params:
            found.append(lme.LoggedModelParamsLogged(**self._fields("params", params), params=params))
        tags = {k: v for k, v in model.tags.items() if held.tags.get(k) != v}
        if tags:
            found.append(lme.LoggedModelTagsSet(**self._fields("tags", tags), tags=tags))
        found += [lme.LoggedModelTagDeleted(**self._fields("tag-deleted", key), key=key)
                  for key in sorted(set(held.tags) - set(model.tags))]
        changed = [f for f in files if held.files.get(f.path) != f]
        if changed:
            found.append(lme.LoggedModelFiles(**self._fields("files", [f.model_dump() for f in changed]), files=changed))
        found += self._metrics(metrics, held)
        found += [lme.LoggedModelOutput(**self._fields("output", [run, step]), run_id=run, step=step)
                  for run, step in sorted(outputs.items()) if held.outputs_of.get(run) != step]
        if model.status != held.status:  # (MLflow's status, checked against mltrail's by the event)
            found.append(lme.LoggedModelFinalized.model_validate({**self._fields("status", model.status),
                                                                  "status": model.status}))
        if model.deleted and not held.deleted:
            found.append(lme.LoggedModelDeleted(**self._fields("deleted", True)))
        return found

    def _metrics(self, metrics: list[tuple[str | None, lme.ModelMetric]],
                 held: LoggedModelRecord) -> list[lme.LoggedModelMetrics]:
        """The points mltrail's copy lacks (the same point twice in MLflow stays twice), one
        event per run that logged them."""
        have: Counter[tuple[Any, ...]] = Counter((p.run_id, p.key, p.step, round(p.timestamp * 1000), ev.nonfinite_name(p.value) or p.value,
                        p.dataset_name, p.dataset_digest) for p in held.metrics)
        by_run: dict[str | None, list[lme.ModelMetric]] = {}
        for run, m in metrics:
            identity = (run, m.key, m.step, round(m.timestamp * 1000), m.nonfinite or m.value, m.dataset_name,
                        m.dataset_digest)
            if have[identity] > 0:
                have[identity] -= 1
            else:
                by_run.setdefault(run, []).append(m)
        return [lme.LoggedModelMetrics(**self._fields("metrics", [run, [m.model_dump() for m in points]]),
                                       run_id=run, metrics=points)
                for run, points in sorted(by_run.items(), key=lambda item: item[0] or "")]


MAX_DELETED_VERSIONS = 100_000  # a model's version numbers past its versions by more: a corrupt record, not deletes


def _numbered(versions: list[SourceVersion]) -> list[tuple[int, SourceVersion | None, int]]:
    """``(number, version, ID time in ms)`` for every number from 1 to the model's last:
    a number MLflow does not list (deleted there) as None. The ID times increase with the
    numbers, since the registry numbers versions by ID: each is the version's creation,
    moved past the one before when two tie (a script registering fast) or run backwards,
    and one without a creation time comes right after the one before it."""
    by_number = {v.version: v for v in versions if v.version >= 1}
    last = max(by_number, default=0)
    if last - len(by_number) > MAX_DELETED_VERSIONS:
        raise InvalidInputError(f"its versions are numbered up to {last} but it has {len(by_number)}: "
                                "the record is damaged")
    known = [by_number[n].created_ms if n in by_number else None for n in range(1, last + 1)]
    leading = next((i for i, ms in enumerate(known) if ms is not None), len(known))
    first = known[leading] if leading < len(known) else leading
    previous = max((first or 0) - leading - 1, -1)
    numbered = []
    for number, ms in enumerate(known, 1):
        previous = max(ms if ms is not None else previous + 1, previous + 1)
        numbered.append((number, by_number.get(number), previous))
    return numbered


def _dataset_event(run_id: str, ts: float, dataset: Any) -> ev.Dataset:
    """An MLflow dataset input as mltrail's dataset event. MLflow keeps a digest of the data,
    not the data: the sha256 is of MLflow's record of it (name, digest, source, schema), so
    runs that used the same data still show the same hash."""
    record = {"name": dataset.name, "digest": dataset.digest, "source_type": dataset.source_type,
              "source": dataset.source, "schema": dataset.schema}
    sha256 = hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()
    source = _parsed_json(dataset.source)
    location = source.get("uri") or source.get("path") or source.get("url") if isinstance(source, dict) else None
    profile = _parsed_json(dataset.profile)
    schema = _parsed_json(dataset.schema)
    columns = [c["name"] for c in schema.get("mlflow_colspec", []) if isinstance(c, dict) and c.get("name")] \
        if isinstance(schema, dict) else []
    rows = profile.get("num_rows") if isinstance(profile, dict) else None
    # MLflow's own record, as the plugin keeps what MLflow's client logs: its digest is what
    # a metric point's dataset link and a `datasets.digest` filter name
    kept: dict[str, str | dict[str, str] | None] = {
        field: None if value is None else str(value)
        for field, value in {**record, "profile": dataset.profile}.items()}
    kept["tags"] = {"mlflow.data.context": dataset.context} if dataset.context else {}
    return ev.Dataset(v=2, ts=ts, run=run_id, name=dataset.name,
                      path=str(location or f"mlflow:{dataset.source_type or 'dataset'}"),
                      sha256=sha256, size=0, rows=rows if isinstance(rows, int) and rows >= 0 else None,
                      columns=columns or None, context=dataset.context, mlflow=kept)


def _parsed_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def _model_artifact(source: str, mlflow_run: str | None, artifacts: list[str]) -> str | None:
    """The file of the run's artifacts a model version names: the source file itself, or in
    a model folder (MLflow's ``runs:/RUN/model``) its pickle, else its ``MLmodel``."""
    path: str | None = None
    if source.startswith("runs:/"):
        path = source.removeprefix("runs:/").partition("/")[2]
    elif mlflow_run and f"/{mlflow_run}/artifacts/" in source:
        path = source.split(f"/{mlflow_run}/artifacts/", 1)[1]
    if path is None:
        return None
    path = path.strip("/")
    if path in artifacts:
        return path
    inside = sorted(a for a in artifacts if not path or a.startswith(path + "/"))
    for preferred in (lambda a: a.rsplit("/", 1)[-1] in _MODEL_FILES,
                      lambda a: a.endswith((".pkl", ".joblib", ".pickle")),
                      lambda a: a.rsplit("/", 1)[-1] == "MLmodel"):
        chosen = [a for a in inside if preferred(a)]
        if chosen:
            return chosen[0]
    return inside[0] if inside else None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    return str(exc)
