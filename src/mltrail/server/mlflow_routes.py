"""MLflow's REST API on ``mltrail server``: ``MLFLOW_TRACKING_URI=http://host:5050`` works
for MLflow's Python client and for any language's MLflow client.

The routes are MLflow's (``/api/2.0/mlflow/...`` and the UI's ``/ajax-api/2.0/mlflow/...``),
their requests and answers MLflow's protobuf messages in MLflow's JSON (parsed and written
by MLflow's own ``parse_dict`` and ``message_to_json``), their errors MLflow's
(``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}`` with MLflow's status). What a
call does is :class:`mltrail.mlflow_store.translate.Translation`'s, the same as the
``mltrail:`` plugin's, behind the server's permission gate: a user sees and changes only
the experiments (and so the runs) their grants allow, as on the native API. A run's
artifacts go through MLflow's artifact proxy, ``/api/2.0/mlflow-artifacts/artifacts/...``,
streamed both ways.

Authentication as MLflow's clients send it: ``MLFLOW_TRACKING_TOKEN`` arrives as a bearer
token, ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` as basic auth (the password is the user's
mltrail token); the app's middleware maps both onto mltrail's users.

This module needs MLflow (``mltrail[mlflow]``); a server without it has no MLflow routes.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from google.protobuf.message import Message
from mlflow.entities import ExperimentTag, Metric, Param, RunTag
from mlflow.entities import LoggedModelOutput, LoggedModelParameter, LoggedModelStatus, LoggedModelTag
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2
from mlflow.protos import model_registry_pb2 as mr
from mlflow.protos import service_pb2 as pb
from mlflow.store.artifact.utils.models import _parse_model_uri
from mlflow.utils.proto_json_utils import message_to_json, parse_dict
from starlette.concurrency import run_in_threadpool

from ..errors import MltrailError, NotFoundError
from ..mlflow_store.common import MODELS_PATH, mlflow_errors
from ..mlflow_store.registry import registry_translation
from ..mlflow_store.translate import Translation
from ..store import Store
from .bodies import read_body
from .gate import Gate, gate

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
ARTIFACT_ROOT = "mlflow-artifacts:"

Handler = Callable[[Any, Gate, Translation], Message]


def _error(exc: MlflowException) -> JSONResponse:
    return JSONResponse(json.loads(exc.serialize_as_json()), exc.get_http_status_code())


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=databricks_pb2.INVALID_PARAMETER_VALUE)


def _request(message: Message, request: Request, body: bytes) -> Message:
    """A request's fields as MLflow's server reads them: a GET's from its query (repeated
    fields as lists), a POST's from its JSON body."""
    if request.method == "GET":
        fields: dict[str, Any] = {}
        for field in message.DESCRIPTOR.fields:
            values = request.query_params.getlist(field.name)
            if values:
                # (protobuf 6 has is_repeated; older ones only the label)
                repeated = getattr(field, "is_repeated", None)
                if repeated is None:
                    repeated = field.label == field.LABEL_REPEATED
                fields[field.name] = values if repeated else values[-1]
    else:
        try:
            fields = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            raise _invalid(f"the request body is not JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise _invalid("the request body is a JSON object of the call's fields")
    try:
        parse_dict(fields, message)
    except Exception as exc:  # protobuf's ParseError, or a value of the wrong type
        raise _invalid(f"Invalid request: {exc}") from None
    return message


def _parsed(kind: type[Message], request: Request, body: bytes) -> Any:
    """A request as its call's message (a plain log-batch straight into MLflow's entities)."""
    return (kind is pb.LogBatch and _plain_batch(body)) or _request(kind(), request, body)


def _run_id(message: Any) -> str:
    run_id = message.run_id or getattr(message, "run_uuid", "")
    if not run_id:
        raise MlflowException("Missing value for required parameter 'run_id'.",
                              error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
    return str(run_id)


def _experiment_of_run(g: Gate, t: Translation, run_id: str, level: str) -> None:
    """The run exists for the caller at ``level`` (its experiment's), else MLflow's 404/403."""
    with mlflow_errors():
        try:
            g.require_run(run_id, t.experiment_of(run_id), level, "change this run")
        except NotFoundError:  # (one the caller may not read: the same words as one not there)
            raise NotFoundError(f"Run '{run_id}' not found") from None


def _experiment(g: Gate, t: Translation, experiment_id: str, level: str) -> str:
    """The name of an experiment the caller may reach at ``level``; one they may not read
    is "no experiment" by its ID (its name is not theirs to learn)."""
    record = t._record(experiment_id)
    if not g.readable("experiment", [record.name]):
        raise MlflowException(f"No Experiment with id={experiment_id} exists",
                              error_code=databricks_pb2.RESOURCE_DOES_NOT_EXIST)
    with mlflow_errors():
        g.require("experiment", record.name, level)
    return record.name


# -- the calls ---------------------------------------------------------------------------

def create_experiment(m: Any, g: Gate, t: Translation) -> Message:
    if m.artifact_location:  # MLflow's clients would send the experiment's files there, past the server
        raise _invalid("this server keeps every run's artifacts itself (its artifact proxy): an experiment is "
                       f"created without an artifact_location, not {m.artifact_location!r}")
    experiment_id = t.create_experiment(m.name, None, [ExperimentTag(x.key, x.value) for x in m.tags],
                                        by=g.by(None))
    g.created("experiment", m.name)
    return pb.CreateExperiment.Response(experiment_id=experiment_id)


def get_experiment(m: Any, g: Gate, t: Translation) -> Message:
    _experiment(g, t, m.experiment_id, "read")
    return pb.GetExperiment.Response(experiment=t.get_experiment(m.experiment_id).to_proto())


def get_experiment_by_name(m: Any, g: Gate, t: Translation) -> Message:
    found = t.get_experiment_by_name(m.experiment_name)
    if found is None or not g.readable("experiment", [found.name]):
        raise MlflowException(f"Could not find experiment with name '{m.experiment_name}'",
                              error_code=databricks_pb2.RESOURCE_DOES_NOT_EXIST)
    return pb.GetExperimentByName.Response(experiment=found.to_proto())


def search_experiments(m: Any, g: Gate, t: Translation) -> Message:
    page = t.search_experiments(m.view_type or 1, m.max_results or 1000, m.filter or None, list(m.order_by),
                                m.page_token or None, visible=None if g.sees_everything() else
                                (lambda name: bool(g.readable("experiment", [name]))))
    return pb.SearchExperiments.Response(experiments=[e.to_proto() for e in page],
                                         next_page_token=page.token or "")


def delete_experiment(m: Any, g: Gate, t: Translation) -> Message:
    _experiment(g, t, m.experiment_id, "manage")
    t.delete_experiment(m.experiment_id, by=g.by(None))
    return pb.DeleteExperiment.Response()


def restore_experiment(m: Any, g: Gate, t: Translation) -> Message:
    _experiment(g, t, m.experiment_id, "manage")
    t.restore_experiment(m.experiment_id, by=g.by(None))
    return pb.RestoreExperiment.Response()


def update_experiment(m: Any, g: Gate, t: Translation) -> Message:
    _experiment(g, t, m.experiment_id, "manage")
    t.rename_experiment(m.experiment_id, m.new_name)
    return pb.UpdateExperiment.Response()


def set_experiment_tag(m: Any, g: Gate, t: Translation) -> Message:
    _experiment(g, t, m.experiment_id, "edit")
    t.set_experiment_tag(m.experiment_id, ExperimentTag(m.key, m.value), by=g.by(None))
    return pb.SetExperimentTag.Response()


def delete_experiment_tag(m: Any, g: Gate, t: Translation) -> Message:
    _experiment(g, t, m.experiment_id, "edit")
    t.delete_experiment_tag(m.experiment_id, m.key, by=g.by(None))
    return pb.DeleteExperimentTag.Response()


def create_run(m: Any, g: Gate, t: Translation) -> Message:
    _experiment(g, t, m.experiment_id or "0", "edit")
    user = g.user.name if g.user is not None else (m.user_id or None)
    tags = [RunTag(x.key, x.value) for x in m.tags]
    if g.user is not None:  # who logged it is the caller, whatever the request says
        tags = [x for x in tags if x.key != "mlflow.user"] + [RunTag("mlflow.user", g.user.name)]
    run = t.create_run(m.experiment_id or "0", user, m.start_time or None, tags, m.run_name or None)
    return pb.CreateRun.Response(run=run.to_proto())


def update_run(m: Any, g: Gate, t: Translation) -> Message:
    run_id = _run_id(m)
    _experiment_of_run(g, t, run_id, "edit")
    status = m.status if m.HasField("status") else None
    info = t.update_run_info(run_id, status, m.end_time or None, m.run_name or None)
    return pb.UpdateRun.Response(run_info=info.to_proto())


def delete_run(m: Any, g: Gate, t: Translation) -> Message:
    _experiment_of_run(g, t, m.run_id, "edit")
    t.delete_run(m.run_id, by=g.by(None))
    return pb.DeleteRun.Response()


def restore_run(m: Any, g: Gate, t: Translation) -> Message:
    _experiment_of_run(g, t, m.run_id, "edit")
    t.restore_run(m.run_id, by=g.by(None))
    return pb.RestoreRun.Response()


def log_metric(m: Any, g: Gate, t: Translation) -> Message:
    run_id = _run_id(m)
    _experiment_of_run(g, t, run_id, "edit")
    model_id = getattr(m, "model_id", "") or None  # (MLflow 3: the point is the model's too)
    _models_of_points(g, t, [model_id])
    # the dataset the point was measured on (MLflow 3), read as MLflow's server reads it
    t.log_metric(run_id, Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id,
                                dataset_name=m.dataset_name or None, dataset_digest=m.dataset_digest or None),
                 by=g.by(None))
    return pb.LogMetric.Response()


def _models_of_points(g: Gate, t: Translation, model_ids: Sequence[str | None]) -> None:
    """Points that name logged models are written on them too: each must be the caller's
    to change (its experiment's edit), whatever run the points are logged in."""
    for model_id in sorted({m for m in model_ids if m}):
        _logged_model(g, t, model_id, "edit")


def log_param(m: Any, g: Gate, t: Translation) -> Message:
    run_id = _run_id(m)
    _experiment_of_run(g, t, run_id, "edit")
    t.log_param(run_id, Param(m.key, m.value))
    return pb.LogParam.Response()


def set_tag(m: Any, g: Gate, t: Translation) -> Message:
    run_id = _run_id(m)
    _experiment_of_run(g, t, run_id, "edit")
    t.set_tag(run_id, RunTag(m.key, m.value))
    return pb.SetTag.Response()


def delete_tag(m: Any, g: Gate, t: Translation) -> Message:
    _experiment_of_run(g, t, m.run_id, "edit")
    t.delete_tag(m.run_id, m.key)
    return pb.DeleteTag.Response()


def log_batch(m: Any, g: Gate, t: Translation) -> Message:
    _experiment_of_run(g, t, m.run_id, "edit")
    if isinstance(m, _Batch):
        t.log_batch(m.run_id, m.metrics, m.params, m.tags, by=g.by(None))
    else:
        metrics = [Metric.from_proto(x) for x in m.metrics]
        _models_of_points(g, t, [x.model_id for x in metrics])
        t.log_batch(m.run_id, metrics, [Param.from_proto(x) for x in m.params], [RunTag.from_proto(x) for x in m.tags],
                    by=g.by(None))
    return pb.LogBatch.Response()


@dataclass
class _Batch:
    run_id: str
    metrics: list[Metric]
    params: list[Param]
    tags: list[RunTag]


_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}  # doubles as protobuf's JSON writes them


def _plain_batch(body: bytes) -> _Batch | None:
    """A log-batch request read straight into MLflow's entities, when it is the plain kind
    MLflow's clients send: protobuf's parser takes ~15 ms for 1,000 points. Anything else
    (a field this does not know, a value of another type) is None: the request then goes
    through MLflow's parser and its exact errors."""
    try:
        fields = orjson.loads(body)
        if not isinstance(fields, dict) or not set(fields) <= {"run_id", "metrics", "params", "tags"}:
            return None
        run_id = fields.get("run_id")
        metrics = []
        for point in fields.get("metrics") or []:
            if not set(point) <= {"key", "value", "timestamp", "step"}:
                return None  # a model's or a dataset's point: MLflow's parser keeps those fields
            value = point.get("value")
            value = _DOUBLES.get(value, value) if isinstance(value, str) else value
            timestamp, step = _int64(point.get("timestamp", 0)), _int64(point.get("step", 0))
            if type(value) not in (float, int) or not isinstance(point.get("key"), str):
                return None
            metrics.append(Metric(point["key"], value, timestamp, step))
        params = [Param(p["key"], p["value"]) for p in fields.get("params") or []]
        tags = [RunTag(p["key"], p["value"]) for p in fields.get("tags") or []]
    except (ValueError, TypeError, KeyError, AttributeError, orjson.JSONDecodeError):
        return None
    texts = [(p.key, p.value) for p in params] + [(t.key, t.value) for t in tags]
    if not isinstance(run_id, str) or not all(isinstance(k, str) and isinstance(v, str) for k, v in texts):
        return None
    return _Batch(run_id, metrics, params, tags)


def _int64(value: Any) -> int:
    """An int64 as protobuf's JSON has it: a number, or its digits as text."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise ValueError(value)


def log_inputs(m: Any, g: Gate, t: Translation) -> Message:
    from mlflow.entities import DatasetInput

    _experiment_of_run(g, t, m.run_id, "edit")
    t.log_inputs(m.run_id, [DatasetInput.from_proto(x) for x in m.datasets])
    return pb.LogInputs.Response()


def get_run(m: Any, g: Gate, t: Translation) -> Message:
    run_id = _run_id(m)
    _experiment_of_run(g, t, run_id, "read")
    return pb.GetRun.Response(run=t.get_run(run_id).to_proto())


def search_runs(m: Any, g: Gate, t: Translation) -> Message:
    wanted = [str(i) for i in m.experiment_ids]
    readable = g.experiments()
    if readable is not None:  # the experiments the caller may not read hold no runs for them
        ids = {name: r.experiment_id for name, r in t.catalog.records().items() if name in set(readable)}
        wanted = [i for i in wanted if i in set(ids.values())]
    runs, token = t.search_runs(wanted, m.filter or None, m.run_view_type or 1, m.max_results or 1000,
                                list(m.order_by), m.page_token or None)
    return pb.SearchRuns.Response(runs=[r.to_proto() for r in runs], next_page_token=token or "")


def get_metric_history(m: Any, g: Gate, t: Translation) -> Message:
    run_id = _run_id(m)
    _experiment_of_run(g, t, run_id, "read")
    page = t.get_metric_history(run_id, m.metric_key, m.max_results or None, m.page_token or None)
    return pb.GetMetricHistory.Response(metrics=[x.to_proto() for x in page], next_page_token=page.token or "")


def list_artifacts(m: Any, g: Gate, t: Translation) -> Message:
    run_id = _run_id(m)
    _experiment_of_run(g, t, run_id, "read")
    files = _listing(t, run_id, m.path or "")
    return pb.ListArtifacts.Response(root_uri=t.artifact_uri(run_id),
                                     files=[pb.FileInfo(path=p, is_dir=d, file_size=s or 0) for p, d, s in files])


def _listing(t: Translation, run_id: str, path: str) -> list[tuple[str, bool, int | None]]:
    """What is directly under ``path`` among a run's artifacts: (path, is a folder, size)."""
    return _listed(t.artifact_sizes(run_id), path)


def _listed(sizes: dict[str, int], path: str) -> list[tuple[str, bool, int | None]]:
    """What is directly under ``path`` among files (path -> size): (path, is a folder, size)."""
    base = path.strip("/")
    inside = f"{base}/" if base else ""
    shown: dict[str, tuple[str, bool, int | None]] = {}
    for name, size in sizes.items():
        if name.startswith(inside):
            head, _, rest = name[len(inside):].partition("/")
            shown.setdefault(inside + head, (inside + head, True, None) if rest else (inside + head, False, size))
    return sorted(shown.values())


CALLS: dict[str, tuple[tuple[str, ...], type[Message], Handler]] = {
    "experiments/create": (("POST",), pb.CreateExperiment, create_experiment),
    "experiments/get": (("GET",), pb.GetExperiment, get_experiment),
    "experiments/get-by-name": (("GET",), pb.GetExperimentByName, get_experiment_by_name),
    "experiments/search": (("GET", "POST"), pb.SearchExperiments, search_experiments),
    "experiments/delete": (("POST",), pb.DeleteExperiment, delete_experiment),
    "experiments/restore": (("POST",), pb.RestoreExperiment, restore_experiment),
    "experiments/update": (("POST",), pb.UpdateExperiment, update_experiment),
    "experiments/set-experiment-tag": (("POST",), pb.SetExperimentTag, set_experiment_tag),
    "experiments/delete-experiment-tag": (("POST",), pb.DeleteExperimentTag, delete_experiment_tag),
    "runs/create": (("POST",), pb.CreateRun, create_run),
    "runs/update": (("POST",), pb.UpdateRun, update_run),
    "runs/delete": (("POST",), pb.DeleteRun, delete_run),
    "runs/restore": (("POST",), pb.RestoreRun, restore_run),
    "runs/log-metric": (("POST",), pb.LogMetric, log_metric),
    "runs/log-parameter": (("POST",), pb.LogParam, log_param),
    "runs/set-tag": (("POST",), pb.SetTag, set_tag),
    "runs/delete-tag": (("POST",), pb.DeleteTag, delete_tag),
    "runs/log-batch": (("POST",), pb.LogBatch, log_batch),
    "runs/log-inputs": (("POST",), pb.LogInputs, log_inputs),
    "runs/get": (("GET",), pb.GetRun, get_run),
    "runs/search": (("GET", "POST"), pb.SearchRuns, search_runs),
    "metrics/get-history": (("GET",), pb.GetMetricHistory, get_metric_history),
    "artifacts/list": (("GET",), pb.ListArtifacts, list_artifacts),
}


def routes(store: Store) -> APIRouter:
    router = APIRouter()
    translation = Translation(store, artifact_root=ARTIFACT_ROOT)
    lock = threading.Lock()  # one call at a time writes the store through the translation

    def call(kind: type[Message], handler: Handler, path: str = "", query: tuple[str, ...] = ()) -> Callable[..., Any]:
        """The endpoint of one call. ``path``'s parameters (``{model_id}``) are fields of the
        request, as MLflow's server reads them; ``query`` names what MLflow's server reads
        from the query beside the request's fields (passed to the handler by name)."""
        async def endpoint(request: Request, g: Gate = Depends(gate), **in_path: str) -> Response:
            try:
                # the app's body limit, as on the native routes (413-sized bodies are read no further)
                body = await read_body(request) if request.method != "GET" else b""
                # parsed in a worker thread: a body near the limit takes seconds, which the
                # event loop (every other caller's request) must not wait for
                message = await run_in_threadpool(_parsed, kind, request, body)
                for name, value in in_path.items():  # the path's value wins over the body's
                    setattr(message, name, value)
                bound = functools.partial(handler, **{name: request.query_params.get(name) for name in query})
                answer = await run_in_threadpool(_locked, lock, bound, message, g, translation)
            except MlflowException as exc:
                return _error(exc)
            except MltrailError as exc:
                try:
                    with mlflow_errors():
                        raise exc
                except MlflowException as translated:
                    return _error(translated)
            return Response(message_to_json(answer), media_type="application/json")
        # the path's parameters declared (FastAPI reads the signature), so the schema has them
        names = re.findall(r"{(\w+)}", path)
        endpoint.__signature__ = inspect.signature(endpoint).replace(parameters=[  # type: ignore[attr-defined]
            *[p for p in inspect.signature(endpoint).parameters.values() if p.kind != p.VAR_KEYWORD],
            *[inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str) for name in names]])
        return endpoint

    for path, (methods, kind, handler) in CALLS.items():
        for prefix in PREFIXES:
            for method in methods:  # (a route per method: each its own operation in the schema)
                router.add_api_route(f"{prefix}/{path}", call(kind, handler), methods=[method],
                                     name=f"mlflow_{path.replace('/', '_').replace('-', '_')}_{method.lower()}",
                                     include_in_schema=prefix == PREFIXES[0])
    for path, method, kind, handler, query in LOGGED_MODEL_CALLS:
        for prefix in PREFIXES:
            name = re.sub(r"[^a-z0-9]+", "_", f"{path}_{method.lower()}")
            router.add_api_route(f"{prefix}/{path}", call(kind, handler, path, query), methods=[method],
                                 name=f"mlflow_{name}", include_in_schema=prefix == PREFIXES[0])
    for method, (kind, handler) in ALIAS_CALLS.items():  # one path, a call per method
        for prefix in PREFIXES:
            router.add_api_route(f"{prefix}/registered-models/alias", call(kind, handler), methods=[method],
                                 name=f"mlflow_registered_models_alias_{method.lower()}",
                                 include_in_schema=prefix == PREFIXES[0])

    # -- MLflow's artifact proxy: <run ID>/<path inside the run>, models/<model ID>/<path> ---

    @router.get(ARTIFACTS)
    async def list_proxied(request: Request, path: str = "", g: Gate = Depends(gate)) -> Response:
        try:
            files = _Proxied(path, g, translation)
            await run_in_threadpool(files.require, "read")
            listed = await run_in_threadpool(files.listing)
        except MlflowException as exc:
            return _error(exc)
        prefix = f"{files.inside}/" if files.inside else ""
        answer = [{"path": p[len(prefix):], "is_dir": d, **({} if s is None else {"file_size": s})}
                  for p, d, s in listed]
        return JSONResponse({"files": answer} if answer else {})

    @router.get(ARTIFACTS + "/{path:path}")
    async def download(path: str, g: Gate = Depends(gate)) -> Response:
        try:
            files = _Proxied(path, g, translation)
            await run_in_threadpool(files.require, "read")
            file = await run_in_threadpool(files.file)
        except MlflowException as exc:
            return _error(exc)
        return FileResponse(file, media_type="application/octet-stream", filename=Path(files.inside).name)

    @router.put(ARTIFACTS + "/{path:path}")
    async def upload(path: str, request: Request, g: Gate = Depends(gate)) -> Response:
        """A file into the run (or logged model), streamed to a temporary file (constant
        memory), then into the store content-addressed as its file ``path``."""
        try:
            files = _Proxied(path, g, translation)
            if not files.inside:
                raise _invalid("an artifact upload names the file: <run ID>/<path> or models/<model ID>/<path>")
            await run_in_threadpool(files.require, "edit")
            folder = Path(tempfile.mkdtemp(prefix="mltrail-mlflow-upload-"))
            try:
                local = folder / Path(files.inside).name
                with open(local, "wb") as out:
                    async for chunk in request.stream():
                        await run_in_threadpool(out.write, chunk)
                await run_in_threadpool(_locked, lock, lambda *_: files.write(local), None, g, translation)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        except MlflowException as exc:
            return _error(exc)
        return JSONResponse({})

    return router


def _locked(lock: threading.Lock, handler: Callable[..., Any], message: Any, g: Gate, t: Translation) -> Any:
    with lock:
        return handler(message, g, t)



# -- MLflow 3's logged models: a model belongs to its experiment (read to see it, edit to change it)

def _logged_model(g: Gate, t: Translation, model_id: str, level: str) -> str:
    """The experiment of a logged model the caller may reach at ``level``; one they may not
    read is "no such model", word for word as one that does not exist."""
    experiment = t.logged_models.experiment_of(model_id)
    if not g.readable("experiment", [experiment]):
        raise MlflowException(f"Logged model with ID '{model_id}' not found.",
                              error_code=databricks_pb2.RESOURCE_DOES_NOT_EXIST)
    with mlflow_errors():
        g.require("experiment", experiment, level, "change this logged model")
    return experiment


def _required(value: Any, name: str) -> None:
    if not value:
        raise _invalid(f"Missing value for required parameter '{name}'. See the API docs for more information "
                       "about request parameters.")


def create_logged_model(m: Any, g: Gate, t: Translation) -> Message:
    _required(m.experiment_id, "experiment_id")
    _experiment(g, t, m.experiment_id, "edit")
    model = t.logged_models.create(m.experiment_id, m.name or None, m.source_run_id or None,
                                   [LoggedModelTag(x.key, x.value) for x in m.tags] or None,
                                   [LoggedModelParameter.from_proto(x) for x in m.params] or None,
                                   m.model_type or None, by=g.by(None))
    return pb.CreateLoggedModel.Response(model=model.to_proto())


def get_logged_model(m: Any, g: Gate, t: Translation, allow_deleted: str | None = None) -> Message:
    _logged_model(g, t, m.model_id, "read")
    model = t.get_logged_model(m.model_id, allow_deleted=(allow_deleted or "").lower() == "true")
    return pb.GetLoggedModel.Response(model=model.to_proto())


def finalize_logged_model(m: Any, g: Gate, t: Translation) -> Message:
    _required(m.HasField("status"), "status")
    _logged_model(g, t, m.model_id, "edit")
    model = t.logged_models.finalize(m.model_id, LoggedModelStatus.from_int(m.status), by=g.by(None))
    return pb.FinalizeLoggedModel.Response(model=model.to_proto())


def delete_logged_model(m: Any, g: Gate, t: Translation) -> Message:
    _logged_model(g, t, m.model_id, "edit")
    t.logged_models.delete(m.model_id, by=g.by(None))
    return pb.DeleteLoggedModel.Response()


def set_logged_model_tags(m: Any, g: Gate, t: Translation) -> Message:
    _logged_model(g, t, m.model_id, "edit")
    t.logged_models.set_tags(m.model_id, [LoggedModelTag(x.key, x.value) for x in m.tags], by=g.by(None))
    return pb.SetLoggedModelTags.Response()


def delete_logged_model_tag(m: Any, g: Gate, t: Translation) -> Message:
    _logged_model(g, t, m.model_id, "edit")
    t.logged_models.delete_tag(m.model_id, m.tag_key, by=g.by(None))
    return pb.DeleteLoggedModelTag.Response()


def log_logged_model_params(m: Any, g: Gate, t: Translation) -> Message:
    _logged_model(g, t, m.model_id, "edit")
    t.logged_models.log_params(m.model_id, [LoggedModelParameter.from_proto(x) for x in m.params], by=g.by(None))
    return pb.LogLoggedModelParamsRequest.Response()


def search_logged_models(m: Any, g: Gate, t: Translation) -> Message:
    wanted = [str(i) for i in m.experiment_ids]
    readable = g.experiments()
    if readable is not None:  # the experiments the caller may not read hold no models for them
        ids = {r.experiment_id for name, r in t.catalog.records().items() if name in set(readable)}
        wanted = [i for i in wanted if i in ids]
    datasets = [{"dataset_name": d.dataset_name, "dataset_digest": d.dataset_digest or None} for d in m.datasets]
    order_by = [{"field_name": o.field_name, "ascending": o.ascending, "dataset_name": o.dataset_name or None,
                 "dataset_digest": o.dataset_digest or None} for o in m.order_by]
    page = t.search_logged_models(wanted, m.filter or None, datasets or None, m.max_results or None,
                                  order_by or None, m.page_token or None)
    return pb.SearchLoggedModels.Response(models=[x.to_proto() for x in page], next_page_token=page.token or "")


def list_logged_model_artifacts(m: Any, g: Gate, t: Translation) -> Message:
    """The files directly under a folder of the model (MLflow's UI lists them so)."""
    _logged_model(g, t, m.model_id, "read")
    files = _listed(t.logged_models.file_sizes(m.model_id), m.artifact_directory_path or "")
    return pb.ListLoggedModelArtifacts.Response(
        root_uri=t.logged_models.artifact_location(m.model_id),
        files=[pb.FileInfo(path=p, is_dir=d, file_size=s or 0) for p, d, s in files])


def log_outputs(m: Any, g: Gate, t: Translation) -> Message:
    """The run made these models: the run and each model changed, so edit on both."""
    _required(m.run_id, "run_id")
    _experiment_of_run(g, t, m.run_id, "edit")
    for output in m.models:
        _logged_model(g, t, output.model_id, "edit")
    t.logged_models.log_outputs(m.run_id, [LoggedModelOutput.from_proto(x) for x in m.models], by=g.by(None))
    return pb.LogOutputs.Response()


# (path, method, request, handler, what the handler reads from the query besides the request)
LOGGED_MODEL_CALLS: list[tuple[str, str, type[Message], Callable[..., Message], tuple[str, ...]]] = [
    ("logged-models", "POST", pb.CreateLoggedModel, create_logged_model, ()),
    ("logged-models/search", "POST", pb.SearchLoggedModels, search_logged_models, ()),
    ("logged-models/{model_id}", "GET", pb.GetLoggedModel, get_logged_model, ("allow_deleted",)),
    ("logged-models/{model_id}", "PATCH", pb.FinalizeLoggedModel, finalize_logged_model, ()),
    ("logged-models/{model_id}", "DELETE", pb.DeleteLoggedModel, delete_logged_model, ()),
    ("logged-models/{model_id}/tags", "PATCH", pb.SetLoggedModelTags, set_logged_model_tags, ()),
    ("logged-models/{model_id}/tags/{tag_key}", "DELETE", pb.DeleteLoggedModelTag, delete_logged_model_tag, ()),
    ("logged-models/{model_id}/params", "POST", pb.LogLoggedModelParamsRequest, log_logged_model_params, ()),
    ("logged-models/{model_id}/artifacts/directories", "GET", pb.ListLoggedModelArtifacts,
     list_logged_model_artifacts, ()),
    ("runs/outputs", "POST", pb.LogOutputs, log_outputs, ()),
]


class _Proxied:
    """What an artifact proxy path names: a run's artifacts (``<run ID>/<path>``) or a
    logged model's files (``models/<model ID>/<path>``; a run's ID is never "models"),
    behind the gate of the experiment either belongs to."""

    model_id: str | None  # None: a run's artifacts

    def __init__(self, path: str, g: Gate, t: Translation) -> None:
        head, _, inside = path.strip("/").partition("/")
        self.run_id, self.model_id, self.g, self.t = head, None, g, t
        if head == MODELS_PATH:
            model_id, _, inside = inside.partition("/")
            if not model_id:
                raise _invalid(f"a logged model's files are at {MODELS_PATH}/<model ID>/<path>")
            self.model_id = model_id
        elif not head:
            raise _invalid(f"an artifact path starts with its run's ID (or {MODELS_PATH}/<model ID>)")
        self.inside = inside

    def require(self, level: str) -> None:
        if self.model_id is None:
            _experiment_of_run(self.g, self.t, self.run_id, level)
        else:
            _logged_model(self.g, self.t, self.model_id, level)

    def listing(self) -> list[tuple[str, bool, int | None]]:
        if self.model_id is None:
            return _listing(self.t, self.run_id, self.inside)
        return _listed(self.t.logged_models.file_sizes(self.model_id), self.inside)

    def file(self) -> Path:
        if self.model_id is None:
            return self.t.artifact_file(self.run_id, self.inside)
        return self.t.logged_models.file(self.model_id, self.inside)

    def write(self, local: Path) -> None:
        if self.model_id is None:
            self.t.log_artifact(self.run_id, local, self.inside)
        else:
            self.t.logged_models.log_files(self.model_id, [(self.inside, local)], by=self.g.by(None))

# -- MLflow's model registry (:mod:`mltrail.mlflow_store.registry`), behind the gate: a
# registered model is the gate's object kind "model", as on the native registry routes ----

def _source_readable(g: Gate, t: Translation, source: Any, model_id: str | None) -> None:
    """A version's source that names a logged model or another registered model's version
    must be the caller's to read before it is looked up: one they may not read answers as
    one that does not exist (how many versions it has, which run made it, are not theirs)."""
    if model_id is None and isinstance(source, str) and source.startswith("models:/"):
        try:
            target = _parse_model_uri(source)
        except MlflowException:
            return  # not a models:/ URI the registry takes: it says so itself
        if target.model_id is None:
            if target.name:
                _registered(g, target.name, "read")
            return
        model_id = target.model_id
    if model_id is not None:
        _logged_model(g, t, model_id, "read")


def _registered(g: Gate, name: str, level: str, action: str = "do that") -> None:
    """The caller may reach model ``name`` at ``level``; one they may not read is MLflow's
    "not found" (as a model that does not exist), one they may read but not change a 403."""
    if not g.readable("model", [name]):
        raise MlflowException(f"Registered Model with name={name} not found",
                              error_code=databricks_pb2.RESOURCE_DOES_NOT_EXIST)
    with mlflow_errors():
        g.require("model", name, level, action)


def _token(page: Any) -> dict[str, str]:
    """A page's token, left out on the last page (as MLflow's server answers it)."""
    return {"next_page_token": page.token} if page.token else {}


def _visible(g: Gate) -> Callable[[str], bool] | None:
    return None if g.sees_everything() else (lambda name: bool(g.readable("model", [name])))


def create_registered_model(m: Any, g: Gate, t: Translation) -> Message:
    from mlflow.entities.model_registry import RegisteredModelTag

    clash = [n for n in t.store.registry.names() if n.lower() == m.name.lower()]
    if clash and not g.readable("model", clash):  # a name taken by a model they cannot see
        raise MlflowException(f"the name {m.name!r} is taken", error_code=databricks_pb2.RESOURCE_ALREADY_EXISTS)
    model = registry_translation(t).create_registered_model(
        m.name, [RegisteredModelTag(x.key, x.value) for x in m.tags], m.description or None, by=g.by(None))
    g.created("model", m.name)
    return mr.CreateRegisteredModel.Response(registered_model=model.to_proto())


def get_registered_model(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "read")
    return mr.GetRegisteredModel.Response(registered_model=registry_translation(t).get_registered_model(m.name).to_proto())


def search_registered_models(m: Any, g: Gate, t: Translation) -> Message:
    page = registry_translation(t).search_registered_models(m.filter or None, m.max_results or 100, list(m.order_by),
                                                            m.page_token or None, visible=_visible(g))
    return mr.SearchRegisteredModels.Response(registered_models=[x.to_proto() for x in page], **_token(page))


def update_registered_model(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "edit", "describe it")
    model = registry_translation(t).update_registered_model(m.name, m.description or None, by=g.by(None))
    return mr.UpdateRegisteredModel.Response(registered_model=model.to_proto())


def rename_registered_model(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "manage", "rename it")
    return mr.RenameRegisteredModel.Response(
        registered_model=registry_translation(t).rename_registered_model(m.name, m.new_name).to_proto())


def delete_registered_model(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "manage", "delete it")
    registry_translation(t).delete_registered_model(m.name)
    return mr.DeleteRegisteredModel.Response()


def set_registered_model_tag(m: Any, g: Gate, t: Translation) -> Message:
    from mlflow.entities.model_registry import RegisteredModelTag

    _registered(g, m.name, "edit", "tag it")
    registry_translation(t).set_registered_model_tag(m.name, RegisteredModelTag(m.key, m.value), by=g.by(None))
    return mr.SetRegisteredModelTag.Response()


def delete_registered_model_tag(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "edit", "tag it")
    registry_translation(t).delete_registered_model_tag(m.name, m.key, by=g.by(None))
    return mr.DeleteRegisteredModelTag.Response()


def get_latest_versions(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "read")
    found = registry_translation(t).get_latest_versions(m.name, list(m.stages))
    return mr.GetLatestVersions.Response(model_versions=[v.to_proto() for v in found])


def create_model_version(m: Any, g: Gate, t: Translation) -> Message:
    from mlflow.entities.model_registry import ModelVersionTag

    _registered(g, m.name, "edit", "register versions")
    registry = registry_translation(t)
    registry.get_registered_model(m.name)
    _source_readable(g, t, m.source, m.model_id or None)
    files = registry.source_files(m.source, m.run_id or None, m.model_id or None)
    # the files must be the caller's to read where they come from, and the version's run (which
    # may be the caller's own, named beside them): a logged model a runs:/ source resolved to (a
    # registered model's version copied was checked above as that model's, whatever made it)
    if files.copied_from is None and files.model_id is not None:
        _logged_model(g, t, files.model_id, "read")
    _experiment_of_run(g, t, files.run_id, "read")
    version = registry.create_model_version(m.name, m.source, m.run_id or None,
                                            [ModelVersionTag(x.key, x.value) for x in m.tags], m.run_link or None,
                                            m.description or None, model_id=m.model_id or None, by=g.by(None),
                                            files=files)
    return mr.CreateModelVersion.Response(model_version=version.to_proto())


def get_model_version(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "read")
    return mr.GetModelVersion.Response(
        model_version=registry_translation(t).get_model_version(m.name, m.version).to_proto())


def update_model_version(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "edit", "describe its versions")
    version = registry_translation(t).update_model_version(m.name, m.version, m.description or None, by=g.by(None))
    return mr.UpdateModelVersion.Response(model_version=version.to_proto())


def transition_model_version_stage(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "manage", "move versions between stages")
    version = registry_translation(t).transition_model_version_stage(m.name, m.version, m.stage,
                                                                     m.archive_existing_versions, by=g.by(None))
    return mr.TransitionModelVersionStage.Response(model_version=version.to_proto())


def delete_model_version(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "manage", "delete versions")
    registry_translation(t).delete_model_version(m.name, m.version, by=g.by(None))
    return mr.DeleteModelVersion.Response()


def search_model_versions(m: Any, g: Gate, t: Translation) -> Message:
    page = registry_translation(t).search_model_versions(m.filter or None, m.max_results or 10000,
                                                         list(m.order_by), m.page_token or None, visible=_visible(g))
    return mr.SearchModelVersions.Response(model_versions=[v.to_proto() for v in page], **_token(page))


def get_model_version_download_uri(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "read")
    uri = registry_translation(t).get_model_version_download_uri(m.name, m.version)
    return mr.GetModelVersionDownloadUri.Response(artifact_uri=uri)


def set_model_version_tag(m: Any, g: Gate, t: Translation) -> Message:
    from mlflow.entities.model_registry import ModelVersionTag

    _registered(g, m.name, "edit", "tag its versions")
    registry_translation(t).set_model_version_tag(m.name, m.version, ModelVersionTag(m.key, m.value), by=g.by(None))
    return mr.SetModelVersionTag.Response()


def delete_model_version_tag(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "edit", "tag its versions")
    registry_translation(t).delete_model_version_tag(m.name, m.version, m.key, by=g.by(None))
    return mr.DeleteModelVersionTag.Response()


def set_registered_model_alias(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "manage", "move aliases")
    registry_translation(t).set_registered_model_alias(m.name, m.alias, m.version, by=g.by(None))
    return mr.SetRegisteredModelAlias.Response()


def delete_registered_model_alias(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "manage", "move aliases")
    registry_translation(t).delete_registered_model_alias(m.name, m.alias, by=g.by(None))
    return mr.DeleteRegisteredModelAlias.Response()


def get_model_version_by_alias(m: Any, g: Gate, t: Translation) -> Message:
    _registered(g, m.name, "read")
    return mr.GetModelVersionByAlias.Response(
        model_version=registry_translation(t).get_model_version_by_alias(m.name, m.alias).to_proto())


CALLS.update({
    "registered-models/create": (("POST",), mr.CreateRegisteredModel, create_registered_model),
    "registered-models/get": (("GET",), mr.GetRegisteredModel, get_registered_model),
    "registered-models/search": (("GET",), mr.SearchRegisteredModels, search_registered_models),
    "registered-models/update": (("PATCH",), mr.UpdateRegisteredModel, update_registered_model),
    "registered-models/rename": (("POST",), mr.RenameRegisteredModel, rename_registered_model),
    "registered-models/delete": (("DELETE",), mr.DeleteRegisteredModel, delete_registered_model),
    "registered-models/set-tag": (("POST",), mr.SetRegisteredModelTag, set_registered_model_tag),
    "registered-models/delete-tag": (("DELETE",), mr.DeleteRegisteredModelTag, delete_registered_model_tag),
    "registered-models/get-latest-versions": (("GET", "POST"), mr.GetLatestVersions, get_latest_versions),
    "model-versions/create": (("POST",), mr.CreateModelVersion, create_model_version),
    "model-versions/get": (("GET",), mr.GetModelVersion, get_model_version),
    "model-versions/update": (("PATCH",), mr.UpdateModelVersion, update_model_version),
    "model-versions/transition-stage": (("POST",), mr.TransitionModelVersionStage, transition_model_version_stage),
    "model-versions/delete": (("DELETE",), mr.DeleteModelVersion, delete_model_version),
    "model-versions/search": (("GET",), mr.SearchModelVersions, search_model_versions),
    "model-versions/get-download-uri": (("GET",), mr.GetModelVersionDownloadUri, get_model_version_download_uri),
    "model-versions/set-tag": (("POST",), mr.SetModelVersionTag, set_model_version_tag),
    "model-versions/delete-tag": (("DELETE",), mr.DeleteModelVersionTag, delete_model_version_tag),
})
# MLflow's alias calls share one path, a method each: set (POST), delete (DELETE), read (GET)
ALIAS_CALLS: dict[str, tuple[type[Message], Handler]] = {
    "POST": (mr.SetRegisteredModelAlias, set_registered_model_alias),
    "DELETE": (mr.DeleteRegisteredModelAlias, delete_registered_model_alias),
    "GET": (mr.GetModelVersionByAlias, get_model_version_by_alias),
}
