"""The one translation between MLflow and mltrail: MLflow's tracking calls on an mltrail
:class:`~mltrail.Store`, answered in MLflow's entities.

Both front doors call it: the tracking-store plugin (``MLFLOW_TRACKING_URI=mltrail:...``,
:mod:`.plugin`) returns its answers to MLflow's client as they are, and the server's MLflow
REST API turns them into MLflow's JSON with MLflow's own ``to_proto``.

How MLflow's model maps onto mltrail's:

- **Experiments**: MLflow's numeric IDs, tags and lifecycle are kept by the store's
  experiment catalog (:mod:`mltrail.tracking.experiments`); an ID is derived from the name
  unless the experiment was created with one, so it is the same on every machine.
- **Runs**: one mltrail run each, written by an mltrail :class:`~mltrail.Run` this process
  holds open from ``create_run`` to the status MLflow ends it with. A call on a run this
  process does not hold (another process made it, or it ended) resumes it, and a run
  that was ended is ended again with its status once the call is written. MLflow's
  ``mlflow.runName`` and ``mlflow.parentRunId`` tags are the run's name and parent.
- mltrail's own tags (``mltrail.*``) are not shown to MLflow; a run mltrail logged shows
  its name, notes and parent under MLflow's tag names.
- **Errors** are :class:`mlflow.exceptions.MlflowException` with MLflow's error codes, so
  MLflow's clients (and its REST API's status codes) treat them as MLflow's own.
"""

from __future__ import annotations

import functools
import gc
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.entities import LoggedModel, LoggedModelOutput, LoggedModelParameter, LoggedModelStatus, LoggedModelTag
from mlflow.entities import RunOutputs
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_MAX_RESULTS_THRESHOLD
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_RUN_NOTE, MLFLOW_USER
from mlflow.utils.search_utils import SearchExperimentsUtils, SearchUtils
from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local
from mlflow.utils.validation import (
    _validate_batch_log_data,
    _validate_batch_log_limits,
    _validate_experiment_name,
    _validate_experiment_tag,
    _validate_metric,
    _validate_param,
    _validate_param_keys_unique,
    _validate_tag,
)

from ..errors import (
    AlreadyExistsError,
    FilterSyntaxError,
    InvalidInputError,
    NotFoundError,
)
from ..query.cells import millis, millis_column
from ..query.filter import parse_filter
from ..storage.fields import dataset_text_problem
from ..storage.run_edits import NAME_TAG, NOTES_TAG
from ..store import Store
from ..tracking.datasets import mlflow_description
from ..tracking.experiments import DEFAULT_EXPERIMENT_ID, ExperimentRecord
from ..tracking.run import PARENT_TAG
from ..tracking.run import Run as MltrailRun
from .common import ARTIFACTS_SCHEME, mlflow_errors
from .entities import run_data

_OWN_TAGS = "mltrail."
# mltrail's statuses as MLflow's: MLflow has no CRASHED (a run whose process died reads FAILED)
_STATUS = {"RUNNING": "RUNNING", "FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED",
           "CRASHED": "FAILED", "SCHEDULED": "SCHEDULED"}
_VIEW = {ViewType.ACTIVE_ONLY: "active", ViewType.DELETED_ONLY: "deleted", ViewType.ALL: "all"}
@contextmanager
def _no_collection() -> Iterator[None]:
    """Python's cyclic garbage collector off while a search builds MLflow's entities: they
    hold no cycles, and the collections their ~30 objects a run set off (each walking the
    objects made so far) took half the time: 10,000 runs built in 0.84 s with it, 0.43 s
    without (medians of 5, `MlflowClient.search_runs` on a warm store)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Translation:
    """MLflow's tracking calls on one mltrail store (a folder). Thread-safe: MLflow's
    async logging calls ``log_batch`` from a worker thread while the script goes on."""

    def __init__(self, store: Store, artifact_root: str | None = None) -> None:
        """``artifact_root``: the URI runs' artifact URIs start with (a server's is
        ``mlflow-artifacts:``, MLflow's artifact proxy); by default the plugin's own
        scheme, which names the store's folder."""
        self.store = store
        self.catalog = store.tracking.catalog
        self.artifact_root = artifact_root
        self._open: dict[str, MltrailRun] = {}  # runs this process writes, by ID
        self._names_by_id: dict[str, str] = {}  # experiment IDs seen, and their names
        self._default_ensured = False
        self._experiment_of: dict[str, str] = {}  # runs seen, and their experiments (fixed for good)
        self._lock = threading.RLock()

        from .logged_models import LoggedModelTranslation  # which imports this module

        self.logged_models = LoggedModelTranslation(self)  # MLflow 3's logged models

    # -- experiments -------------------------------------------------------------------

    def experiment(self, record: ExperimentRecord) -> Experiment:
        return Experiment(
            experiment_id=record.experiment_id, name=record.name,
            artifact_location=record.artifact_location or self._experiment_artifacts(record),
            lifecycle_stage=record.lifecycle_stage,
            tags=[ExperimentTag(k, v) for k, v in record.tags.items()],
            creation_time=millis(record.creation_time), last_update_time=millis(record.last_update_time))

    def _experiment_artifacts(self, record: ExperimentRecord) -> str:
        if self.artifact_root is not None:
            return f"{self.artifact_root.rstrip('/')}/experiments/{record.experiment_id}"
        return f"{ARTIFACTS_SCHEME}:/experiments/{record.experiment_id}?root={quote(str(self.store.root), safe='')}"

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: Sequence[ExperimentTag] | None = None, *, by: str | None = None) -> str:
        """(``by``, here and in the other writes: who acted, a server's caller; else this
        process's user.)"""
        # MLflow's own checks, with its messages ("Invalid experiment name: 123. Expects a string.")
        _validate_experiment_name(name)
        for tag in tags or []:
            _validate_experiment_tag(tag.key, tag.value)
        self._ensure_default()  # MLflow's stores are made with it: it is the oldest experiment
        with mlflow_errors():
            try:
                record = self.catalog.create(name, artifact_location=resolve_uri_if_local(artifact_location)
                                             if artifact_location else None,
                                             tags={t.key: t.value for t in tags or []}, by=by)
            except AlreadyExistsError as exc:  # a deleted experiment keeps its name, as in MLflow
                raise MlflowException(f"Experiment(name={name}) already exists. {exc}",
                                      error_code=databricks_pb2.RESOURCE_ALREADY_EXISTS) from exc
        return record.experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.experiment(self._record(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        record = self.catalog.by_name(name)
        if record is None and name == "Default":  # MLflow's Default experiment always exists
            with mlflow_errors():
                record = self.catalog.create("Default")
        return None if record is None else self.experiment(record)

    def search_experiments(self, view_type: int = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None, order_by: Sequence[str] | None = None,
                           page_token: str | None = None,
                           visible: Callable[[str], bool] | None = None) -> PagedList[Experiment]:
        """``visible``: whether the caller may see an experiment, by name (a server's user)."""
        self._ensure_default()
        wanted = {ViewType.ACTIVE_ONLY: {"active"}, ViewType.DELETED_ONLY: {"deleted"},
                  ViewType.ALL: {"active", "deleted"}}[view_type]
        found = [self.experiment(r) for r in self.catalog.records().values()
                 if r.lifecycle_stage in wanted and (visible is None or visible(r.name))]
        found = SearchExperimentsUtils.filter(found, filter_string)
        found = SearchExperimentsUtils.sort(found, list(order_by or []) or ["creation_time DESC", "experiment_id ASC"])
        page, token = SearchUtils.paginate(found, page_token, max_results)
        return PagedList(page, token.decode() if isinstance(token, bytes) else token)

    def _by_id(self, experiment_id: str) -> ExperimentRecord:
        """The experiment of an ID. An ID names one experiment for good, so its name is
        remembered: then only that experiment's own folder is read (for its tags and
        lifecycle), not the store's run index that finding an ID among all needs."""
        name = self._names_by_id.get(experiment_id)
        if name is not None:
            record = self.catalog.of_runs(name)
            if record.experiment_id == experiment_id:
                return record
        record = self.catalog.by_id(experiment_id)
        self._names_by_id[experiment_id] = record.name
        return record

    def _ensure_default(self) -> None:
        """MLflow's stores all have experiment 0, ``Default``: a client may log there unasked.
        Checked once per process (it cannot be deleted), not on each run it takes."""
        if self._default_ensured:
            return
        if self.catalog.by_name("Default") is None:
            with mlflow_errors():
                self.catalog.create("Default")
        self._default_ensured = True

    def _record(self, experiment_id: str, stage: str | None = None) -> ExperimentRecord:
        """Experiment ``experiment_id`` (in lifecycle ``stage`` only, when given: MLflow's stores
        answer a delete of a deleted experiment, or a restore of an active one, as not found)."""
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            self._ensure_default()
        with mlflow_errors():
            try:
                record = self._by_id(str(experiment_id))
            except NotFoundError:
                record = None
        if record is None or (stage is not None and record.lifecycle_stage != stage):
            # MLflow's message, which its clients match on
            raise MlflowException(f"No Experiment with id={experiment_id} exists",
                                  error_code=databricks_pb2.RESOURCE_DOES_NOT_EXIST)
        return record

    def delete_experiment(self, experiment_id: str, *, by: str | None = None) -> None:
        name = self._record(experiment_id, LifecycleStage.ACTIVE).name
        if name == "Default":
            raise MlflowException("Cannot delete the default experiment '0'. This is an internally reserved "
                                  "experiment.", error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        with self._lock, mlflow_errors():
            self.catalog.delete(name, by=by)
            # its runs are deleted runs now: a write to one this process holds goes the way of
            # any other run's (and is refused, as MLflow refuses it)
            for run_id, run in list(self._open.items()):
                if run.experiment == name:
                    run.flush()
                    del self._open[run_id]

    def restore_experiment(self, experiment_id: str, *, by: str | None = None) -> None:
        with mlflow_errors():
            self.catalog.restore(self._record(experiment_id, LifecycleStage.DELETED).name, by=by)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        raise MlflowException(
            f"mltrail keeps an experiment's runs under its name: experiment {experiment_id} cannot be "
            f"renamed to {new_name!r}", error_code=databricks_pb2.INVALID_PARAMETER_VALUE)

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag, *, by: str | None = None) -> None:
        record = self._record(experiment_id)
        self._require_active(record)
        with mlflow_errors():
            self.catalog.set_tag(record.name, tag.key, tag.value, by=by)

    def delete_experiment_tag(self, experiment_id: str, key: str, *, by: str | None = None) -> None:
        record = self._record(experiment_id)
        self._require_active(record)
        if key not in record.tags:
            raise MlflowException(f"No tag with name: {key} in experiment with id {experiment_id}",
                                  error_code=databricks_pb2.RESOURCE_DOES_NOT_EXIST)
        with mlflow_errors():
            self.catalog.delete_tag(record.name, key, by=by)

    @staticmethod
    def _require_active(record: ExperimentRecord) -> None:
        if record.lifecycle_stage != "active":
            raise MlflowException(f"The experiment {record.experiment_id} must be in the 'active' state. "
                                  f"Current state is {record.lifecycle_stage}.",
                                  error_code=databricks_pb2.INVALID_PARAMETER_VALUE)

    # -- runs: writing -----------------------------------------------------------------

    def create_run(self, experiment_id: str | None, user_id: str | None, start_time: int | None,
                   tags: Sequence[RunTag] | None, run_name: str | None) -> Run:
        if experiment_id is None:
            self._ensure_default()
            experiment_id = "0"
        record = self._record(experiment_id)
        self._require_active(record)
        given = {t.key: t.value for t in tags or []}
        if run_name and given.get(MLFLOW_RUN_NAME) and run_name != given[MLFLOW_RUN_NAME]:
            raise MlflowException(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
                f"(run_name='{run_name}', mlflow.runName='{given[MLFLOW_RUN_NAME]}').",
                error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        name = run_name or given.get(MLFLOW_RUN_NAME)
        given[MLFLOW_RUN_NAME] = name or ""
        # the run's user is the writer's (MLflow's stores keep user_id beside the tags, and add
        # no mlflow.user tag the client did not send)
        parent = given.get(MLFLOW_PARENT_RUN_ID)
        with mlflow_errors():
            run = self.store.start_run(
                record.name, name=name or None, tags={k: v for k, v in given.items() if v != ""} or None,
                parent=parent, log_git=False, log_command=False, log_system=False, log_packages=False,
                log_system_metrics=False)
            if not name:  # MLflow names every run: the name mltrail gave it
                run.set_tag(MLFLOW_RUN_NAME, run.name)
            run.flush()
        with self._lock:
            self._open[run.id] = run
        return self._held_run(run)

    def _held_run(self, run: MltrailRun) -> Run:
        """What :meth:`get_run` answers for a run this process writes, from what it has in
        hand: a read of the store brings its tables up to date first (~100 ms on a small
        store), and MLflow's client asks for the run at its start and at its end."""
        tags = self._mlflow_tags(dict(run._tags), run.name, None, run._tags.get(PARENT_TAG))
        info = self._run_info(run.id, run.experiment, run.status, run.started, run.ended, False, tags,
                              None)
        return Run(info, RunData(metrics=[], params=[Param(k, v) for k, v in run._params.items()],
                                 tags=[RunTag(k, v) for k, v in tags.items()]), RunInputs(dataset_inputs=[]),
                   RunOutputs([]))

    @contextmanager
    def _writing(self, run_id: str) -> Iterator[MltrailRun]:
        """The run's writer for one call: the one this process holds, else the run resumed
        for the call and ended again with the status it had."""
        with self._lock, mlflow_errors():
            run = self._open.get(run_id)
            if run is not None and run.status == "RUNNING":
                yield run
                return
            info = self._run_row(run_id)
            if info["deleted"]:
                raise _not_active(run_id)
            status = info["status"]
            run = self.store.start_run(run_id=run_id, log_system_metrics=False)
            try:
                yield run
            finally:
                if status == "RUNNING":
                    self._open[run_id] = run
                else:
                    run.end(_STATUS.get(status, "FINISHED") if status != "CRASHED" else "FAILED")

    def experiment_of(self, run_id: str) -> str:
        """The experiment of a run, by its ID (NotFoundError if there is none). A run's
        experiment never changes, so it is looked up in the store once."""
        found = self._experiment_of.get(run_id)
        if found is None:
            held = self._open.get(run_id)
            found = held.experiment if held is not None else self.store.tracking.experiment_of(run_id)
            self._experiment_of[run_id] = found
        return found

    def _run_row(self, run_id: str) -> dict[str, Any]:
        try:
            row = self.store.get_run(run_id)["run"]
        except (NotFoundError, InvalidInputError):
            row = None
        if row is None or row["run_id"] != run_id:  # (get_run also takes prefixes and names: MLflow does not)
            raise NotFoundError(f"Run '{run_id}' not found")
        gone = self.catalog.of_runs(row["experiment"]).lifecycle_stage == LifecycleStage.DELETED
        # deleted: the run or its experiment (MLflow's lifecycle); run_deleted: the run's own
        return {"deleted": bool(row.get("deleted")) or gone, "run_deleted": bool(row.get("deleted")),
                "status": row["status"]}

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
                  tags: Sequence[RunTag] = (), *, by: str | None = None) -> None:
        self._log_checked(run_id, *_check_batch(metrics, params, tags), by=by)

    def _log_checked(self, run_id: str, metrics: Sequence[Metric], params: Sequence[Param],
                     tags: Sequence[RunTag], *, by: str | None = None) -> None:
        """Write what MLflow's checks passed (a long value as they truncated it). ``by``: who
        logged points that name a logged model (written on the model too), a server's caller."""
        # points measured on a dataset keep its name and digest, as MLflow 3's stores do (MLflow's
        # Metric names both or neither); looked for once, so a batch naming none pays little
        linked = [m for m in metrics if m.dataset_name is not None]
        _check_datasets(linked)
        for_model = any(m.model_id for m in metrics)  # a logged model's points: on the model, and the run once
        run_points = self.logged_models.new_to_run(run_id, metrics) if for_model else metrics
        with self._writing(run_id) as run:
            if params:
                _log_params(run, params)
            if tags:
                self._set_tags(run, {t.key: t.value for t in tags})
            for m in run_points:
                run.log_metric(m.key, _metric_value(m), int(m.step or 0),
                               timestamp=None if m.timestamp is None else m.timestamp / 1000,
                               dataset=_dataset_of(m) if linked else None)
            run.flush()
        if for_model:
            self.logged_models.log_metrics(run_id, metrics, by=by)

    # one value is checked as MLflow's stores check one, its errors naming 'value', not 'metrics[0].value'

    def log_metric(self, run_id: str, metric: Metric, *, by: str | None = None) -> None:
        _validate_metric(metric.key, metric.value, metric.timestamp, metric.step)
        self._log_checked(run_id, [metric], (), (), by=by)

    def log_param(self, run_id: str, param: Param) -> None:
        self._log_checked(run_id, (), [_validate_param(param.key, param.value)], ())

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self._log_checked(run_id, (), (), [_validate_tag(tag.key, tag.value)])

    def _set_tags(self, run: MltrailRun, tags: dict[str, str]) -> None:
        name = tags.get(MLFLOW_RUN_NAME)
        if name:
            run.set_name(name)
        run.set_tags({k: "" if v is None else v for k, v in tags.items()})

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._writing(run_id) as run:
            if key not in run._tags:
                raise MlflowException(f"No tag with name: {key} in run with id {run_id}",
                                      error_code=databricks_pb2.RESOURCE_DOES_NOT_EXIST)
            run.delete_tag(key)
            run.flush()

    def update_run_info(self, run_id: str, run_status: int | str | None, end_time: int | None,
                        run_name: str | None) -> RunInfo:
        status = RunStatus.to_string(run_status) if isinstance(run_status, int) else run_status
        with self._lock, mlflow_errors():
            if run_name:
                with self._writing(run_id) as run:
                    run.set_name(run_name)
                    run.set_tag(MLFLOW_RUN_NAME, run_name)
            held = self._open.get(run_id)
            if status is not None:
                self._set_status(run_id, status)
            if held is not None and not run_name and held.started is not None and held.status == status:
                return self._held_run(held).info  # (its params and metrics are not part of the answer)
        return self.get_run(run_id).info

    def _set_status(self, run_id: str, status: str) -> None:
        run = self._open.get(run_id)
        if run is None and self._run_row(run_id)["deleted"]:  # (MLflow's stores end no deleted run)
            raise _not_active(run_id)
        if status == "RUNNING":
            if run is None or run.status != "RUNNING":
                self._open[run_id] = self.store.start_run(run_id=run_id, log_system_metrics=False)
            return
        if status not in ("FINISHED", "FAILED", "KILLED"):
            raise MlflowException(f"mltrail keeps no {status} runs", error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        if run is None:  # (it exists: read above; resuming an ID no run has would make one)
            run = self.store.start_run(run_id=run_id, log_system_metrics=False)
        if run.status == "RUNNING":
            run.end(status)
        self._open.pop(run_id, None)

    # MLflow's stores leave a run already in the state asked for as it is, without an error

    def delete_run(self, run_id: str, *, by: str | None = None) -> None:
        """As MLflow's stores: any run, running too (mltrail's own calls refuse a RUNNING run).
        ``by``: who deleted it (a server's caller), else this process's user."""
        with self._lock, mlflow_errors():
            if not self._run_row(run_id)["run_deleted"]:  # (its full ID: MLflow takes no prefix)
                self.store.tracking.curation.delete_run(run_id, by=by, running_too=True)
            held = self._open.pop(run_id, None)
            if held is not None:  # a write to it, or its end, is now refused, as MLflow refuses them
                held.flush()

    def restore_run(self, run_id: str, *, by: str | None = None) -> None:
        with mlflow_errors():
            if self._run_row(run_id)["run_deleted"]:
                self.store.restore_run(run_id, by=by)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] | None = None,
                   models: Sequence[Any] | None = None) -> None:
        if not datasets:
            return
        with self._writing(run_id) as run:
            for item in datasets:
                run.log_mlflow_dataset(_dataset_fields(item))
            run.flush()

    # -- run artifacts -----------------------------------------------------------------

    def log_artifact(self, run_id: str, local_file: str | os.PathLike[str], name: str) -> None:
        """A file as the run's artifact ``name``, content-addressed in the store."""
        with self._writing(run_id) as run:
            run.log_artifact(local_file, name=name)
            run.flush()

    def artifact_sizes(self, run_id: str) -> dict[str, int]:
        """The run's artifacts: name -> size in bytes."""
        self.flush(run_id)
        with mlflow_errors():
            self.experiment_of(run_id)
            table = self.store.tracking.artifacts()
        rows = table[table["run_id"] == run_id]
        return dict(zip(rows["path"], (int(s) for s in rows["size"])))

    def artifact_file(self, run_id: str, name: str) -> Path:
        """The local file holding the run's artifact ``name``."""
        self.flush(run_id)
        with mlflow_errors():
            return self.store.tracking.artifact_path(run_id, name)

    def flush(self, run_id: str | None = None) -> None:
        """Write what this process holds for ``run_id`` (all runs: None) to the store."""
        with self._lock:
            runs = list(self._open.values()) if run_id is None else [r for r in [self._open.get(run_id)] if r]
            for run in runs:
                if run.status == "RUNNING":
                    run.flush()

    # -- runs: reading -----------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        self.flush(run_id)
        with mlflow_errors():
            try:
                found = self.store.get_run(run_id)
            except (NotFoundError, InvalidInputError):
                raise NotFoundError(f"Run '{run_id}' not found") from None
        if found["run"]["run_id"] != run_id:  # a prefix or a name found it: MLflow takes IDs only
            raise MlflowException(f"Run '{run_id}' not found", error_code=databricks_pb2.RESOURCE_DOES_NOT_EXIST)
        row = found["run"]
        tags = self._mlflow_tags(found["tags"], row.get("run_name"), row.get("description"),
                                 row.get("parent_run_id") or found["tags"].get(PARENT_TAG))
        metrics = [Metric(r["key"], r["value"], millis(r["timestamp"]) or 0, int(r["step"]))
                   for r in found["metrics"].to_dict("records")]
        params = [Param(r["key"], r["value"]) for r in found["params"].to_dict("records")]
        info = self._run_info(run_id, row["experiment"], row["status"], row["start_time"], row["end_time"],
                              bool(row.get("deleted")), tags, row.get("user"))
        inputs = RunInputs(dataset_inputs=[_dataset_input(d) for d in found["datasets"].to_dict("records")])
        return Run(info, RunData(metrics=metrics, params=params, tags=[RunTag(k, v) for k, v in tags.items()]),
                   inputs, RunOutputs(self.logged_models.run_outputs(run_id, row["experiment"])))

    def _run_info(self, run_id: str, experiment: str, status: str, start: Any, end: Any, deleted: bool,
                  tags: dict[str, str], user: str | None) -> RunInfo:
        record = self.catalog.of_runs(experiment)
        # as in MLflow's stores, the runs of a deleted experiment are deleted until it is restored
        deleted = deleted or (record is not None and record.lifecycle_stage == LifecycleStage.DELETED)
        return RunInfo(run_id=run_id, experiment_id=record.experiment_id if record else "",
                       user_id=tags.get(MLFLOW_USER, user or ""),
                       status=_STATUS.get(status, status), start_time=millis(start) or 0, end_time=millis(end),
                       lifecycle_stage=LifecycleStage.DELETED if deleted else LifecycleStage.ACTIVE,
                       artifact_uri=self.artifact_uri(run_id, record.artifact_location if record else None),
                       run_name=tags.get(MLFLOW_RUN_NAME))

    def artifact_uri(self, run_id: str, experiment_location: str | None = None) -> str:
        """Where MLflow's client puts the run's artifacts: under the artifact location its
        experiment was created with, as MLflow's stores do (``<location>/<run ID>/artifacts``),
        else in the store, content-addressed (a server's: through its artifact proxy)."""
        if experiment_location:
            return str(append_to_uri_path(experiment_location, run_id, "artifacts"))
        if self.artifact_root is not None:
            return f"{self.artifact_root.rstrip('/')}/{run_id}"
        return f"{ARTIFACTS_SCHEME}:/{run_id}?root={self._quoted_root}"

    @functools.cached_property
    def _quoted_root(self) -> str:  # (quoted once: a search answers an artifact URI a run)
        return quote(str(self.store.root), safe="")

    @staticmethod
    def _mlflow_tags(tags: dict[str, Any], name: Any, notes: Any, parent: Any) -> dict[str, str]:
        """A run's tags as MLflow shows them: mltrail's own hidden, its name, notes and
        parent under MLflow's names when MLflow did not set them."""
        shown = {k: str(v) for k, v in tags.items() if not k.startswith(_OWN_TAGS)}
        for key, value in ((MLFLOW_RUN_NAME, tags.get(NAME_TAG) or name), (MLFLOW_RUN_NOTE, tags.get(NOTES_TAG) or notes),
                           (MLFLOW_PARENT_RUN_ID, parent)):
            if key not in shown and isinstance(value, str) and value:
                shown[key] = value
        return shown

    def get_metric_history(self, run_id: str, metric_key: str, max_results: int | None = None,
                           page_token: str | None = None) -> PagedList[Metric]:
        self.flush(run_id)
        with mlflow_errors():
            self.experiment_of(run_id)
            points = self.store.metric_history([run_id], [metric_key])
        history = [Metric(metric_key, float(v), millis(ts) or 0, int(s), dataset_name=_text(name),
                          dataset_digest=_text(digest))
                   for v, ts, s, name, digest in zip(points["value"], points["timestamp"], points["step"],
                                                     points["dataset_name"], points["dataset_digest"])]
        # MLflow's order (its SqlAlchemyStore's), which its pages follow: by time, then step, then value
        history.sort(key=lambda m: (m.timestamp, m.step, math.isnan(m.value), m.value))
        if max_results is None:
            return PagedList(history, None)
        page, token = SearchUtils.paginate(history, page_token, max_results)
        return PagedList(page, token.decode() if isinstance(token, bytes) else token)

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str | None, run_view_type: int,
                    max_results: int, order_by: Sequence[str] | None,
                    page_token: str | None) -> tuple[list[Run], str | None]:
        _check_max_results(max_results)
        self.flush()
        records = self.catalog.records()
        ids = {name: r.experiment_id for name, r in records.items()}
        names = [name for name, eid in ids.items() if eid in {str(i) for i in experiment_ids}]
        with mlflow_errors():
            with_runs = set(self.store.tracking._first_starts())
            names = [n for n in names if n in with_runs]
            if not names:
                return [], None
            frame = self.store.search_runs(names, _filter(filter_string), _order_by(order_by) or None, view="all")
        # as in MLflow's stores, the runs of a deleted experiment are deleted runs until it is restored
        gone = {name for name in names if records[name].lifecycle_stage == LifecycleStage.DELETED}
        deleted = frame["deleted"].astype(bool) | frame["experiment"].isin(gone)
        view = _VIEW.get(run_view_type, "active")
        frame = frame.assign(deleted=deleted)
        frame = frame[~deleted] if view == "active" else frame[deleted] if view == "deleted" else frame
        start = SearchUtils.parse_start_offset_from_page_token(page_token)
        page = frame.iloc[start:start + max_results]
        token = SearchUtils.create_page_token(start + max_results) if start + max_results < len(frame) else None
        with _no_collection():
            runs = self._runs_of(page, records)
        return runs, (token.decode() if isinstance(token, bytes) else token)

    def _runs_of(self, frame: pd.DataFrame, records: dict[str, ExperimentRecord]) -> list[Run]:
        """Search results as MLflow's runs: latest metrics with their step and time."""
        if frame.empty:
            return []
        # the page's rows of the tables picked in Arrow, and read a column at a time as lists
        # (pandas' isin on its string columns cost ~0.1 s for 50,000 rows)
        wanted = pa.array(frame["run_id"].tolist(), type=pa.string())
        latest = self.store.tracking._table("latest_metrics")
        latest = latest.filter(pc.is_in(latest["run_id"], value_set=wanted))
        # a run's rows together (a stable sort keeps their order), then each run a slice: the
        # Metric objects made by one map over the columns, its values one dict of a zip
        latest = latest.take(pc.sort_indices(latest["run_id"]))
        keys, values = latest["key"].to_pylist(), latest["value"].to_numpy(zero_copy_only=False).tolist()
        times = [0 if ts is None else ts for ts in millis_column(latest["timestamp"].to_pandas())]
        made = list(map(Metric, keys, values, times, latest["step"].to_pylist()))
        points: dict[str, list[Metric]] = {}
        latest_values: dict[str, dict[str, float]] = {}  # each run's value by key (RunData's metrics)
        runs_column = pc.run_end_encode(latest["run_id"].combine_chunks())
        start = 0
        for run_id, end in zip(runs_column.values.to_pylist(), runs_column.run_ends.to_pylist(), strict=True):
            points[run_id] = made[start:end]
            latest_values[run_id] = dict(zip(keys[start:end], values[start:end], strict=True))
            start = end
        # MLflow's search answers each run's inputs and outputs too (its sqlite store reads
        # them in bulk): one read of the datasets table, one of the searched experiments' models
        datasets = self.store.tracking._table("datasets")
        inputs: dict[str, list[DatasetInput]] = {}
        picked = datasets.filter(pc.is_in(datasets["run_id"], value_set=wanted))
        for row in picked.to_pandas().to_dict("records") if picked.num_rows else ():
            inputs.setdefault(row["run_id"], []).append(_dataset_input(row))
        outputs: dict[str, list[LoggedModelOutput]] = {}
        for model in self.logged_models.models.records(sorted(set(frame["experiment"]))):
            for run_id, step in model.outputs_of.items():
                outputs.setdefault(run_id, []).append(LoggedModelOutput(model.model_id, step))
        ids = {name: r.experiment_id for name, r in records.items()}
        locations = {name: r.artifact_location for name, r in records.items()}
        param_cols = [c for c in frame.columns if c.startswith("params.")]
        tag_cols = [c for c in frame.columns if c.startswith("tags.")]
        # each column read once as a list: a row at a time through pandas cost ~0.5 ms a run
        column = {c: frame[c].tolist() for c in ["run_id", "experiment", "status", "run_name", *param_cols, *tag_cols]}
        starts, ends = (millis_column(frame[c]) for c in ("start_time", "end_time"))
        missing = [None] * len(frame)
        parents = frame["parent_run_id"].tolist() if "parent_run_id" in frame.columns else missing
        deleted = frame["deleted"].tolist() if "deleted" in frame.columns else missing
        params_of = _texts_by_row(len(frame), {c[7:]: column[c] for c in param_cols})
        tags_of = _texts_by_row(len(frame), {c[5:]: column[c] for c in tag_cols})
        runs = []
        for i, run_id in enumerate(column["run_id"]):
            tags = self._mlflow_tags(tags_of[i], column["run_name"][i], None, parents[i])
            params = params_of[i]
            experiment, status = column["experiment"][i], column["status"][i]
            info = RunInfo(run_id=run_id, experiment_id=ids.get(experiment, ""),
                           user_id=tags.get(MLFLOW_USER, ""), status=_STATUS.get(status, status),
                           start_time=starts[i] or 0, end_time=ends[i],
                           lifecycle_stage=LifecycleStage.DELETED if deleted[i] else LifecycleStage.ACTIVE,
                           artifact_uri=self.artifact_uri(run_id, locations.get(experiment)),
                           run_name=tags.get(MLFLOW_RUN_NAME))
            runs.append(Run(info, run_data(points.get(run_id, []), latest_values.get(run_id, {}), params, tags),
                            RunInputs(dataset_inputs=inputs.get(run_id, [])), RunOutputs(outputs.get(run_id, []))))
        return runs

    # -- MLflow 3's logged models (:mod:`.logged_models`) -------------------------------

    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: Sequence[LoggedModelTag] | None = None,
                            params: Sequence[LoggedModelParameter] | None = None,
                            model_type: str | None = None) -> LoggedModel:
        return self.logged_models.create(experiment_id, name, source_run_id, tags, params, model_type)

    def log_logged_model_params(self, model_id: str, params: Sequence[LoggedModelParameter]) -> None:
        self.logged_models.log_params(model_id, params)

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus | str | int) -> LoggedModel:
        return self.logged_models.finalize(model_id, status)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        return self.logged_models.get(model_id, allow_deleted)

    def search_logged_models(self, experiment_ids: Sequence[str], filter_string: str | None = None,
                             datasets: list[dict[str, Any]] | None = None, max_results: int | None = None,
                             order_by: list[dict[str, Any]] | None = None,
                             page_token: str | None = None) -> PagedList[LoggedModel]:
        return self.logged_models.search(experiment_ids, filter_string, datasets, max_results, order_by, page_token)

    def set_logged_model_tags(self, model_id: str, tags: Sequence[LoggedModelTag]) -> None:
        self.logged_models.set_tags(model_id, tags)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.logged_models.delete_tag(model_id, key)

    def delete_logged_model(self, model_id: str) -> None:
        self.logged_models.delete(model_id)

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        self.logged_models.log_outputs(run_id, models)

    def record_logged_model(self, run_id: str, mlflow_model: Any) -> None:
        self.logged_models.record_logged_model(run_id, mlflow_model)


def _not_active(run_id: str) -> MlflowException:
    """MLflow's refusal of a write to a deleted run, in its words."""
    return MlflowException(f"The run {run_id} must be in the 'active' state. Current state is deleted.",
                           error_code=databricks_pb2.INVALID_PARAMETER_VALUE)


def _texts_by_row(rows: int, columns: dict[str, list[Any]]) -> list[dict[str, str]]:
    """Each row's present cells of ``columns`` (name -> its cells), by name: a run's params
    or tags from the search's columns (a cell missing from a run is not a string)."""
    if not columns:
        return [{} for _ in range(rows)]
    names = list(columns)
    return [{name: cell for name, cell in zip(names, row) if isinstance(cell, str)}
            for row in zip(*columns.values(), strict=True)]


_ORDER_PREFIX = {"attribute": "attributes", "metric": "metrics", "parameter": "params", "tag": "tags"}
_ORDER_ALIAS = {"created": "start_time", "Created": "start_time"}  # MLflow's names for a run's start


def _order_by(clauses: Sequence[str] | None) -> list[str]:
    """MLflow's ``order_by`` clauses in mltrail's form: MLflow also takes a bare attribute
    (``start_time DESC``, ``run_name``) and its aliases (``attributes.created``)."""
    ordered = []
    for clause in clauses or []:
        kind, key, ascending = SearchUtils.parse_order_by_for_search_runs(clause)
        column = f"attributes.{_ORDER_ALIAS.get(key, key)}" if kind == "attribute" else f"{_ORDER_PREFIX[kind]}.`{key}`"
        ordered.append(f"{column} {'ASC' if ascending else 'DESC'}")
    return ordered


# MLflow's other names of a run's attributes in a filter
_FILTER_ALIAS = {**_ORDER_ALIAS, "Run name": "run_name", "Run Name": "run_name", "run name": "run_name"}
_FILTER_PREFIX = {**_ORDER_PREFIX, "dataset": "datasets"}  # a run's datasets filter, never order


def _filter(text: str | None) -> str | None:
    """MLflow's filter in mltrail's grammar, which takes what MLflow's does and more (OR, NOT,
    parentheses) but for a bare attribute (``status = 'FINISHED'``) and MLflow's aliases
    (``created``): such a filter, read by MLflow's own parser, is written again with prefixes.
    One neither grammar takes is refused with MLflow's message."""
    if not text:
        return None
    try:
        parse_filter(text)
        return text
    except FilterSyntaxError:
        clauses = SearchUtils.parse_search_filter(text)
    return " AND ".join(_filter_clause(clause) for clause in clauses)


def _filter_clause(clause: dict[str, Any]) -> str:
    prefix = _FILTER_PREFIX.get(clause["type"])
    if prefix is None:
        raise MlflowException(f"mltrail does not search runs by their {clause['type']}s ({clause['key']!r})",
                              error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
    key = _FILTER_ALIAS.get(clause["key"], clause["key"]) if prefix == "attributes" else clause["key"]
    value = clause["value"]
    if clause["comparator"] in ("IN", "NOT IN"):
        literal = "(" + ", ".join(_quoted(v) for v in value) + ")"
    elif prefix == "metrics" or isinstance(value, (int, float)):
        literal = str(value)
    else:
        literal = _quoted(value)
    return f"{prefix}.`{key}` {clause['comparator']} {literal}"


def _quoted(value: Any) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _check_max_results(max_results: int) -> None:
    """MLflow's bounds of a page of runs (its SqlAlchemyStore's, with their messages)."""
    if max_results is None or max_results < 1:
        raise MlflowException(f"Invalid value {max_results} for parameter 'max_results' supplied. It must be "
                              "a positive integer", error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
    if max_results > SEARCH_MAX_RESULTS_THRESHOLD:
        raise MlflowException(f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at "
                              f"most {SEARCH_MAX_RESULTS_THRESHOLD}", error_code=databricks_pb2.INVALID_PARAMETER_VALUE)


def _check_batch(metrics: Sequence[Metric], params: Sequence[Param],
                 tags: Sequence[RunTag]) -> tuple[Sequence[Metric], list[Param], list[RunTag]]:
    """MLflow's own checks of a batch (names, lengths, limits, duplicate params), so a
    batch mltrail would take but MLflow would not is refused as MLflow refuses it; the
    batch as they return it (with MLFLOW_TRUNCATE_LONG_VALUES, long values cut to MLflow's limit)."""
    _validate_batch_log_limits(metrics, params, tags)
    if not _plain_points(metrics):  # MLflow's own check, point by point, raises its exact message
        _validate_batch_log_data(metrics, (), ())
    _, checked_params, checked_tags = _validate_batch_log_data((), params, tags)
    _validate_param_keys_unique(params)
    return metrics, checked_params, checked_tags


_NUMBERS = (float, int)


def _plain_points(metrics: Sequence[Metric]) -> bool:
    """Whether every point passes MLflow's check of a metric, checked a batch at a time: its
    name (by MLflow's own check, once per distinct key) and the types of the value, time and
    step (MLflow's check spends ~15 µs a point on what is the same key a thousand times)."""
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH, _validate_metric_name

    for key in {m.key for m in metrics}:
        if not isinstance(key, str) or len(key) > MAX_ENTITY_KEY_LENGTH:
            return False
        try:
            _validate_metric_name(key)
        except MlflowException:
            return False
    return all(type(m.value) in _NUMBERS and type(m.timestamp) is int and m.timestamp >= 0
               and type(m.step) is int for m in metrics)


def _dataset_of(metric: Metric) -> tuple[str, str | None] | None:
    """A point's dataset as ``log_metric`` takes it (a missing digest is refused there)."""
    return None if metric.dataset_name is None else (metric.dataset_name, metric.dataset_digest)


def _check_datasets(metrics: Sequence[Metric]) -> None:
    """The datasets a batch's points name, checked before any point is written (a batch is
    written whole or not at all): a name or digest an event line cannot hold is refused."""
    for name, digest in {(m.dataset_name, m.dataset_digest) for m in metrics}:
        for what, text in (("dataset_name", name), ("dataset_digest", digest)):
            problem = dataset_text_problem(text)
            if problem:
                raise MlflowException(f"Invalid value {str(text)[:100]!r} for metric {what}: it {problem}",
                                      error_code=databricks_pb2.INVALID_PARAMETER_VALUE)


def _metric_value(metric: Metric) -> float:
    return float(metric.value)


def _text(cell: Any) -> str | None:
    """A text cell of a frame, None where it is missing (None, or NaN in pandas' string dtype)."""
    return cell if isinstance(cell, str) else None


def _log_params(run: MltrailRun, params: Sequence[Param]) -> None:
    for param in params:
        old = run._params.get(param.key)
        if old is not None and old != str(param.value):
            raise MlflowException(
                f"Changing param values is not allowed. Param with key='{param.key}' was already logged "
                f"with value='{old}' for run ID='{run.id}'. Attempted logging new value '{param.value}'.",
                error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
    run.log_params({p.key: str(p.value) for p in params})


def _dataset_fields(item: DatasetInput) -> dict[str, Any]:
    d = item.dataset
    return {"name": d.name, "digest": d.digest, "source_type": d.source_type, "source": d.source,
            "schema": d.schema, "profile": d.profile, "tags": {t.key: t.value for t in item.tags}}


def _dataset_input(row: dict[str, Any]) -> DatasetInput:
    described = mlflow_description(row)
    tags = [InputTag(k, v) for k, v in described.pop("tags").items()]
    return DatasetInput(Dataset(**described), tags)

