"""Logged models (MLflow 3's): a model a run made, with its params, tags, status, metrics
and files, kept beside the experiment's runs.

MLflow 3's ``log_model`` creates a logged model (PENDING), writes its files, links it to
the run and finalizes it (READY, or FAILED when saving failed). Each of these facts is one
event file (:mod:`mltrail.storage.logged_model_events`) in
``experiments/<experiment>/models/<model ID>/``, so two clones that log models, or tag one,
merge as the union of their files. A model's files are content-addressed blobs, as a run's
artifacts are. A model's ID is MLflow's form (``m-`` and 32 hex digits), time-sortable.

What a crash can lose: nothing written; a model whose process died before finalizing it
stays PENDING (MLflow's own stores do the same).
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import current_user
from ..errors import InvalidInputError, NotFoundError
from ..storage import logged_model_events as lme
from ..storage.blobs import BlobStore
from ..storage.eventfiles import EventFolder, write_event_file
from ..storage.ids import id_hex, new_id
from ..storage.layout import MODELS_FOLDER, Layout, check_key

_MODEL_ID = re.compile(lme.MODEL_ID)


@dataclass(frozen=True)
class ModelMetricPoint:
    """A metric point of a model (NaN and ±inf as floats again)."""

    key: str
    value: float
    step: int
    timestamp: float  # seconds since the epoch
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass
class LoggedModelRecord:
    """A logged model's state, replayed from its events. Times are seconds since the epoch."""

    model_id: str
    experiment: str  # the experiment's name (MLflow's numeric ID is the catalog's)
    name: str
    creation_time: float
    last_update_time: float
    model_type: str | None = None
    source_run_id: str | None = None
    status: str = "PENDING"
    deleted: bool = False
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[ModelMetricPoint] = field(default_factory=list)
    files: dict[str, lme.ModelFile] = field(default_factory=dict)  # by path inside the model
    outputs_of: dict[str, int] = field(default_factory=dict)  # run ID -> step: the runs it is an output of


def new_model_id() -> str:
    """A new model ID in MLflow's form, whose hex digits are a ULID's (time-sortable)."""
    return f"m-{id_hex(new_id())}"


class LoggedModels:
    """The logged models of one store (``store.tracking.logged_models``)."""

    def __init__(self, layout: Layout, blobs: BlobStore) -> None:
        self.layout = layout
        self.blobs = blobs
        self._folders: dict[Path, EventFolder] = {}
        self._lock = threading.Lock()  # MLflow's async logging calls from a worker thread

    # -- reading -----------------------------------------------------------------------

    def get(self, model_id: str, *, deleted: bool = False) -> LoggedModelRecord:
        """The model ``model_id``; a deleted one only when ``deleted`` is True."""
        folder = self._folder_of(model_id)
        record = None if folder is None else _replay(self._events(folder))
        if record is None or (record.deleted and not deleted):
            raise NotFoundError(f"Logged model with ID '{model_id}' not found.")
        return record

    def records(self, experiments: Iterable[str] | None = None, *, deleted: bool = False) -> list[LoggedModelRecord]:
        """The models of these experiments (by name; None: all), oldest first; deleted ones
        only when ``deleted`` is True."""
        found = []
        for folder in self._model_folders(experiments):
            record = _replay(self._events(folder))
            if record is not None and (deleted or not record.deleted):
                found.append(record)
        return sorted(found, key=lambda r: r.model_id)

    def outputs_of_run(self, run_id: str, experiment: str | None = None) -> dict[str, int]:
        """The models run ``run_id`` has as outputs: model ID -> step. Its ``experiment``
        (by name), when known, is the only one read."""
        records = self.records(None if experiment is None else [experiment])
        return {r.model_id: r.outputs_of[run_id] for r in records if run_id in r.outputs_of}

    def file_path(self, model_id: str, path: str) -> Path:
        """The local file holding the model's file ``path``."""
        found = self.get(model_id).files.get(path)
        if found is None:
            raise NotFoundError(f"logged model {model_id} has no file {path!r}")
        return self.blobs.path(found.sha256, found.in_git)

    def _folder_of(self, model_id: str) -> Path | None:
        if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
            return None  # never a path: an ID from a URL or a client is checked first
        try:
            experiments = [entry.path for entry in os.scandir(self.layout.experiments) if entry.is_dir()]
        except FileNotFoundError:
            return None
        for experiment in experiments:
            folder = Path(experiment) / MODELS_FOLDER / model_id
            if folder.is_dir():
                return folder
        return None

    def _model_folders(self, experiments: Iterable[str] | None) -> list[Path]:
        if experiments is None:
            bases = sorted(self.layout.experiments.glob(f"*/{MODELS_FOLDER}"))  # none before the first experiment
        else:
            bases = [self.layout.models_dir(name) for name in experiments]
        folders: list[Path] = []
        for base in bases:
            try:
                folders.extend(Path(e.path) for e in os.scandir(base) if e.is_dir() and _MODEL_ID.fullmatch(e.name))
            except FileNotFoundError:
                continue
        return folders

    def _events(self, folder: Path) -> list[lme.LoggedModelEvent]:
        with self._lock:
            reader = self._folders.get(folder)
            if reader is None:
                reader = self._folders[folder] = EventFolder(folder, lme.LOGGED_MODEL_EVENT_ADAPTER, "logged model")
            return reader.events()

    # -- writing -----------------------------------------------------------------------

    def create(self, experiment: str, name: str, *, model_type: str | None = None, source_run_id: str | None = None,
               params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
               by: str | None = None) -> LoggedModelRecord:
        """A new model in ``experiment`` (by name; the caller checks that it exists), PENDING."""
        model_id = new_model_id()
        self._write(experiment, lme.LoggedModelCreated, model_id=model_id, by=by, experiment=experiment, name=name,
                    model_type=model_type, source_run_id=source_run_id,
                    params={k: str(v) for k, v in (params or {}).items()},
                    tags={k: str(v) for k, v in (tags or {}).items()})
        return self.get(model_id)

    def log_params(self, model_id: str, params: Mapping[str, Any], *, by: str | None = None) -> None:
        if params:
            self._write(self.get(model_id).experiment, lme.LoggedModelParamsLogged, model_id=model_id, by=by,
                        params={k: str(v) for k, v in params.items()})

    def finalize(self, model_id: str, status: str, *, by: str | None = None) -> LoggedModelRecord:
        """Set the model's status: READY once its files are written, FAILED when they could not be."""
        if status not in lme.STATUSES:
            raise InvalidInputError(f"logged model status {status!r} is not one of {', '.join(lme.STATUSES)}")
        self._write(self.get(model_id).experiment, lme.LoggedModelFinalized, model_id=model_id, by=by, status=status)
        return self.get(model_id)

    def set_tags(self, model_id: str, tags: Mapping[str, Any], *, by: str | None = None) -> None:
        if tags:
            self._write(self.get(model_id).experiment, lme.LoggedModelTagsSet, model_id=model_id, by=by,
                        tags={k: "" if v is None else str(v) for k, v in tags.items()})

    def delete_tag(self, model_id: str, key: str, *, by: str | None = None) -> None:
        record = self.get(model_id)
        if key not in record.tags:
            raise NotFoundError(f"No tag with key {key!r} found for model with ID {model_id!r}.")
        self._write(record.experiment, lme.LoggedModelTagDeleted, model_id=model_id, by=by, key=key)

    def delete(self, model_id: str, *, by: str | None = None) -> None:
        """Mark the model deleted: reads and searches skip it (its events and files stay)."""
        self._write(self.get(model_id).experiment, lme.LoggedModelDeleted, model_id=model_id, by=by)

    def log_files(self, model_id: str, files: Sequence[tuple[str, Path]], *, by: str | None = None) -> list[str]:
        """Copy local files into the model as ``(path inside the model, local file)``,
        content-addressed, in one event; the paths written."""
        experiment = self.get(model_id).experiment
        if not files:
            return []
        for path, _ in files:  # every path checked before any blob is written
            check_key("artifact", path)
        stored = []
        for path, source in files:
            sha256, size, in_git = self.blobs.put_file(Path(source))
            stored.append(lme.ModelFile(path=path, sha256=sha256, size=size, in_git=in_git))
        self._write(experiment, lme.LoggedModelFiles, model_id=model_id, by=by, files=stored)
        return [f.path for f in stored]

    def log_metrics(self, model_id: str, points: Sequence[ModelMetricPoint], *, run_id: str | None = None,
                    by: str | None = None) -> None:
        if not points:
            return
        rows = [_metric_fields(p) for p in points]
        self._write(self.get(model_id).experiment, lme.LoggedModelMetrics, model_id=model_id, by=by, run_id=run_id,
                    metrics=rows)

    def log_output(self, model_id: str, run_id: str, step: int = 0, *, by: str | None = None) -> None:
        """Record that run ``run_id`` has the model as an output (once per run and step)."""
        record = self.get(model_id)
        if record.outputs_of.get(run_id) != step:
            self._write(record.experiment, lme.LoggedModelOutput, model_id=model_id, by=by, run_id=run_id, step=step)

    def write_imported(self, experiment: str, events: Sequence[lme.LoggedModelEvent]) -> int:
        """Events of a model made elsewhere (``mltrail import mlflow``), each with its own
        time and ID, into the model's folder in ``experiment`` (by name): those not there
        yet are written; how many. An importer derives the IDs from what the events say, so
        an import again, or from another clone, writes the same files, not a second copy."""
        folders = {event.model_id for event in events}
        if len(folders) > 1:
            raise InvalidInputError(f"events of one model at a time, not of {', '.join(sorted(folders))}")
        if events:
            self.layout.ensure()
        written = 0
        for event in events:
            folder = self.layout.models_dir(experiment) / event.model_id
            if not (folder / f"{event.id}.jsonl").exists():
                write_event_file(folder, event.id, event)
                written += 1
        return written

    def _write(self, folder_of: str, kind: type[lme.LoggedModelEvent], **fields: Any) -> None:
        """Validate the event (strict: a clear error naming the model), then write it into
        the model's folder in experiment ``folder_of``."""
        fields["by"] = fields.get("by") or current_user()
        try:
            event = kind(ts=time.time(), id=new_id(), **fields)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise InvalidInputError(f"logged model {fields.get('model_id')}: {where}: {error['msg']}") from None
        self.layout.ensure()
        write_event_file(self.layout.models_dir(folder_of) / event.model_id, event.id, event)


def _metric_fields(point: ModelMetricPoint) -> dict[str, Any]:
    value = float(point.value)
    nonfinite = None if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    return {"key": point.key, "value": None if nonfinite else value, "nonfinite": nonfinite, "step": int(point.step),
            "timestamp": point.timestamp, "dataset_name": point.dataset_name, "dataset_digest": point.dataset_digest}


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _replay(events: list[lme.LoggedModelEvent]) -> LoggedModelRecord | None:
    """One model's state from its events, oldest first; None without a creation."""
    record: LoggedModelRecord | None = None
    for event in events:
        if isinstance(event, lme.LoggedModelCreated):
            if record is None:
                record = LoggedModelRecord(model_id=event.model_id, experiment=event.experiment, name=event.name,
                                           creation_time=event.ts, last_update_time=event.ts,
                                           model_type=event.model_type, source_run_id=event.source_run_id,
                                           params=dict(event.params), tags=dict(event.tags))
            continue
        if record is None:
            continue
        _apply(record, event)
        record.last_update_time = max(record.last_update_time, event.ts)
    return record


def _apply(record: LoggedModelRecord, event: lme.LoggedModelEvent) -> None:
    if isinstance(event, lme.LoggedModelParamsLogged):
        record.params.update(event.params)
    elif isinstance(event, lme.LoggedModelFinalized):
        record.status = event.status
    elif isinstance(event, lme.LoggedModelTagsSet):
        record.tags.update(event.tags)
    elif isinstance(event, lme.LoggedModelTagDeleted):
        record.tags.pop(event.key, None)
    elif isinstance(event, lme.LoggedModelDeleted):
        record.deleted = True
    elif isinstance(event, lme.LoggedModelFiles):
        record.files.update((f.path, f) for f in event.files)
    elif isinstance(event, lme.LoggedModelMetrics):
        record.metrics.extend(
            ModelMetricPoint(key=m.key, value=_NONFINITE[m.nonfinite] if m.nonfinite else float(m.value or 0.0),
                             step=m.step, timestamp=m.timestamp, run_id=event.run_id, dataset_name=m.dataset_name,
                             dataset_digest=m.dataset_digest)
            for m in event.metrics)
    elif isinstance(event, lme.LoggedModelOutput):
        record.outputs_of[event.run_id] = event.step
