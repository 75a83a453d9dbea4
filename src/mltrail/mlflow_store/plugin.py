"""MLflow's plugin seam: ``MLFLOW_TRACKING_URI=mltrail:./runs`` (or ``mltrail:/abs/path``)
makes the real ``mlflow`` package read and write an mltrail folder store.

MLflow finds these classes through the entry points ``mltrail[mlflow]`` declares
(``mlflow.tracking_store``: scheme ``mltrail``; ``mlflow.artifact_repository``: scheme
``mltrail-artifacts``, the artifact URIs of the runs). Each call is MLflow's; what it does
to the store is :class:`.translate.Translation`'s.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from mlflow.entities import DatasetInput, Experiment, ExperimentTag, Metric, Param, Run, RunInfo, RunTag, ViewType
from mlflow.entities import LoggedModel, LoggedModelOutput, LoggedModelParameter, LoggedModelStatus, LoggedModelTag
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT
from mlflow.store.tracking.abstract_store import AbstractStore

from ..store import Store

if TYPE_CHECKING:
    from .translate import Translation

SCHEME = "mltrail"

_translations: dict[Path, Translation] = {}
_translations_lock = threading.Lock()


def store_root(store_uri: str) -> Path:
    """The folder of an ``mltrail:`` URI: ``mltrail:./runs``, ``mltrail:runs``,
    ``mltrail:/abs/path`` or ``mltrail:///abs/path``; relative to the working directory."""
    if not isinstance(store_uri, str) or not store_uri.startswith(f"{SCHEME}:"):
        raise MlflowException(f"not an mltrail URI: {store_uri!r} (mltrail:<folder>)",
                              error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
    rest = store_uri[len(SCHEME) + 1:]
    if rest.startswith("//"):
        parsed = urlparse(store_uri)
        if parsed.netloc not in ("", "localhost"):
            raise MlflowException(f"{store_uri!r}: an mltrail: URI names a folder on this machine; for a server "
                                  "use its http(s):// URL", error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        rest = unquote(parsed.path)
    if not rest:
        raise MlflowException(f"{store_uri!r} names no folder: mltrail:./runs or mltrail:/abs/path",
                              error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
    return Path(rest).expanduser().resolve()


def translation_for(root: Path) -> Translation:
    """One translation per folder and process: every MLflow store object of one URI shares
    the runs this process writes (MLflow builds several, one per client)."""
    with _translations_lock:
        found = _translations.get(root)
        if found is None:
            store = Store(root)
            store.layout.ensure()
            # imported here: importing the translation imports MLflow, whose import loads this
            # module through its entry points (a plugin imported at the top would be half-made)
            from .translate import Translation

            found = _translations[root] = Translation(store)
        return found


class MltrailTrackingStore(AbstractStore):
    """MLflow's tracking store on an mltrail folder."""

    def __init__(self, store_uri: str, artifact_uri: str | None = None) -> None:
        super().__init__()
        self.root = store_root(store_uri)
        self.translation = translation_for(self.root)
        self.artifact_uri = artifact_uri

    # -- experiments -------------------------------------------------------------------

    def search_experiments(self, view_type: int = ViewType.ACTIVE_ONLY, max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
                           filter_string: str | None = None, order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> PagedList[Experiment]:
        return self.translation.search_experiments(view_type, max_results, filter_string, order_by, page_token)

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: Sequence[ExperimentTag] | None = None) -> str:
        return self.translation.create_experiment(name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.translation.get_experiment(experiment_id)

    def get_experiment_by_name(self, experiment_name: str) -> Experiment | None:
        return self.translation.get_experiment_by_name(experiment_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self.translation.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self.translation.restore_experiment(experiment_id)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.translation.rename_experiment(experiment_id, new_name)

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        self.translation.set_experiment_tag(experiment_id, tag)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.translation.delete_experiment_tag(experiment_id, key)

    # -- runs --------------------------------------------------------------------------

    def create_run(self, experiment_id: str, user_id: str, start_time: int, tags: Sequence[RunTag],
                   run_name: str | None) -> Run:
        return self.translation.create_run(experiment_id, user_id, start_time, tags, run_name)

    def get_run(self, run_id: str) -> Run:
        return self.translation.get_run(run_id)

    def update_run_info(self, run_id: str, run_status: Any, end_time: int | None, run_name: str | None) -> RunInfo:
        return self.translation.update_run_info(run_id, run_status, end_time, run_name)

    def delete_run(self, run_id: str) -> None:
        self.translation.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.translation.restore_run(run_id)

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.translation.log_metric(run_id, metric)

    def log_param(self, run_id: str, param: Param) -> None:
        self.translation.log_param(run_id, param)

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self.translation.set_tag(run_id, tag)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.translation.delete_tag(run_id, key)

    def log_batch(self, run_id: str, metrics: Sequence[Metric], params: Sequence[Param],
                  tags: Sequence[RunTag]) -> None:
        self.translation.log_batch(run_id, metrics, params, tags)

    def log_inputs(self, run_id: str, datasets: list[DatasetInput] | None = None,
                   models: list[Any] | None = None) -> None:
        self.translation.log_inputs(run_id, datasets, models)

    def get_metric_history(self, run_id: str, metric_key: str, max_results: int | None = None,
                           page_token: str | None = None) -> PagedList[Metric]:
        return self.translation.get_metric_history(run_id, metric_key, max_results, page_token)

    def _search_runs(self, experiment_ids: Sequence[str], filter_string: str | None, run_view_type: int,
                     max_results: int, order_by: Sequence[str] | None,
                     page_token: str | None) -> tuple[list[Run], str | None]:
        return self.translation.search_runs(experiment_ids, filter_string, run_view_type, max_results, order_by,
                                            page_token)

    # -- MLflow 3's logged models ------------------------------------------------------

    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: list[LoggedModelTag] | None = None, params: list[LoggedModelParameter] | None = None,
                            model_type: str | None = None) -> LoggedModel:
        return self.translation.create_logged_model(experiment_id, name, source_run_id, tags, params, model_type)

    def log_logged_model_params(self, model_id: str, params: list[LoggedModelParameter]) -> None:
        self.translation.log_logged_model_params(model_id, params)

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        return self.translation.finalize_logged_model(model_id, status)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        return self.translation.get_logged_model(model_id, allow_deleted)

    def search_logged_models(self, experiment_ids: list[str], filter_string: str | None = None,
                             datasets: list[dict[str, Any]] | None = None, max_results: int | None = None,
                             order_by: list[dict[str, Any]] | None = None,
                             page_token: str | None = None) -> PagedList[LoggedModel]:
        return self.translation.search_logged_models(experiment_ids, filter_string, datasets, max_results, order_by,
                                                     page_token)

    def set_logged_model_tags(self, model_id: str, tags: list[LoggedModelTag]) -> None:
        self.translation.set_logged_model_tags(model_id, tags)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.translation.delete_logged_model_tag(model_id, key)

    def delete_logged_model(self, model_id: str) -> None:
        self.translation.delete_logged_model(model_id)

    def log_outputs(self, run_id: str, models: list[LoggedModelOutput]) -> None:
        self.translation.log_outputs(run_id, models)

    def record_logged_model(self, run_id: str, mlflow_model: Any) -> None:
        self.translation.record_logged_model(run_id, mlflow_model)
