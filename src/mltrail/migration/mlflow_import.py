"""``mltrail import mlflow``: an MLflow tracking store's experiments, runs and registered
models written as mltrail events, once.

Each MLflow run becomes one run file whose ID is derived from the MLflow run (its start
time and a hash of its ID, :func:`mltrail.storage.ids.id_at`), so importing again, or
from another clone of the same ``mlruns``, finds the run it wrote before and appends only
what is new: metric points logged since, tags changed, the end of a run that was running.
Events keep MLflow's times (a point's timestamp, the run's start and end), and MLflow's
IDs stay as tags (``mlflow.run_id``, ``mlflow.experiment_id``) beside every tag MLflow
had, so a filter written for MLflow (``tags.mlflow.runName = 'x'``) still finds the run.

A run is read whole before anything is written; a new run's file appears at once (written
aside, then renamed) and an imported run's new lines are one append, after the blobs they
name. What cannot be read is reported by path in the summary and skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from ..errors import InvalidInputError, MltrailError, NotFoundError
from ..registry.models import ModelRegistry, run_snapshot
from ..storage import events as ev
from ..storage import registry_events as rev
from ..storage.atomic import write_atomic
from ..storage.eventfiles import write_event_file
from ..storage.eventlog import EventWriter, events_to_lines, read_events
from ..storage.ids import id_at
from ..storage.run_edits import NAME_TAG, RunDeleted
from ..tracking.run import PARENT_TAG, dense_line
from .mlflow_source import (
    NOTE_TAG,
    MlflowSource,
    Point,
    RunContent,
    SourceArtifact,
    SourceError,
    SourceExperiment,
    SourceRun,
    scratch_folder,
)

if TYPE_CHECKING:
    from ..tracking.tracker import Tracker

RUN_ID_TAG = "mlflow.run_id"  # MLflow's IDs, kept on the imported run
EXPERIMENT_ID_TAG = "mlflow.experiment_id"
EXPERIMENT_TAG_PREFIX = "mlflow.experiment.tag."  # an MLflow experiment's tags, on each of its runs
VERSION_TAG = "mlflow.version"  # on an imported model version: its number in MLflow
ALIAS_REASON = "imported from MLflow"
POINTS_PER_LINE = 20_000  # a metric history of millions of points is many lines, not one huge one
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
    models_new: int = 0
    versions_new: int = 0
    aliases_set: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # imported, with something left out

    def text(self) -> str:
        lines = [f"Imported from {self.source}: {self.runs_new} new runs, {self.runs_updated} updated, "
                 f"{self.runs_unchanged} unchanged, in {self.experiments} experiments; {self.points:,} metric "
                 f"points, {self.artifacts} artifacts; {self.models_new} models, {self.versions_new} versions, "
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
        self.logged_models: dict[str, str] = {}  # MLflow 3 model ID -> its folder among its run's artifacts
        self.stamps: dict[str, str] = {}  # artifact stamp -> sha256 (loaded from the cache by run())

    def run(self) -> ImportSummary:
        runs = self._runs_to_import()
        self.tracker.layout.ensure()
        self.stamps = _Stamps(self.tracker.layout.cache / "mlflow-import" / "stamps.json")
        with self.stamps, scratch_folder(self.tracker.layout.cache / "staging") as scratch:
            for done, (experiment, run) in enumerate(runs, 1):
                try:
                    self._import_run(experiment, run, Path(scratch))
                except SourceError as exc:
                    self.summary.skipped.append(Skipped("run", exc.path, exc.reason))
                except (MltrailError, ValidationError, OSError) as exc:
                    self.summary.skipped.append(Skipped("run", run.where, _reason(exc)))
                if self.progress is not None:
                    self.progress(done, len(runs))
        self._import_models()
        return self.summary

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
                known = ", ".join(sorted(e.name for e in self.source.experiments(self.include_deleted)
                                         if not isinstance(e, SourceError)))
                raise NotFoundError(f"no experiment {', '.join(map(repr, missing))} in {self.source.description} "
                                    f"(it has: {known or 'none'}); nothing was imported")
        runs: list[tuple[SourceExperiment, SourceRun]] = []
        for experiment in experiments:
            found = 0
            for entry in self.source.runs(experiment, self.include_deleted):
                if isinstance(entry, SourceError):
                    self.summary.skipped.append(Skipped("run", entry.path, entry.reason))
                    continue
                runs.append((experiment, entry))
                self.run_ids[entry.id] = mltrail_run_id(entry)
                found += 1
            if found:
                self.summary.experiments += 1
            else:
                self.summary.skipped.append(Skipped("experiment", experiment.where,
                                                    f"{experiment.name!r} has no runs to import"))
        return runs

    def _import_run(self, experiment: SourceExperiment, run: SourceRun, scratch: Path) -> None:
        content = run.content(scratch)  # read whole before anything is written
        run_id = self.run_ids[run.id]
        try:
            path: Path | None = self.tracker.run_file(run_id)
        except NotFoundError:
            path = None
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
        points = writer.add_points(content.metrics, state.points)
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
        if path is None:
            target = self.tracker.layout.run_file(experiment.name, run_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, writer.bytes())  # the whole run appears at once
            self.summary.runs_new += 1
        elif writer.lines:
            appender = EventWriter(path)
            try:
                appender.append(writer.bytes())
            finally:
                appender.close()
            os.utime(path.parent)  # compaction re-lists a folder whose files all ended only when it changes
            self.summary.runs_updated += 1
        else:
            self.summary.runs_unchanged += 1
        self.summary.points += points
        self.summary.artifacts += artifacts
        self.summary.notes += [f"run {run.where}: {note}" for note in content.notes]
        self.summary.skipped += [Skipped("file", refused.path, refused.reason) for refused in content.refused]
        self.logged_models.update(content.logged_models)
        if run.deleted:
            self._mark_deleted(run, run_id)

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

    def _import_model(self, model: Any) -> None:
        folder = self.registry.root / model.name
        if not folder.is_dir():
            created = model.created_ms or 0
            write_event_file(folder, id_at(created, f"mlflow-model:{model.name}"), rev.ModelCreated(
                ts=created / 1000, id=id_at(created, f"mlflow-model:{model.name}"), by=None, model=model.name,
                description=model.description, tags=dict(model.tags)))
            self.summary.models_new += 1
        version_ids: dict[int, str] = {}
        for version in model.versions:
            created = version.created_ms or 0
            version_id = id_at(created, f"mlflow-version:{model.name}:{version.version}")
            where = f"{model.where} version {version.version}"
            if (folder / f"{version_id}.jsonl").exists():
                version_ids[version.version] = version_id
                continue
            try:
                event = self._version_event(model.name, version, version_id)
            except (MltrailError, ValidationError) as exc:
                self.summary.skipped.append(Skipped("model version", where, _reason(exc)))
                continue
            write_event_file(folder, version_id, event)
            version_ids[version.version] = version_id
            self.summary.versions_new += 1
        if model.aliases:
            self._import_aliases(model, version_ids)

    def _version_event(self, name: str, version: Any, version_id: str) -> rev.VersionRegistered:
        run_id = self.run_ids.get(version.run_id or "")
        if run_id is None:
            raise InvalidInputError(f"its source run {version.run_id or '(none)'} was not imported "
                                    "(deleted, or in an experiment left out)")
        details = self.tracker.get_run(run_id)
        source = version.source or ""
        if version.model_id in self.logged_models:  # MLflow 3: models:/m-..., now among its run's artifacts
            source = f"runs:/{version.run_id}/{self.logged_models[version.model_id]}"
        artifact = _model_artifact(source, version.run_id, list(details["artifacts"]["path"]))
        if artifact is None:
            raise InvalidInputError(f"its source {version.source!r} names no file among the run's artifacts")
        recorded = details["artifacts"].set_index("path").loc[artifact]
        info = details["run"]
        tags = {**version.tags, VERSION_TAG: str(version.version)}
        if version.source:
            tags["mlflow.source"] = version.source
        if version.stage not in (None, "None"):
            tags["mlflow.current_stage"] = version.stage  # MLflow 2's stages; aliases replaced them
        return rev.VersionRegistered(
            ts=(version.created_ms or 0) / 1000, id=version_id, by=version.user, model=name, run=run_id,
            experiment=info["experiment"], run_name=info.get("run_name"), artifact=artifact,
            sha256=recorded["sha256"], size=int(recorded["size"]), **run_snapshot(details),
            description=version.description, tags=tags)

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


class _Stamps(dict[str, str]):
    """sha256 of artifact files by stamp (path, size and mtime; through MLflow's client, the
    run, name and size), kept between imports in the store's cache as git keeps stat data
    in its index: an import again reads no artifact it has seen, however big. Derived:
    losing it costs one read of each file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            self.update(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError):
            pass

    def __enter__(self) -> _Stamps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, orjson.dumps(dict(self)))


class _FileState:
    """What an imported run's file holds already: the import appends only the rest."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.points: Counter[tuple[str, int, int, Any, Any, Any]] = Counter()  # (key, ms, step, value, dataset)
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

    def add_points(self, metrics: dict[str, list[Point]], have: Counter[tuple[str, int, int, Any, Any, Any]]) -> int:
        """Dense metric lines of the points the file does not hold, oldest first."""
        remaining = Counter(have)
        new: list[tuple[str, float, int, float, Any]] = []  # dense_line's points
        for key, points in metrics.items():
            for p in points:
                identity = (key, p.timestamp_ms, p.step, ev.nonfinite_name(p.value) or p.value,
                            p.dataset_name, p.dataset_digest)
                if remaining[identity] > 0:
                    remaining[identity] -= 1
                    continue
                linked = p.dataset_name is not None and p.dataset_digest is not None
                marks = (False, p.dataset_name, p.dataset_digest) if linked else False
                new.append((key, p.value, p.step, p.timestamp_ms / 1000, marks))
        new.sort(key=lambda point: point[3])
        for first in range(0, len(new), POINTS_PER_LINE):
            chunk = new[first:first + POINTS_PER_LINE]
            line = dense_line(self.run_id, self.seq + 1, chunk)
            ev.EVENT_ADAPTER.validate_python(line)  # keys, steps and times checked as a logged point's are
            self.lines.append(line)
            self.seq += len(chunk)
        return len(new)

    def bytes(self) -> bytes:
        return events_to_lines(self.lines)


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
