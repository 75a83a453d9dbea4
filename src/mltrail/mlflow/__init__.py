"""MLflow's tracking API, writing an mltrail store: change ``import mlflow`` to
``import mltrail.mlflow as mlflow`` and a training script runs unchanged.

>>> import mltrail.mlflow as mlflow
>>> mlflow.set_tracking_uri("mltrail_runs")          # doctest: +SKIP
>>> mlflow.set_experiment("churn")                   # doctest: +SKIP
>>> with mlflow.start_run(run_name="baseline"):      # doctest: +SKIP
...     mlflow.log_params({"C": 1.0})
...     mlflow.log_metric("f1", 0.81, step=1)

The calls behave as MLflow's do: params are kept as ``str(value)``; a metric logged
without a step is at step 0; ``start_run`` inside an active run needs ``nested=True``;
runs get MLflow's system tags (``mlflow.runName``, ``mlflow.user``, ``mlflow.source.name``,
``mlflow.parentRunId``), so filters written for MLflow find them; ``search_runs`` answers
in MLflow's columns. An experiment's ID is the one MLflow's plugin and mltrail's server
answer for it (the ID it was imported or created with, else one derived from its name, the
same on every machine; ``Default`` is ``"0"``); its name is taken wherever an ID is, as
mltrail names experiments. In a folder store ``create_experiment`` and ``set_experiment``
make it at once, with its tags, in the store's experiment catalog that MLflow's plugin
writes. A new run goes, as MLflow's, to ``set_experiment``'s experiment, else
``$MLFLOW_EXPERIMENT_NAME``'s (made if missing), else ``$MLFLOW_EXPERIMENT_ID``'s, else
``Default``. ``mlflow.sklearn.log_model`` (and xgboost's, lightgbm's) pickles the
model as ``<name>/model.pkl``; ``load_model`` and ``register_model`` take MLflow's URIs.
The store is the one ``set_tracking_uri`` names (a folder or an
``http(s)://`` mltrail server), else ``$MLTRAIL_DIR``, else ``./mltrail_runs``;
``$MLFLOW_TRACKING_URI`` is not read, since it points at an MLflow server. A call this
module does not have raises :class:`UnsupportedCallError` naming it.

Honest about what it is: every error it raises is an
:class:`~mltrail.mlflow.exceptions.MlflowException` (with MLflow's ``error_code``) as well
as the mltrail error it is, so ``except mlflow.exceptions.MlflowException`` works; files
follow MLflow's rules (``log_dict`` writes YAML for ``*.yaml``/``*.yml`` and JSON for any
other name, ``log_table`` MLflow's JSON table for ``*.json``, ``log_artifact`` of a folder
logs it under its name); and importing the real ``mlflow`` package in the same process
(``import mlflow.sklearn`` rebinds the name ``mlflow`` to MLflow) warns, once, with
:class:`MlflowShadowWarning` (see :mod:`.shadow`). With MLflow installed, the better path is
MLflow's own client on an mltrail store: ``MLFLOW_TRACKING_URI=mltrail:<folder>``.

The runs are mltrail runs: ``mltrail.active_run()``, ``mltrail.autolog()`` and
``mltrail.log_*`` act on the run started here.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import pickle
import posixpath
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
import yaml

from .. import fluent
from ..errors import AlreadyExistsError, InvalidInputError, NotFoundError, RunStateError
from ..integrations import INTEGRATIONS
from ..integrations import autolog as _autolog
from ..query.cells import millis, present
from ..query.filter import parse_filter, parse_order_by
from ..storage.ids import id_time
from ..store import Store
from ..tracking.datasets import describe_memory, mlflow_description
from ..tracking.experiments import DEFAULT_EXPERIMENT_ID, ExperimentCatalog, ExperimentRecord, derived_id
from ..tracking.run import PARENT_TAG, Run
from . import exceptions, shadow, validation
from .exceptions import MlflowException, UnsupportedCallError, as_mlflow_exception, raises_mlflow_exceptions
from .image import Image
from .shadow import MlflowShadowWarning

__all__ = [
    "ActiveRun",
    "Experiment",
    "Image",
    "Metric",
    "MlflowClient",
    "MlflowException",
    "MlflowShadowWarning",
    "ModelInfo",
    "RunData",
    "RunInfo",
    "RunOperations",
    "UnsupportedCallError",
    "active_run",
    "artifacts",
    "autolog",
    "create_experiment",
    "delete_tag",
    "end_run",
    "exceptions",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "lightgbm",
    "load_table",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "pyfunc",
    "register_model",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "sklearn",
    "start_run",
    "xgboost",
]

DEFAULT_EXPERIMENT = "Default"
RUN_VIEWS = {1: "active", 2: "deleted", 3: "all"}  # MLflow's ViewType numbers
_NOTE_TAG = "mlflow.note.content"  # MLflow keeps a run's description in this tag
_MLFLOW_STATUS = {"CRASHED": "FAILED"}  # MLflow has no CRASHED: a run that died reads FAILED there


@dataclass
class _State:
    uri: str | None = None
    store: Store | None = None
    experiment: str | None = None
    last: Run | None = None
    # on a server, the experiments create_experiment named that have no run yet (the server
    # learns of an experiment from its first run): ID -> name, so their ID can start one
    created: dict[str, str] = field(default_factory=dict)
    # run ID -> its experiment's ID, read once a run: active_run() wraps the run anew each call,
    # and a catalog read is files (~3 ms on a store of 20 runs, more as it grows)
    run_experiment_ids: dict[str, str] = field(default_factory=dict)


_state = _State()


# -- where runs go -------------------------------------------------------------------

@raises_mlflow_exceptions
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Log into the mltrail store at ``uri``: a folder (``file:`` URIs too) or a server's
    ``http(s)://`` URL. An MLflow ``mlruns`` folder is refused: import it instead."""
    _state.uri, _state.store = _target(uri), None


def _target(uri: str | os.PathLike[str]) -> str:
    """The store a tracking URI names: a server's URL, or a folder's path."""
    text = os.fspath(uri)
    parsed = urlparse(text)
    if parsed.scheme in ("http", "https"):
        target: str = text
    elif parsed.scheme in ("", "file"):
        folder = Path(unquote(parsed.path) if parsed.scheme == "file" else text).expanduser()
        if _is_mlruns(folder):
            raise InvalidInputError(f"{str(folder)!r} is an MLflow store (mlruns): mltrail does not write into "
                                    f"it. Bring its runs over with `mltrail import mlflow {folder}` and log "
                                    "into an mltrail folder (mltrail_runs, say)")
        target = str(folder)
    else:
        raise InvalidInputError(f"tracking URI {text!r}: mltrail.mlflow logs into a folder or an mltrail "
                                f"server (http(s)://), not a {parsed.scheme}: store")
    return target


@raises_mlflow_exceptions
def get_tracking_uri() -> str:
    return _state.uri or str(fluent.default_store().root)


def _same_store(one: str, other: str) -> bool:
    """Whether two targets name one store (folders by their resolved paths)."""
    if urlparse(one).scheme in ("http", "https") or urlparse(other).scheme in ("http", "https"):
        return one.rstrip("/") == other.rstrip("/")
    return Path(one).resolve() == Path(other).resolve()


def _is_mlruns(folder: Path) -> bool:
    return (folder / "0" / "meta.yaml").is_file() or (folder / ".trash").is_dir()


def _store() -> Store:
    if _state.uri is None:
        return fluent.default_store()
    if _state.store is None:
        _state.store = Store(_state.uri)
    return _state.store


# -- experiments ---------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    """As MLflow's (``experiment_id`` as MLflow's plugin answers it)."""

    name: str
    experiment_id: str
    tags: dict[str, str] = field(default_factory=dict)
    lifecycle_stage: str = "active"
    artifact_location: str = ""


def _experiment(name: str, record: ExperimentRecord | None = None) -> Experiment:
    experiment_id = record.experiment_id if record is not None else derived_id(name)
    return Experiment(name=name, experiment_id=experiment_id, tags=dict(record.tags) if record is not None else {},
                      lifecycle_stage=record.lifecycle_stage if record is not None else "active",
                      artifact_location=get_tracking_uri())


def _catalog(store: Store) -> ExperimentCatalog | None:
    """A folder store's experiments as things of their own (created before their first run,
    tagged: what MLflow's clients write there too); None for a server, whose experiments
    the shim knows by their runs."""
    return store.tracking.catalog if isinstance(store, Store) else None


def _tagged_catalog(store: Store) -> ExperimentCatalog:
    """The catalog, to tag an experiment in; a server's experiments take no tags here."""
    catalog = _catalog(store)
    if catalog is None:
        raise InvalidInputError("on a server, mltrail.mlflow keeps no tags on an experiment: tag its runs, or "
                                "use MLflow's own client with the server as its tracking URI")
    return catalog


def _experiment_ids(store: Store) -> Callable[[str], str]:
    """Name -> the ID MLflow's clients know the experiment by: the one it was created or
    imported with (a folder store's catalog keeps it), else the one derived from its name,
    which is what mltrail's server answers for an experiment it knows by its runs. (On a
    server the shim sees no catalog: an experiment imported into the server's store answers
    its MLflow ID to MLflow's clients there, and the derived one here.)"""
    catalog = _catalog(store)
    records = catalog.records() if catalog is not None else {}

    def experiment_id(name: str) -> str:
        record = records.get(name)
        return record.experiment_id if record is not None else derived_id(name)

    return experiment_id


def _by_id(experiment_id: str) -> str:
    """The experiment an ID names: its name (any ID that is not all digits is one, as
    mltrail names experiments), or the experiment MLflow's clients know by that ID (the ID an
    imported experiment had, or the one derived from its name), so a script that kept
    MLflow's numeric ID still logs where its runs were. An ID naming no experiment is
    taken as a name."""
    if not isinstance(experiment_id, str) or not experiment_id.isdigit():
        return experiment_id
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        return DEFAULT_EXPERIMENT
    store = _store()
    catalog = _catalog(store)
    if catalog is not None:
        records = catalog.records()
        named = [record.name for record in records.values() if record.experiment_id == experiment_id]
    else:
        records = {}
        named = [name for name in sorted(_experiments_with_runs(store)) if derived_id(name) == experiment_id]
        if not named and experiment_id in _state.created:  # made here, no run on the server yet
            named = [_state.created[experiment_id]]
    if named:
        return named[0]
    if experiment_id in records:  # an experiment named by digits
        return experiment_id
    try:  # a run imported from MLflow keeps its experiment's old ID as a tag
        found = store.search_runs(None, f"tags.`mlflow.experiment_id` = '{experiment_id}'", None, 1, view="all")
    except NotFoundError:  # nothing logged into this store yet
        return experiment_id
    return experiment_id if found.empty else str(found["experiment"].iloc[0])


@raises_mlflow_exceptions
def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Runs started after this go to the experiment: one named ``experiment_name`` (made now
    if there is none, as MLflow does), or the one ``experiment_id`` names, which must exist.
    MLflow's rules and words: exactly one of the two, and not a deleted experiment."""
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidInputError("Must specify exactly one: experiment_id or experiment_name")
    client = MlflowClient()
    if experiment_id is not None:
        found: Any = client.get_experiment(str(experiment_id))
        name = found.name
    else:
        validation.check_experiment_name(experiment_name)
        name = str(experiment_name)
        found = client.get_experiment_by_name(name)
        if found is None:
            client.create_experiment(name)
    if found is not None and found.lifecycle_stage == "deleted":
        raise InvalidInputError(f"Cannot set a deleted experiment {name!r} as the active experiment. You can "
                                "restore the experiment, or permanently delete the experiment to create a new one.")
    _state.experiment = name
    return get_experiment_by_name(name) or _experiment(name)


@raises_mlflow_exceptions
def create_experiment(name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None) -> str:
    """The experiment's ID. In a folder store it exists from now on, with its tags; on a
    server it is written with its first run (and takes no tags here)."""
    validation.check_experiment_name(name)
    found = get_experiment_by_name(name)
    if found is not None:  # MLflow's words (and a deleted one's name is taken too, as there)
        deleted = " (deleted: restore it or pick another name)" if found.lifecycle_stage == "deleted" else ""
        raise AlreadyExistsError(f"Experiment(name={name}) already exists.{deleted}")
    store = _store()
    catalog = _tagged_catalog(store) if tags else _catalog(store)
    if catalog is not None:
        return catalog.create(name, artifact_location=artifact_location, tags=tags).experiment_id
    _state.created[derived_id(name)] = name
    return derived_id(name)


@raises_mlflow_exceptions
def get_experiment_by_name(name: str) -> Experiment | None:
    store = _store()
    catalog = _catalog(store)
    if catalog is not None:
        record = catalog.by_name(name)
        if record is not None:
            return _experiment(name, record)
        return _experiment(name) if name == DEFAULT_EXPERIMENT else None  # MLflow's stores always have it
    known = name in _experiment_names(store) or name in _state.created.values() or name == DEFAULT_EXPERIMENT
    return _experiment(name) if known else None


@raises_mlflow_exceptions
def set_experiment_tag(key: str, value: Any) -> None:
    """Tag the current experiment (``set_experiment``'s, else ``Default``), as MLflow's."""
    set_experiment_tags({key: value})


@raises_mlflow_exceptions
def set_experiment_tags(tags: Mapping[str, Any]) -> None:
    catalog = _tagged_catalog(_store())
    name = _current_experiment()
    if catalog.by_name(name) is None:
        catalog.create(name)
    for key, value in tags.items():
        catalog.set_tag(name, key, value)


def _experiment_names(store: Store) -> set[str]:
    """The experiments with runs, and in a folder store those created before their first;
    none in a folder nothing was logged into yet (MLflow's answer for a new tracking folder,
    where mltrail's own read says there is no store)."""
    catalog = _catalog(store)
    return set(catalog.records()) if catalog is not None else _experiments_with_runs(store)


def _experiments_with_runs(store: Store) -> set[str]:
    try:
        return set(store.experiments()["experiment"])
    except NotFoundError:  # a folder (or a server's) that no run was logged into yet
        return set()


@raises_mlflow_exceptions
def get_experiment(experiment_id: str) -> Experiment:
    found = get_experiment_by_name(_by_id(str(experiment_id)))
    if found is None:
        raise NotFoundError(f"No Experiment with id={experiment_id} exists")  # MLflow's words
    return found


def _current_experiment() -> str:
    """The name of the experiment a new run goes to, picked as MLflow picks it:
    ``set_experiment``'s, else the environment's, else ``Default``."""
    return _state.experiment or _experiment_from_env() or DEFAULT_EXPERIMENT


def _experiment_from_env() -> str | None:
    """``$MLFLOW_EXPERIMENT_NAME``'s experiment (made if it does not exist yet), else
    ``$MLFLOW_EXPERIMENT_ID``'s, which must exist; None when neither is set. MLflow's rules
    and words."""
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or None
    given_id = os.environ.get("MLFLOW_EXPERIMENT_ID") or None
    if name is not None:
        found = get_experiment_by_name(name)
        if found is None:
            create_experiment(name)
        elif given_id is not None and given_id not in (found.experiment_id, name):
            raise InvalidInputError(f"The provided MLFLOW_EXPERIMENT_ID environment variable value `{given_id}` "
                                    f"does not match the experiment id `{found.experiment_id}` for experiment "
                                    f"name `{name}`")
        return name
    if given_id is not None:
        try:
            return get_experiment(given_id).name
        except NotFoundError as exc:
            raise InvalidInputError(f"The provided MLFLOW_EXPERIMENT_ID environment variable value `{given_id}` "
                                    "does not exist in the tracking server. Provide a valid experiment_id.") from exc
    return None


@raises_mlflow_exceptions
def _get_experiment_id_from_env() -> str | None:
    """MLflow's helper of this name: the ID of the environment's experiment, or None."""
    name = _experiment_from_env()
    return None if name is None else _experiment_ids(_store())(name)


@raises_mlflow_exceptions
def _get_experiment_id() -> str:
    """MLflow's helper of this name: the ID of the experiment a new run goes to."""
    return _experiment_ids(_store())(_current_experiment())


# -- runs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_name: str
    experiment_id: str
    status: str
    start_time: int | None  # milliseconds, as MLflow's
    end_time: int | None
    user_id: str | None
    artifact_uri: str
    lifecycle_stage: str = "active"

    @property
    def run_uuid(self) -> str:
        return self.run_id


@dataclass(frozen=True)
class RunData:
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    # the latest point of each metric, with its step and time, as MLflow's RunData keeps them
    _metric_objs: list[Metric] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class Dataset:
    """A dataset a run used, as MLflow describes it (``schema`` and ``profile`` are JSON text,
    as MLflow's client gave them; None for a dataset mltrail logged)."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class InputTag:
    key: str
    value: str


@dataclass(frozen=True)
class DatasetInput:
    dataset: Dataset
    tags: list[InputTag] = field(default_factory=list)


@dataclass(frozen=True)
class RunInputs:
    dataset_inputs: list[DatasetInput] = field(default_factory=list)


def _dataset_input(row: dict[str, Any]) -> DatasetInput:
    described = mlflow_description(row)
    tags = [InputTag(k, v) for k, v in described.pop("tags").items()]
    return DatasetInput(Dataset(**described), tags)


@dataclass(frozen=True)
class StoredRun:
    """A run read back (``get_run``, ``search_runs(output_format="list")``), as MLflow's Run."""

    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)


class ActiveRun:
    """What ``start_run`` returns: MLflow's ActiveRun (``.info``, ``.data``, a context
    manager) around the mltrail :class:`~mltrail.Run`, which is ``.run``."""

    def __init__(self, run: Run) -> None:
        self.run = run

    @property
    def info(self) -> RunInfo:
        experiment_id = _state.run_experiment_ids.get(self.run.id)
        if experiment_id is None:
            experiment_id = _state.run_experiment_ids[self.run.id] = _experiment_ids(_store())(self.run.experiment)
        return RunInfo(run_id=self.run.id, run_name=self.run.name, experiment_id=experiment_id,
                       status=self.run.status, start_time=round(id_time(self.run.id) * 1000), end_time=None,
                       user_id=_user(), artifact_uri=f"runs:/{self.run.id}")

    @property
    def data(self) -> RunData:
        return RunData(metrics={}, params=dict(self.run._params), tags=dict(self.run._tags))

    def __enter__(self) -> ActiveRun:
        return self

    @raises_mlflow_exceptions
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.run.__exit__(exc_type, exc, tb)

    def __eq__(self, other: object) -> bool:  # (active_run() wraps the run anew each call)
        return isinstance(other, ActiveRun) and other.run.id == self.run.id

    def __hash__(self) -> int:
        return hash(self.run.id)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@raises_mlflow_exceptions
def start_run(run_id: str | None = None, experiment_id: str | None = None, run_name: str | None = None,
              nested: bool = False, parent_run_id: str | None = None, tags: Mapping[str, Any] | None = None,
              description: str | None = None, log_system_metrics: bool | None = None) -> ActiveRun:
    """Start a run (or resume ``run_id``, else ``$MLFLOW_RUN_ID``'s, which is then used up, as
    in MLflow) and make it the active one."""
    active = fluent.active_run()
    if active is not None and not nested and parent_run_id is None and run_id is None:
        raise RunStateError(f"Run with UUID {active.id} is already active. To start a new run, first end the "
                            "current run with mlflow.end_run(). To start a nested run, call start_run with "
                            "nested=True")  # MLflow's words
    if run_id is None and os.environ.get("MLFLOW_RUN_ID"):
        run_id = os.environ.pop("MLFLOW_RUN_ID")
    if experiment_id is not None and (not isinstance(experiment_id, (str, int)) or isinstance(experiment_id, bool)):
        raise InvalidInputError(f"Invalid experiment id: {experiment_id!r}: an experiment ID is a str (its name "
                                "in mltrail)")
    if description and _NOTE_TAG in (tags or {}):
        raise InvalidInputError(f"Description is already set via the tag {_NOTE_TAG} in tags."  # MLflow's words
                                f"Remove the key {_NOTE_TAG} from the tags or omit the description.")
    store = _store()
    if run_id is not None:
        if store.get_run(run_id)["run"].get("deleted"):
            raise InvalidInputError(f"Cannot start run with ID {run_id} because it is in the deleted state.")
        run = store.start_run(run_id=run_id, log_system_metrics=log_system_metrics)
        # as MLflow's: a resumed run takes the tags, description and name start_run was given
        given = {k: str(v) for k, v in (tags or {}).items()} | ({_NOTE_TAG: description} if description else {})
        if run_name:
            run.set_name(run_name)
            given["mlflow.runName"] = run_name
        if given:
            run.set_tags(given)
    else:
        parent = parent_run_id or (active.id if nested and active is not None else None)
        system = {"mlflow.runName": run_name, "mlflow.user": _user(), "mlflow.source.type": "LOCAL",
                  "mlflow.source.name": sys.argv[0] if sys.argv and sys.argv[0] else None,
                  "mlflow.parentRunId": parent, _NOTE_TAG: description}
        all_tags = {k: v for k, v in system.items() if v} | {k: v for k, v in (tags or {}).items()}
        experiment = get_experiment(str(experiment_id)).name if experiment_id is not None else _current_experiment()
        run = store.start_run(experiment, name=run_name, description=description,
                              tags=all_tags, parent=parent, log_system_metrics=log_system_metrics)
        if run_name is None:  # MLflow tags every run with its name, generated or given
            run.set_tag("mlflow.runName", run.name)
    fluent.push_run(run)
    _state.last = run
    return ActiveRun(run)


@raises_mlflow_exceptions
def active_run() -> ActiveRun | None:
    run = fluent.active_run()
    return None if run is None else ActiveRun(run)


@raises_mlflow_exceptions
def last_active_run() -> StoredRun | None:
    return None if _state.last is None else get_run(_state.last.id)


@raises_mlflow_exceptions
def end_run(status: str = "FINISHED") -> None:
    """End the active run, if there is one (as MLflow, no error when there is none)."""
    run = fluent.active_run()
    if run is not None:
        run.end(status)


def _active() -> Run:
    run = fluent.active_run()
    if run is None:  # MLflow starts a run on the first log call without one
        run = start_run().run
    return run


# -- logging -------------------------------------------------------------------------

class RunOperations:
    """What MLflow's logging calls return when asked not to wait (``synchronous=False``, or
    ``MLFLOW_ENABLE_ASYNC_LOGGING=true``): ``wait()`` returns once the values are written.
    The shim checks and takes each value as it is called (a bad one raises there, as MLflow
    raises it from ``wait()``) and mltrail's run writes its buffer within
    ``MLTRAIL_FLUSH_SECONDS``; ``wait()`` writes it now."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def wait(self) -> None:
        self._run.flush()


def _no_wait(synchronous: bool | None) -> bool:
    """As MLflow: ``synchronous`` if given, else ``MLFLOW_ENABLE_ASYNC_LOGGING``."""
    if synchronous is not None:
        return not synchronous
    return os.environ.get("MLFLOW_ENABLE_ASYNC_LOGGING", "").strip().lower() in ("true", "1")


@raises_mlflow_exceptions
def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """The value, as MLflow returns it (a :class:`RunOperations` when not waiting)."""
    run = _active()
    run.log_param(key, str(value))
    return RunOperations(run) if _no_wait(synchronous) else value


@raises_mlflow_exceptions
def log_params(params: Mapping[str, Any], synchronous: bool | None = None,
               run_id: str | None = None) -> RunOperations | None:
    with _into(run_id) as run:
        run.log_params({k: str(v) for k, v in params.items()})
    return RunOperations(run) if _no_wait(synchronous) else None


@raises_mlflow_exceptions
def log_metric(key: str, value: float, step: int | None = None, synchronous: bool | None = None,
               timestamp: int | None = None, run_id: str | None = None, *, dataset: Any = None,
               **ignored: Any) -> RunOperations | None:
    """One point; ``step`` defaults to 0 and ``timestamp`` (ms) to now, as in MLflow; a
    ``dataset`` (anything with a name and a digest, as MLflow's) is kept with it."""
    return log_metrics({key: value}, step, synchronous, run_id, timestamp, dataset=dataset)


@raises_mlflow_exceptions
def log_metrics(metrics: Mapping[str, float], step: int | None = None, synchronous: bool | None = None,
                run_id: str | None = None, timestamp: int | None = None, *, dataset: Any = None,
                **ignored: Any) -> RunOperations | None:
    """The points at one step and one time (now, in ms, unless ``timestamp`` says), as MLflow
    logs them."""
    step = 0 if step is None else step
    timestamp = int(time.time() * 1000) if timestamp is None else timestamp
    for key, value in metrics.items():
        validation.check_metric(key, value, timestamp, step)
    with _into(run_id) as run:
        for key, value in metrics.items():
            run.log_metric(key, value, step, timestamp=timestamp / 1000, dataset=dataset)
    return RunOperations(run) if _no_wait(synchronous) else None


_ENDED = ("FINISHED", "FAILED", "KILLED")


@contextmanager
def _into(run_id: str | None) -> Iterator[Run]:
    """The run a call with ``run_id`` logs into: the active one (started if there is none),
    or, as MLflow's calls may, a run that has ended, resumed for the call and ended again
    as it had ended. A run another process is writing is refused: one writer a run."""
    if run_id is None:
        yield _active()
        return
    active = fluent.active_run()
    if active is not None and active.id == run_id:
        yield active
        return
    store = _store()
    status = store.get_run(run_id)["run"]["status"]
    if status not in _ENDED:
        raise InvalidInputError(f"run {run_id} is {status}, not this process's active run: mltrail.mlflow logs "
                                "into the active run or a run that has ended (one writer a run)")
    run = store.start_run(run_id=run_id)
    try:
        yield run
    finally:
        run.end(status)


@raises_mlflow_exceptions
def set_tag(key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
    run = _active()
    run.set_tag(key, str(value))
    return RunOperations(run) if _no_wait(synchronous) else None


@raises_mlflow_exceptions
def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> RunOperations | None:
    run = _active()
    run.set_tags({k: str(v) for k, v in tags.items()})
    return RunOperations(run) if _no_wait(synchronous) else None


@raises_mlflow_exceptions
def flush_async_logging() -> None:
    """Write what the active run holds (MLflow's: wait for the values logged without waiting)."""
    run = fluent.active_run()
    if run is not None:
        run.flush()


@raises_mlflow_exceptions
def delete_tag(key: str) -> None:
    """As MLflow's: a tag the run does not have is an error (RESOURCE_DOES_NOT_EXIST)."""
    run = _active()
    if key not in run._tags:
        raise NotFoundError(f"No tag with name: {key} in run with id {run.id}")  # MLflow's words
    run.delete_tag(key)


def _artifact_name(artifact_path: str | None, name: str) -> str:
    return f"{artifact_path.strip('/')}/{name}" if artifact_path and artifact_path.strip("/") else name


@raises_mlflow_exceptions
def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None) -> None:
    """A file, as ``<artifact_path>/<its name>``; a folder, as MLflow logs one, with every
    file under it as ``<artifact_path>/<the folder's name>/<its path in the folder>``."""
    path = Path(local_path)
    if path.is_dir():
        folder_name = path.resolve().name  # "." and "out/" are named as the folder they are
        log_artifacts(path, _artifact_name(artifact_path, folder_name), run_id=run_id)
        return
    if not path.is_file():
        raise InvalidInputError(f"log_artifact takes a file or a folder; {str(path)!r} is neither")
    with _into(run_id) as run:
        run.log_artifact(path, name=_artifact_name(artifact_path, path.name))


@raises_mlflow_exceptions
def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None) -> None:
    """Every file under a folder, as ``<artifact_path>/<its path in the folder>``."""
    folder = Path(local_dir)
    if not folder.is_dir():
        raise InvalidInputError(f"log_artifacts takes a folder; {str(folder)!r} is not one")
    with _into(run_id) as run:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            run.log_artifact(path, name=_artifact_name(artifact_path, path.relative_to(folder).as_posix()))


@raises_mlflow_exceptions
def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """As MLflow's: YAML for ``*.yaml`` and ``*.yml`` (block style), JSON for any other name
    (indented; a value JSON has no type for is written as its ``str``)."""
    if PurePosixPath(artifact_file).suffix in (".yaml", ".yml"):
        try:
            text = yaml.safe_dump(dictionary, indent=2, default_flow_style=False)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"log_dict({artifact_file!r}): YAML cannot hold this value ({exc}); "
                                    "log it as *.json, where values are written as their str") from None
    else:
        text = json.dumps(dictionary, indent=2, default=str)
    log_text(text, artifact_file, run_id)


@raises_mlflow_exceptions
def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    with _into(run_id) as run:
        run.log_text(text, artifact_file)


@raises_mlflow_exceptions
def log_figure(figure: Any, artifact_file: str, *, save_kwargs: Any = None) -> None:
    _active().log_figure(figure, artifact_file)


@raises_mlflow_exceptions
def log_image(image: Any, artifact_file: str | None = None, key: str | None = None, step: int | None = None,
              **ignored: Any) -> None:
    name = artifact_file or (f"images/{key}/step_{step or 0}.png" if key else None)
    if name is None:
        raise InvalidInputError("log_image needs an artifact_file (or a key)")
    _active().log_image(image, name)


_LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # MLflow's list of a run's tables, which load_table reads


@raises_mlflow_exceptions
def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """A DataFrame (or a dict of columns) as MLflow writes a table: ``*.json`` in pandas'
    ``split`` layout (``{"columns": [...], "data": [[...], ...]}``), ``*.parquet`` as Parquet.
    Logging a table again under the same name appends its rows, as MLflow does."""
    if not artifact_file.endswith((".json", ".parquet")):
        raise InvalidInputError(f"log_table({artifact_file!r}): a table is a *.json or a *.parquet artifact")
    if not isinstance(data, (pd.DataFrame, dict)):
        raise InvalidInputError(f"data must be a pandas.DataFrame or a dictionary, not {type(data).__name__}")
    frame = data.copy() if isinstance(data, pd.DataFrame) else _dict_frame(data)
    with _into(run_id) as run:
        _log_table_into(run, frame, artifact_file)


def _log_table_into(run: Run, frame: pd.DataFrame, artifact_file: str) -> None:
    store = _store()
    run.flush()  # the tables this run logged so far, readable by name
    details = store.get_run(run.id)
    for column in frame.columns:  # as MLflow's: a column of images is logged as images, the cells name them
        images = [_is_image(cell) for cell in frame[column]]
        if any(images) and not all(images):
            raise ValueError(f"Column `{column}` contains a mix of images and non-images. Please ensure that all "
                             "elements in the column are of the same type.")  # MLflow's words and class
        if images and all(images):
            frame[column] = [_log_table_image(run, artifact_file, image) for image in frame[column]]
    if artifact_file in set(details["artifacts"]["path"]):
        frame = pd.concat([_read_table(store.artifact_path(run.id, artifact_file), artifact_file, typed=False), frame],
                          ignore_index=True)
    if artifact_file.endswith(".json"):
        run.log_text(frame.to_json(orient="split", index=False, date_format="iso"), artifact_file)
    else:
        run.log_table(frame.reset_index(drop=True), artifact_file)
    listed = json.loads(dict(details["tags"]).get(_LOGGED_ARTIFACTS_TAG) or "[]")
    if {"path": artifact_file, "type": "table"} not in listed:
        run.set_tag(_LOGGED_ARTIFACTS_TAG, json.dumps([*listed, {"path": artifact_file, "type": "table"}]))


def _is_image(cell: Any) -> bool:
    """MLflow's test for an image in a table: it can save and resize itself and has a size
    (a PIL image, an :class:`Image`, or anything alike)."""
    return callable(getattr(cell, "save", None)) and callable(getattr(cell, "resize", None)) and hasattr(cell, "size")


_THUMBNAIL_PIXELS = 256  # the longer side of the small copy the table's viewers show


def _log_table_image(run: Run, artifact_file: str, image: Any) -> dict[str, str]:
    """An image of a table as two artifacts beside it, as MLflow lays them out
    (``table_images/<table>/<uuid>.png`` and a small ``.webp``), and the cell naming them."""
    base = posixpath.join("table_images", posixpath.splitext(artifact_file)[0], uuid.uuid4().hex)
    width, height = image.size
    scale = min(1.0, _THUMBNAIL_PIXELS / max(width, height, 1))
    small = image.resize((max(1, round(width * scale)), max(1, round(height * scale))))
    with tempfile.TemporaryDirectory(dir=run.tracker.layout.cache) as scratch:
        for picture, suffix in ((image, ".png"), (small, ".webp")):
            local = Path(scratch) / f"image{suffix}"
            picture.save(str(local))
            run.log_artifact(local, name=base + suffix)
    return {"type": "image", "filepath": base + ".png", "compressed_filepath": base + ".webp"}


def _dict_frame(data: Mapping[str, Any]) -> pd.DataFrame:
    try:
        return pd.DataFrame(data)
    except ValueError:  # as MLflow: a dict of scalars ({"inputs": "What is MLflow?"}) is one row
        return pd.DataFrame([data])


def _read_table(path: Path, name: str, typed: bool = True) -> pd.DataFrame:
    """The table log_table wrote as ``name`` (in the blob file ``path``); ``typed=False``
    keeps JSON's values as written ("02108" stays text), for appending to it."""
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if typed:
        return pd.read_json(path, orient="split")
    return pd.read_json(path, orient="split", dtype=False)  # (in pandas 3 dtype=False leaves dates as text too)


@raises_mlflow_exceptions
def load_table(artifact_file: str, run_ids: Sequence[str] | None = None,
               extra_columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The table ``artifact_file`` of each run of the current experiment that logged one
    (of ``run_ids`` only, if given), as one DataFrame; ``extra_columns`` adds columns of
    the run (``["run_id"]``: which run each row came from), as MLflow's."""
    runs = search_runs()
    if run_ids:
        runs = runs[runs["run_id"].isin(list(run_ids))]
    if f"tags.{_LOGGED_ARTIFACTS_TAG}" not in runs.columns:
        runs = runs.iloc[0:0]
    else:
        logged = {"path": artifact_file, "type": "table"}
        runs = runs[runs[f"tags.{_LOGGED_ARTIFACTS_TAG}"].map(
            lambda value: isinstance(value, str) and logged in json.loads(value))]
    if runs.empty:
        raise NotFoundError(f"No runs found with the corresponding table artifact: no run of experiment "
                            f"{_current_experiment()!r} logged a table {artifact_file!r}"
                            + (f" (among runs {', '.join(run_ids)})" if run_ids else ""))
    store = _store()
    tables = []
    for _, row in runs.iterrows():
        table = _read_table(store.artifact_path(row["run_id"], artifact_file), artifact_file)
        for column in extra_columns or []:
            table[f"{column}_" if column in table.columns else column] = row[column]
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


@raises_mlflow_exceptions
def get_artifact_uri(artifact_path: str | None = None) -> str:
    """Where the active run's artifacts are (one of them, given ``artifact_path``), as a
    ``runs:/<run_id>[/<artifact_path>]`` URI. mltrail keeps artifacts by their content's
    hash, in no folder of the run's, so there is no file URI to give as MLflow's local store
    does: ``load_model`` and ``register_model`` take this URI, and
    ``mltrail.Store(...).artifact_path(run_id, artifact_path)`` is the file (fetched, from a
    server). Without an active run, one is started, as MLflow's."""
    run = _active()
    path = (artifact_path or "").strip("/")
    return f"runs:/{run.id}/{path}" if path else f"runs:/{run.id}"


@raises_mlflow_exceptions
def log_input(dataset: Any, context: str | None = None, tags: Mapping[str, str] | None = None,
              model: Any = None) -> None:
    """An MLflow dataset (``mlflow.data.from_pandas``, ``from_numpy``...), a DataFrame or an
    array: recorded with the sha256 of its data, its rows and columns; an MLflow dataset with
    MLflow's description of it too (digest, source, schema, profile) and the input's tags,
    which ``get_run(...).inputs`` gives back as MLflow's does."""
    run = _active()
    context = context or (tags or {}).get("mlflow.data.context")
    frame = getattr(dataset, "df", None)
    if frame is None and hasattr(dataset, "features"):  # an MLflow NumpyDataset
        frame = dataset.features
    if frame is None and (isinstance(dataset, (pd.DataFrame, pd.Series)) or hasattr(dataset, "__array__")):
        frame, dataset = dataset, None
    if frame is not None and callable(getattr(dataset, "to_dict", None)):  # MLflow's Dataset describes itself
        input_tags = {str(k): str(v) for k, v in (tags or {}).items() if k != "mlflow.data.context"}
        run.log_mlflow_dataset({**dataset.to_dict(), "tags": input_tags | ({"mlflow.data.context": context}
                                                                           if context else {})}, data=frame)
        return
    if frame is not None:  # unnamed data is named by its hash: two of them are two datasets
        name = getattr(dataset, "name", None) or f"dataset-{describe_memory(frame)['sha256'][:8]}"
        run.log_dataset(frame, name=name, context=context)
        return
    raise InvalidInputError(f"log_input takes an MLflow dataset holding its data (mlflow.data.from_pandas, "
                            f"from_numpy), a DataFrame or an array, not {type(dataset).__name__}")


@raises_mlflow_exceptions
def autolog(log_models: bool = True, disable: bool = False, exclusive: bool = False,
            silent: bool = False, **ignored: Any) -> None:
    """mltrail's autologging (scikit-learn, XGBoost, LightGBM) into this module's store and
    experiment; fits log into the active run, or one of their own."""
    _autolog(_store(), _state.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME"),
             log_models=log_models, disable=disable)


@dataclass(frozen=True)
class ModelInfo:
    """What ``log_model`` returns, as MLflow's: ``model_uri`` loads it back."""

    model_uri: str
    artifact_path: str
    run_id: str
    registered_model_version: int | None = None


class _Flavor:
    """``mlflow.sklearn``, ``mlflow.xgboost``, ``mlflow.lightgbm``, ``mlflow.pyfunc``: their
    ``autolog`` (mltrail's for that library), ``log_model`` (the model pickled as
    ``<name>/model.pkl`` among the run's artifacts, where an MLflow model imported from an
    mlruns folder is too) and ``load_model`` (which unpickles it; a pyfunc model is the
    library's own model, whose ``predict`` takes the same frame)."""

    def __init__(self, name: str) -> None:
        self._name = name

    @raises_mlflow_exceptions
    def autolog(self, log_models: bool = True, disable: bool = False, **ignored: Any) -> None:
        if self._name not in INTEGRATIONS:
            raise UnsupportedCallError(f"mltrail.mlflow does not support mlflow.{self._name}.autolog: "
                                       f"mltrail autologs {', '.join(INTEGRATIONS)}")
        INTEGRATIONS[self._name].autolog(_store(), _state.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME"),
                                         log_models=log_models, disable=disable)

    @raises_mlflow_exceptions
    def log_model(self, model: Any, artifact_path: str | None = None, *, name: str | None = None,
                  registered_model_name: str | None = None, **ignored: Any) -> ModelInfo:
        """Pickle ``model`` into the active run as ``<name>/model.pkl`` (``name`` or
        ``artifact_path``, else ``model``); ``registered_model_name`` registers it too."""
        if self._name == "pyfunc":
            raise UnsupportedCallError("mltrail.mlflow does not support mlflow.pyfunc.log_model (a python_model "
                                       "is MLflow's format): log the model with its library's flavor")
        run = _active()
        folder = (name or artifact_path or "model").strip("/")
        staging = Path(tempfile.mkdtemp(dir=run.tracker.layout.cache))
        try:
            (staging / "model.pkl").write_bytes(pickle.dumps(model))
            run.log_artifact(staging / "model.pkl", name=f"{folder}/model.pkl")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        version = None
        if registered_model_name is not None:
            version = _register(run, f"{folder}/model.pkl", registered_model_name).number
        return ModelInfo(f"runs:/{run.id}/{folder}", folder, run.id, version)

    @raises_mlflow_exceptions
    def load_model(self, model_uri: str, **ignored: Any) -> Any:
        """The model a URI names: ``runs:/ID/model`` (a folder log_model wrote, or a file),
        ``models:/name/3``, ``models:/name@alias``. Unpickling runs code: trusted stores only."""
        return _store().load_model(_model_file(model_uri))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise UnsupportedCallError(f"mltrail.mlflow does not support mlflow.{self._name}.{name}: it has "
                                   f"mlflow.{self._name}.autolog, log_model and load_model")


sklearn = _Flavor("sklearn")
xgboost = _Flavor("xgboost")
lightgbm = _Flavor("lightgbm")
pyfunc = _Flavor("pyfunc")


def _model_file(uri: str) -> str:
    """A ``runs:/`` URI naming a model folder (MLflow's way) as the URI of its pickle."""
    if not isinstance(uri, str) or not uri.startswith("runs:/"):
        return uri
    run_ref, _, path = uri.removeprefix("runs:/").partition("/")
    path = path.strip("/") or "model"
    names = set(_store().get_run(run_ref)["artifacts"]["path"])
    if path not in names and f"{path}/model.pkl" in names:
        path = f"{path}/model.pkl"
    return f"runs:/{run_ref}/{path}"


def _register(run: Run, artifact: str, name: str) -> Any:
    store = _store()
    run.flush()  # the artifact's line on disk (and, to a server, sent) before the registry reads the run
    upload = getattr(store, "upload", None)
    if callable(upload):
        upload()
    if name not in set(store.registry.list()["model"]):
        store.registry.create(name)
    return store.registry.register(name, run.id, artifact)


@raises_mlflow_exceptions
def register_model(model_uri: str, name: str, **ignored: Any) -> Any:
    """Register the model a ``runs:/ID/model`` URI names as a new version of ``name``
    (created if new); an mltrail :class:`~mltrail.ModelVersion` (``.number`` is MLflow's
    ``.version``)."""
    file = _model_file(model_uri)
    if not file.startswith("runs:/"):
        raise InvalidInputError(f"register_model takes a runs:/RUN/PATH URI, not {model_uri!r}")
    run_ref, _, artifact = file.removeprefix("runs:/").partition("/")
    store = _store()
    run_id = store.resolve_run(run_ref)
    if name not in set(store.registry.list()["model"]):
        store.registry.create(name)
    return store.registry.register(name, run_id, artifact)


# -- reading -------------------------------------------------------------------------

@raises_mlflow_exceptions
def get_run(run_id: str) -> StoredRun:
    """A run's info and its data (params, the latest value of each metric, tags) and inputs;
    the active run's as logged so far (MLflow writes each call at once; mltrail's run buffers
    them). As MLflow's, this is ``MlflowClient().get_run``."""
    return MlflowClient().get_run(run_id)


def _flush_if_active(run_id: str) -> None:
    """What this process logged into ``run_id`` so far, written before it is read (MLflow
    writes each call at once; mltrail's run buffers them)."""
    active = fluent.active_run()
    if active is not None and active.id == run_id:
        active.flush()


def _read_run(run_id: str, experiment_ids: Callable[[str], str] | None = None) -> StoredRun:
    _flush_if_active(run_id)
    store = _store()
    details = store.get_run(run_id)
    info = details["run"]
    latest = [Metric(r["key"], float("nan") if r["value"] is None else float(r["value"]),
                     millis(r.get("timestamp")) or 0, int(r["step"])) for r in details["metrics"].to_dict("records")]
    metrics = {m.key: m.value for m in latest}
    params = {r["key"]: r["value"] for r in details["params"].to_dict("records")}
    experiment_id = (experiment_ids or _experiment_ids(store))(info["experiment"])
    inputs = RunInputs([_dataset_input(row) for row in details["datasets"].to_dict("records")])
    return StoredRun(
        info=RunInfo(run_id=info["run_id"], run_name=info.get("run_name") or "", experiment_id=experiment_id,
                     status=_MLFLOW_STATUS.get(info["status"], info["status"]),
                     start_time=millis(info.get("start_time")), end_time=millis(info.get("end_time")),
                     user_id=info.get("user"), artifact_uri=f"runs:/{info['run_id']}",
                     lifecycle_stage="deleted" if info.get("deleted") else "active"),
        data=RunData(metrics=metrics, params=params, tags=dict(details["tags"]), _metric_objs=latest), inputs=inputs)


@raises_mlflow_exceptions
def get_parent_run(run_id: str) -> StoredRun | None:
    """The run ``run_id`` was started under (``nested=True`` or ``parent_run_id``), or None."""
    parent = get_run(run_id).data.tags.get("mlflow.parentRunId")
    return None if parent is None else get_run(parent)


@raises_mlflow_exceptions
def search_runs(experiment_ids: Sequence[str] | None = None, filter_string: str = "", run_view_type: int = 1,
                max_results: int = 100_000, order_by: Sequence[str] | None = None, output_format: str = "pandas",
                search_all_experiments: bool = False, experiment_names: Sequence[str] | None = None) -> Any:
    """Runs as MLflow lays them out: ``run_id, experiment_id, status, artifact_uri,
    start_time, end_time``, then ``metrics.*``, ``params.*`` (text) and ``tags.*``;
    newest first unless ``order_by`` says. Without experiments, the current one (all of
    them with ``search_all_experiments``)."""
    if run_view_type not in RUN_VIEWS:
        raise InvalidInputError(f"run_view_type is 1 (active), 2 (deleted) or 3 (all), not {run_view_type!r}")
    if output_format not in ("pandas", "list"):
        raise InvalidInputError(f"output_format is 'pandas' or 'list', not {output_format!r}")
    if experiment_ids and experiment_names:  # MLflow's words
        raise InvalidInputError("Only experiment_ids or experiment_names can be used, but not both")
    names = [_by_id(str(i)) for i in experiment_ids or []] + list(experiment_names or [])
    store = _store()
    known = _experiments_with_runs(store)  # (one created but without a run yet has none to find)
    if not names and not search_all_experiments:
        names = [_current_experiment()]
    chosen = [n for n in names if n in known] if names else sorted(known)
    if not chosen:  # as MLflow: no such experiment (or no run yet) is no runs, but a bad filter is an error
        if filter_string and filter_string.strip():
            parse_filter(filter_string)
        for clause in [order_by] if isinstance(order_by, str) else order_by or []:
            parse_order_by(clause)
        return [] if output_format == "list" else pd.DataFrame({c: pd.Series(dtype=object) for c in _MLFLOW_COLUMNS})
    frame = store.search_runs(chosen, filter_string or None, order_by, max_results, view=RUN_VIEWS[run_view_type])
    experiment_id = _experiment_ids(store)
    if output_format == "list":
        return [_read_run(run_id, experiment_id) for run_id in frame["run_id"]]
    return _mlflow_frame(frame, experiment_id)


_MLFLOW_COLUMNS = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]


def _mlflow_frame(frame: pd.DataFrame, experiment_id: Callable[[str], str]) -> pd.DataFrame:
    ids = {name: experiment_id(name) for name in frame["experiment"].unique()}
    out = pd.DataFrame({
        "run_id": frame["run_id"].astype(object), "experiment_id": frame["experiment"].map(ids).astype(object),
        "status": frame["status"].replace(_MLFLOW_STATUS).astype(object),
        "artifact_uri": ("runs:/" + frame["run_id"]).astype(object),
        "start_time": frame["start_time"], "end_time": frame["end_time"]}, index=frame.index)
    metrics = sorted(c for c in frame.columns if c.startswith("metrics."))
    params = sorted(c for c in frame.columns if c.startswith("params."))
    tags = sorted(c for c in frame.columns if c.startswith("tags.") and c != f"tags.{PARENT_TAG}")
    columns = {c: frame[c] for c in metrics}
    columns |= {c: frame[c].map(lambda v: None if present(v) is None else str(v)) for c in params}
    columns |= {c: frame[c] for c in tags}
    return pd.concat([out, pd.DataFrame(columns, index=frame.index)], axis=1).reset_index(drop=True)


# -- the client ----------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """A point of a metric's history, as MLflow's ``Metric`` (``timestamp`` in ms)."""

    key: str
    value: float
    timestamp: int
    step: int


@dataclass(frozen=True)
class _Tag:
    key: str
    value: Any


class MlflowClient:
    """MLflow's ``MlflowClient`` for reading runs and experiments and making experiments, on
    the store ``set_tracking_uri`` names (``tracking_uri``, if given, must name it too: the
    shim keeps one store). A call it does not have raises :class:`UnsupportedCallError`
    naming it; the registry's calls are mltrail's registry (``store.registry``)."""

    def __init__(self, tracking_uri: str | os.PathLike[str] | None = None, registry_uri: str | None = None) -> None:
        if tracking_uri is not None and not _same_store(_target(tracking_uri), get_tracking_uri()):
            raise as_mlflow_exception(InvalidInputError(
                f"MlflowClient({os.fspath(tracking_uri)!r}): mltrail.mlflow's client reads the store "
                f"set_tracking_uri names ({get_tracking_uri()!r}); set that one first"))

    @raises_mlflow_exceptions
    def get_run(self, run_id: str) -> StoredRun:
        return _read_run(run_id)

    @raises_mlflow_exceptions
    def get_parent_run(self, run_id: str) -> StoredRun | None:
        return get_parent_run(run_id)

    @raises_mlflow_exceptions
    def get_experiment(self, experiment_id: str) -> Experiment:
        return get_experiment(experiment_id)

    @raises_mlflow_exceptions
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return get_experiment_by_name(name)

    @raises_mlflow_exceptions
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: Mapping[str, Any] | None = None) -> str:
        return create_experiment(name, artifact_location, tags)

    @raises_mlflow_exceptions
    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        _tagged_catalog(_store()).set_tag(get_experiment(experiment_id).name, key, value)

    @raises_mlflow_exceptions
    def delete_experiment(self, experiment_id: str) -> None:
        """As MLflow's: its runs are hidden with it, and its name stays taken until restored."""
        _tagged_catalog(_store()).delete(get_experiment(experiment_id).name)

    @raises_mlflow_exceptions
    def restore_experiment(self, experiment_id: str) -> None:
        _tagged_catalog(_store()).restore(get_experiment(experiment_id).name)

    @raises_mlflow_exceptions
    def delete_run(self, run_id: str) -> None:
        _store().delete_run(run_id)

    @raises_mlflow_exceptions
    def restore_run(self, run_id: str) -> None:
        _store().restore_run(run_id)

    @raises_mlflow_exceptions
    def log_metric(self, run_id: str, key: str, value: float, timestamp: int | None = None,
                   step: int | None = None, synchronous: bool | None = None, **ignored: Any) -> RunOperations | None:
        """Into the active run, or a run that has ended (resumed for the call)."""
        return log_metrics({key: value}, step, synchronous, run_id, timestamp)

    @raises_mlflow_exceptions
    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        log_params({key: value}, synchronous, run_id)
        return value

    @raises_mlflow_exceptions
    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        """On the active run, or on any run after it ended (an edit, as ``mltrail tag``)."""
        self.log_batch(run_id, tags=[_Tag(key, value)], synchronous=synchronous)

    @raises_mlflow_exceptions
    def log_batch(self, run_id: str, metrics: Sequence[Any] = (), params: Sequence[Any] = (),
                  tags: Sequence[Any] = (), synchronous: bool | None = None) -> RunOperations | None:
        """MLflow's entities (``Metric``, ``Param``, ``RunTag``: anything with their fields),
        checked as MLflow checks a batch before any is written; into the active run, or a run
        that has ended (resumed for the call). Tags alone on an ended run are an edit of it."""
        validation.check_batch(metrics, params, tags)
        active = fluent.active_run()
        if (active is None or active.id != run_id) and not metrics and not params:
            store = _store()
            for tag in tags:
                store.set_tag(run_id, tag.key, str(tag.value))
            return None
        with _into(run_id) as run:
            if params:
                run.log_params({p.key: str(p.value) for p in params})
            for m in metrics:
                run.log_metric(m.key, m.value, m.step, timestamp=m.timestamp / 1000)
            if tags:
                run.set_tags({t.key: str(t.value) for t in tags})
        return RunOperations(run) if _no_wait(synchronous) else None

    @raises_mlflow_exceptions
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of ``key`` on the run in MLflow's order (its sqlite store's, and the
        plugin's): by time, then step, then value."""
        _flush_if_active(run_id)
        store = _store()
        run_id = store.resolve_run(run_id)  # (a run that does not exist is an error, not an empty history)
        history = store.metric_history([run_id], [key])
        points = [Metric(key=key, value=float(value), timestamp=millis(ts) or 0, step=int(step))
                  for step, value, ts in zip(history["step"], history["value"], history["timestamp"], strict=True)]
        return sorted(points, key=lambda m: (m.timestamp, m.step, math.isnan(m.value), m.value))

    @raises_mlflow_exceptions
    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "", run_view_type: int = 1,
                    max_results: int = 1000, order_by: Sequence[str] | None = None) -> list[StoredRun]:
        found: list[StoredRun] = search_runs(list(experiment_ids), filter_string, run_view_type, max_results,
                                             order_by, output_format="list")
        return found

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise UnsupportedCallError(
            f"mltrail.mlflow's MlflowClient does not support {name}: it reads runs and experiments "
            "(get_run, get_parent_run, get_experiment, get_experiment_by_name, get_metric_history, search_runs), "
            "logs into the active run (log_metric, log_param, set_tag, log_batch), deletes and restores runs and "
            "experiments, and makes and tags experiments; for models use mltrail's registry (store.registry)")


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise UnsupportedCallError(
        f"mltrail.mlflow does not support mlflow.{name}: it has MLflow's tracking calls "
        f"({', '.join(n for n in __all__ if n[0].islower())}); "
        "for models use mltrail's registry (store.registry), for anything else mltrail's own API")


# the `import mlflow.sklearn` trap: say so when the real MLflow is imported beside this module
shadow.watch()

from . import artifacts, tracking  # (they use what is defined above, so imported last)
