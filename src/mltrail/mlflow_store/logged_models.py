"""MLflow 3's logged models on an mltrail store, in MLflow's entities.

``mlflow.<flavor>.log_model`` creates a logged model through the tracking store, writes
the saved model's folder through the artifact repository at the model's
``artifact_location`` (``mltrail-artifacts:/models/<model ID>?root=<store>``, served by
:mod:`.artifacts`), links it to the run as an output, copies the run's metrics of that step
to it and finalizes it. The state is :class:`mltrail.tracking.logged_models.LoggedModels`';
this module only translates: MLflow's experiment IDs to experiment names, statuses,
milliseconds, and mltrail's errors to MLflow's. :class:`.translate.Translation` delegates
here; :mod:`.plugin` and the server's MLflow REST API call the translation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlflow.entities import (
    LoggedModel,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    RunTag,
)
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT
from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_MODELS
from mlflow.utils.name_utils import _generate_random_name
from mlflow.utils.search_utils import SearchLoggedModelsUtils
from mlflow.utils.validation import _validate_logged_model_name, _validate_param, _validate_tag_name

from ..tracking.logged_models import LoggedModelRecord, ModelMetricPoint
from .common import ARTIFACTS_SCHEME, MODELS_PATH, mlflow_errors

if TYPE_CHECKING:
    from .translate import Translation



def model_artifact_uri(root: str, model_id: str) -> str:
    """Where MLflow's client writes and reads a logged model's files."""
    return f"{ARTIFACTS_SCHEME}:/{MODELS_PATH}/{model_id}?root={quote(root, safe='')}"


class LoggedModelTranslation:
    """MLflow's logged-model calls on one store, for one :class:`.translate.Translation`
    (which answers the experiment IDs and runs they name)."""

    def __init__(self, translation: Translation) -> None:
        self.translation = translation
        self.models = translation.store.tracking.logged_models

    # -- reading -----------------------------------------------------------------------

    def entity(self, record: LoggedModelRecord, experiment_ids: dict[str, str] | None = None) -> LoggedModel:
        ids = experiment_ids if experiment_ids is not None else self._experiment_ids()
        return LoggedModel(
            experiment_id=ids.get(record.experiment, ""), model_id=record.model_id, name=record.name,
            artifact_location=self.artifact_location(record.model_id),
            creation_timestamp=_ms(record.creation_time), last_updated_timestamp=_ms(record.last_update_time),
            model_type=record.model_type, source_run_id=record.source_run_id,
            status=LoggedModelStatus(record.status), tags=dict(record.tags), params=dict(record.params),
            metrics=_latest_metrics(record))

    def artifact_location(self, model_id: str) -> str:
        """Where MLflow's client writes and reads the model's files: in the store (the
        plugin's scheme), or on a server through its artifact proxy (``mlflow-artifacts:/models/<model ID>``)."""
        root = self.translation.artifact_root
        if root is not None:
            return f"{root.rstrip('/')}/{MODELS_PATH}/{model_id}"
        return model_artifact_uri(str(self.translation.store.root), model_id)

    def experiment_of(self, model_id: str) -> str:
        """The name of the experiment the model (deleted or not) belongs to."""
        with mlflow_errors():
            return self.models.get(model_id, deleted=True).experiment

    def file_sizes(self, model_id: str) -> dict[str, int]:
        """The model's files: path inside the model -> size in bytes."""
        with mlflow_errors():
            return {path: f.size for path, f in self.models.get(model_id).files.items()}

    def file(self, model_id: str, path: str) -> Path:
        """The local file holding the model's file ``path``."""
        with mlflow_errors():
            return self.models.file_path(model_id, path)

    def log_files(self, model_id: str, files: Sequence[tuple[str, Path]], *, by: str | None = None) -> None:
        """Local files into the model as ``(path inside the model, local file)``: one event."""
        with mlflow_errors():
            self.models.log_files(model_id, files, by=by)

    def get(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        with mlflow_errors():
            return self.entity(self.models.get(model_id, deleted=allow_deleted))

    def search(self, experiment_ids: Sequence[str], filter_string: str | None = None,
               datasets: list[dict[str, Any]] | None = None, max_results: int | None = None,
               order_by: list[dict[str, Any]] | None = None, page_token: str | None = None) -> PagedList[LoggedModel]:
        """MLflow's search: its own filter grammar and ordering, in memory (as its file store)."""
        if datasets and not all(d.get("dataset_name") for d in datasets):
            raise MlflowException("`dataset_name` in the `datasets` clause must be specified.",
                                  error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        ids = self._experiment_ids()
        wanted = {str(i) for i in experiment_ids}
        names = [name for name, eid in ids.items() if eid in wanted]
        found = [self.entity(r, ids) for r in self.models.records(names)]
        found = SearchLoggedModelsUtils.filter_logged_models(found, filter_string, datasets)
        found = SearchLoggedModelsUtils.sort(found, order_by)
        page, token = SearchLoggedModelsUtils.paginate(found, page_token,
                                                       max_results or SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT)
        return PagedList(page, token.decode() if isinstance(token, bytes) else token)

    def run_outputs(self, run_id: str, experiment: str | None = None) -> list[LoggedModelOutput]:
        """The models a run (of ``experiment``, by name, when known) has as outputs: MLflow's
        ``run.outputs.model_outputs``. A model logged elsewhere that names the run is not
        looked for when the experiment is given: only the run's own experiment is read."""
        outputs = self.models.outputs_of_run(run_id, experiment)
        return [LoggedModelOutput(model_id, step) for model_id, step in outputs.items()]

    def _experiment_ids(self) -> dict[str, str]:
        return {name: r.experiment_id for name, r in self.translation.catalog.records().items()}

    # -- writing -----------------------------------------------------------------------

    def create(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
               tags: Sequence[LoggedModelTag] | None = None, params: Sequence[LoggedModelParameter] | None = None,
               model_type: str | None = None, *, by: str | None = None) -> LoggedModel:
        """(``by``, here and in the other writes: who acted, a server's caller; else this
        process's user.)"""
        _validate_logged_model_name(name)
        for param in params or []:
            _validate_param(param.key, param.value)
        experiment = self.translation.get_experiment(experiment_id)
        if experiment.lifecycle_stage != "active":
            raise MlflowException(f"Could not create model under non-active experiment with ID {experiment_id}.",
                                  error_code=databricks_pb2.INVALID_STATE)
        with mlflow_errors():
            record = self.models.create(experiment.name, name or _generate_random_name(), model_type=model_type,
                                        source_run_id=source_run_id, params={p.key: p.value for p in params or []},
                                        tags={t.key: t.value for t in tags or []}, by=by)
        return self.entity(record)

    def log_params(self, model_id: str, params: Sequence[LoggedModelParameter], *, by: str | None = None) -> None:
        for param in params or []:
            _validate_param(param.key, param.value)
        with mlflow_errors():
            self.models.log_params(model_id, {p.key: p.value for p in params or []}, by=by)

    def finalize(self, model_id: str, status: LoggedModelStatus | str | int, *, by: str | None = None) -> LoggedModel:
        if isinstance(status, int) and not isinstance(status, LoggedModelStatus):
            status = LoggedModelStatus.from_int(status)
        with mlflow_errors():
            return self.entity(self.models.finalize(model_id, str(status), by=by))

    def set_tags(self, model_id: str, tags: Sequence[LoggedModelTag], *, by: str | None = None) -> None:
        for tag in tags:
            _validate_tag_name(tag.key)
        with mlflow_errors():
            self.models.set_tags(model_id, {t.key: t.value for t in tags}, by=by)

    def delete_tag(self, model_id: str, key: str, *, by: str | None = None) -> None:
        with mlflow_errors():
            self.models.delete_tag(model_id, key, by=by)

    def delete(self, model_id: str, *, by: str | None = None) -> None:
        with mlflow_errors():
            self.models.delete(model_id, by=by)

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput], *, by: str | None = None) -> None:
        """The run made these models: checked to exist, so a typo is not a dangling link."""
        self.translation.get_run(run_id)
        with mlflow_errors():
            for output in models:
                self.models.log_output(output.model_id, run_id, int(output.step or 0), by=by)

    def log_metrics(self, run_id: str, metrics: Sequence[Metric], *, by: str | None = None) -> None:
        """The points of a run's batch that name a model (``Metric.model_id``), kept on it too."""
        by_model: dict[str, list[ModelMetricPoint]] = {}
        for m in metrics:
            if m.model_id:
                by_model.setdefault(m.model_id, []).append(ModelMetricPoint(
                    key=m.key, value=float(m.value), step=int(m.step or 0),
                    timestamp=(m.timestamp or 0) / 1000, dataset_name=m.dataset_name, dataset_digest=m.dataset_digest))
        with mlflow_errors():
            for model_id, points in by_model.items():
                self.models.log_metrics(model_id, points, run_id=run_id, by=by)

    def new_to_run(self, run_id: str, metrics: Sequence[Metric]) -> list[Metric]:
        """The points of a batch the run does not hold yet. ``log_model`` sends the run's
        points of its step again, naming the model: the model gets them, the run keeps one
        copy (MLflow's sqlite store, whose key is the whole point, does the same)."""
        held: set[tuple[str, int, int, str]] = set()
        for key in {m.key for m in metrics if m.model_id}:
            held.update(_point(p) for p in self.translation.get_metric_history(run_id, key))
        # a time read back may differ by a millisecond (seconds as a float in between)
        return [m for m in metrics
                if not (m.model_id and {_point(m, shift) for shift in (-1, 0, 1)} & held)]

    def record_logged_model(self, run_id: str, mlflow_model: Any) -> None:
        """MLflow 2's record of a model on its run: the ``mlflow.log-model.history`` tag, a
        JSON list that grows by one entry per model (as MLflow's stores keep it)."""
        from mlflow.models import Model  # heavy: only a model's logging needs it, and has loaded it

        if not isinstance(mlflow_model, Model):
            raise TypeError(f"Argument 'mlflow_model' should be mlflow.models.Model, got '{type(mlflow_model)}'")
        previous = self.translation.get_run(run_id).data.tags.get(MLFLOW_LOGGED_MODELS)
        history = json.loads(previous) if previous else []
        history.append(mlflow_model.get_tags_dict())
        self.translation.set_tag(run_id, RunTag(MLFLOW_LOGGED_MODELS, json.dumps(history)))


def _point(metric: Metric, shift: int = 0) -> tuple[str, int, int, str]:
    """A run's metric point as a set member (NaN equal to NaN), its time moved by ``shift`` ms."""
    return metric.key, int(metric.step or 0), int(metric.timestamp or 0) + shift, repr(float(metric.value))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _latest_metrics(record: LoggedModelRecord) -> list[Metric]:
    """The model's latest point of each metric and dataset (largest step, then time), as
    MLflow's file store answers them."""
    latest: dict[tuple[str, str | None, str | None], ModelMetricPoint] = {}
    for point in record.metrics:
        group = (point.key, point.dataset_name, point.dataset_digest)
        seen = latest.get(group)
        if seen is None or (point.step, point.timestamp) >= (seen.step, seen.timestamp):
            latest[group] = point
    return [Metric(p.key, p.value, _ms(p.timestamp), p.step, model_id=record.model_id, dataset_name=p.dataset_name,
                   dataset_digest=p.dataset_digest, run_id=p.run_id) for p in latest.values()]
