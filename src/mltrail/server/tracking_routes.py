"""The server's runs: what remote jobs send, and the reads a remote store makes.

- ``GET /api/v1/runs/{run_id}/last-seq``: how much of a run the server holds
- ``POST /api/v1/runs/{run_id}/events?experiment=NAME``: a run's next JSON lines, as its
  file holds them; appended exactly once (see :mod:`mltrail.tracking.ingest`)
- ``GET /api/v1/runs/{run_id}/events``: the run's file as the server holds it, for a job
  that resumes the run on another machine (edit on its experiment, as logging into it)
- ``POST /api/v1/runs/{run}/stop`` (``{"reason", "by"}``) and ``GET
  /api/v1/runs/{run_id}/stop``: requests to stop a run; ``GET
  /api/v1/stop-requests?run=ID&run=ID&wait=SECONDS``: those of a job's runs, answered as
  soon as one has a request (a job's stop watcher waits on it)
- ``POST /api/v1/runs/{run}/edits`` (``{"kind": "name"|"notes"|"tag"|"untag"|"delete"|
  "restore", "key", "value", "by"}``): curate a run (see :mod:`mltrail.tracking.curation`);
  ``PUT /api/v1/runs/{run_id}/edits/{edit_id}`` (an edit file's event): keep an edit made
  elsewhere, once (``mltrail sync``)
- ``GET /api/v1/search`` (``experiment``, ``filter``, ``order_by``, ``max_results``, ``view``),
  ``POST /api/v1/metric-history`` (``{"run_ids": [...], "keys": [...]}``) and ``GET
  /api/v1/experiments``: Arrow IPC streams
- ``GET /api/v1/runs/{run}`` (a run's details, :mod:`mltrail.remote.wire`), ``GET
  /api/v1/runs/{run}/id``, ``GET /api/v1/runs/{run}/reproduce`` (the script)
- ``POST /api/v1/refresh``: compact what is new; the tables' generation. ``POST
  /api/v1/compact?rebuild=0|1``: what the compaction did (``mltrail compact``)
- ``GET /api/v1/blobs/{sha256}`` (is it here?), ``GET /api/v1/blobs/{sha256}/content``
  and ``PUT /api/v1/blobs/{sha256}?large=0|1``
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, TypeAdapter
from starlette.concurrency import run_in_threadpool

from ..errors import InvalidInputError, NotFoundError, PermissionDeniedError
from ..storage.run_edits import RUN_EDIT
from ..store import Store
from ..tracking.ingest import RunIngest
from .bodies import arrow, packed, parsed, read_body
from .gate import Gate, gate


class _StopAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None
    by: str | None = None


class _HistoryAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_ids: list[str] | None = None
    keys: list[str] | None = None


class _EditAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["name", "notes", "tag", "untag", "delete", "restore"]
    key: str | None = None
    value: Any = None
    by: str | None = None


STOP_WAIT_MAX = 30.0  # seconds a stop-requests call may be held open
STOP_RUNS_MAX = 1000  # runs one stop-requests call may watch
_STOP_ASKED = TypeAdapter(_StopAsked)
_EDIT_ASKED = TypeAdapter(_EditAsked)
_HISTORY_ASKED = TypeAdapter(_HistoryAsked)


def routes(store: Store) -> APIRouter:
    ingest = RunIngest(store.layout)
    api = APIRouter(prefix="/api/v1")

    @api.get("/runs/{run_id}/last-seq")
    def last_seq(run_id: str, g: Gate = Depends(gate)) -> dict[str, int]:
        experiment = ingest.experiment_of(run_id)
        if experiment is not None:
            g.require("experiment", experiment, "edit", "log into it")
        return {"last_seq": ingest.last_seq(run_id)}

    @api.post("/runs/{run_id}/events")
    async def events(run_id: str, experiment: str, request: Request, g: Gate = Depends(gate)) -> Any:
        body = await read_body(request)
        new = ingest.experiment_of(run_id) is None and not store.layout.experiment_dir(experiment).is_dir()
        if not new:
            g.require("experiment", ingest.experiment_of(run_id) or experiment, "edit", "log into it")
        done = await run_in_threadpool(ingest.append, experiment, run_id, body)  # the file work is off the loop
        if new and done.written:
            g.created("experiment", experiment)
        return {"written": done.written, "duplicates": done.duplicates, "last_seq": done.last_seq}

    @api.post("/runs/{run_ref}/stop")
    async def request_stop(run_ref: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _STOP_ASKED, "a stop request")
        run_id = g.run(run_ref, "edit", "stop its runs")
        path = store.request_stop(run_id, asked.reason, by=g.by(asked.by))
        return {"run_id": path.parent.name}  # stop/<run_id>/<request>.jsonl

    @api.post("/runs/{run_ref}/edits")
    async def edit_run(run_ref: str, request: Request, g: Gate = Depends(gate)) -> dict[str, str]:
        asked = await parsed(request, _EDIT_ASKED, "a run edit")
        run_id = g.run(run_ref, "edit", "curate its runs")
        by = g.by(asked.by)
        edit = {"name": lambda: store.set_run_name(run_id, asked.value, by=by),
                "notes": lambda: store.set_run_notes(run_id, asked.value, by=by),
                "tag": lambda: store.set_tag(run_id, asked.key, asked.value, by=by),
                "untag": lambda: store.delete_tag(run_id, asked.key, by=by),
                "delete": lambda: store.delete_run(run_id, by=by),
                "restore": lambda: store.restore_run(run_id, by=by)}[asked.kind]
        return {"run_id": await run_in_threadpool(edit)}

    @api.put("/runs/{run_id}/edits/{edit_id}")
    async def import_edit(run_id: str, edit_id: str, request: Request, g: Gate = Depends(gate)) -> dict[str, bool]:
        edit = await parsed(request, RUN_EDIT, "a run edit")
        if (edit.run, edit.id) != (run_id, edit_id):
            raise InvalidInputError(f"the edit names run {edit.run} and ID {edit.id}, not {run_id} and {edit_id}")
        g.run(run_id, "edit", "curate its runs")
        edit = edit.model_copy(update={"by": g.by(edit.by)})
        return {"written": await run_in_threadpool(store.tracking.curation.import_edit, edit)}

    @api.get("/runs/{run_id}/stop")
    def stop_requests(run_id: str, g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        """The requests to stop a run, oldest first: a remote job's uploader copies them
        into its spool, where the run looks for them."""
        experiment = ingest.experiment_of(run_id)
        if experiment is not None:
            g.require("experiment", experiment, "edit", "log into it")
        return [request.model_dump(mode="json") for request in ingest.stop_requests(run_id)]

    @api.get("/stop-requests")
    async def awaited_stop_requests(request: Request, run: list[str] = Query(default=[]), wait: float = 0.0,
                                    g: Gate = Depends(gate)) -> dict[str, list[dict[str, Any]]]:
        """The requests to stop any of ``run`` (a job's running runs), by run, answered as
        soon as one of them has one, else after ``wait`` seconds (at most 30) with none:
        a job learns of a stop within a tenth of a second, at one call per ``wait`` while
        nobody asks. A run not on the server yet has none (the job asks again later)."""
        if len(run) > STOP_RUNS_MAX:
            raise InvalidInputError(f"{len(run)} runs in one stop-requests call: at most {STOP_RUNS_MAX}")
        watched = []
        for run_id in run:
            experiment = ingest.experiment_of(run_id)
            if experiment is not None:
                g.require("experiment", experiment, "edit", "log into it")
                watched.append(run_id)
        until = time.monotonic() + (min(max(wait, 0.0), STOP_WAIT_MAX) if math.isfinite(wait) else 0.0)
        while True:
            found = {run_id: [r.model_dump(mode="json") for r in ingest.stop_requests(run_id)] for run_id in watched}
            found = {run_id: requests for run_id, requests in found.items() if requests}
            if (found or time.monotonic() >= until or request.app.state.stopping.is_set()
                    or await request.is_disconnected()):
                return found
            await asyncio.sleep(0.1)

    @api.get("/runs/{run_id}/events")
    def run_lines(run_id: str, g: Gate = Depends(gate)) -> Response:
        """The run's file as the server holds it (its acknowledged lines): a job resuming
        the run on another machine continues from them."""
        experiment = ingest.experiment_of(run_id)
        if experiment is None:
            raise NotFoundError(f"no run {run_id!r}")
        g.require("experiment", experiment, "edit", "resume its runs")
        return Response(ingest.run_lines(run_id), media_type="application/x-ndjson")

    @api.get("/runs/{run_ref}")
    def get_run(run_ref: str, g: Gate = Depends(gate)) -> Response:
        details = store.get_run(g.run(run_ref))
        return packed({**details, "run": pd.DataFrame([details["run"]])})

    @api.get("/runs/{run_ref}/id")
    def resolve_run(run_ref: str, g: Gate = Depends(gate)) -> dict[str, str]:
        return {"run_id": g.run(run_ref)}

    @api.get("/runs/{run_ref}/reproduce")
    def reproduce(run_ref: str, g: Gate = Depends(gate)) -> PlainTextResponse:
        return PlainTextResponse(store.reproduce_script(g.run(run_ref)))

    @api.get("/search")
    def search(experiment: list[str] = Query(default=[]), filter: str | None = None,
               order_by: list[str] = Query(default=[]), max_results: int | None = None,
               view: str = "active", g: Gate = Depends(gate)) -> Response:
        visible = g.experiments()
        for name in experiment:
            g.require("experiment", name, "read")
        chosen = experiment or visible
        # (nothing the caller may read: experiment=[] gives no rows, and no column names to learn from)
        return arrow(store.search_runs(experiment=chosen, filter=filter, order_by=order_by or None,
                                       max_results=max_results, view=view))

    @api.post("/metric-history")
    async def metric_history(request: Request, g: Gate = Depends(gate)) -> Response:
        asked = await parsed(request, _HISTORY_ASKED, "a metric-history query")
        visible = g.experiments()
        run_ids = asked.run_ids
        if visible is not None:
            allowed = set(store.search_runs(experiment=visible, view="all")["run_id"]) if visible else set()
            run_ids = [r for r in (run_ids if run_ids is not None else allowed) if r in allowed]
        return arrow(await run_in_threadpool(store.metric_history, run_ids, asked.keys))

    @api.get("/experiments")
    def experiments(g: Gate = Depends(gate)) -> Response:
        table = store.experiments()
        visible = g.experiments()
        return arrow(table if visible is None else table[table["experiment"].isin(visible)].reset_index(drop=True))

    @api.post("/compact")
    def compact(rebuild: bool = False, g: Gate = Depends(gate)) -> dict[str, Any]:
        """``mltrail compact [--rebuild]`` against the server: what the compaction did."""
        if rebuild and not (g.user is None or g.user.admin):
            raise PermissionDeniedError("rebuilding the tables is for an admin")
        result = dataclasses.asdict(store.compact(rebuild=rebuild))
        if g.experiments() is not None:  # files, not names: but a bad line names its file
            result["bad_lines"] = []
        return result

    @api.post("/refresh")
    def refresh() -> dict[str, int]:
        """Compact what is new (each reader would otherwise ask for it); the generation
        of the tables, which changes when they do."""
        return {"generation": store.refresh()}

    @api.get("/blobs/{sha256}")
    def has_blob(sha256: str) -> Any:
        try:
            store.blobs.path(sha256)
        except NotFoundError:
            return JSONResponse({"error": f"no blob {sha256}", "type": "NotFoundError"}, 404)
        return {"ok": True}

    @api.get("/blobs/{sha256}/content")
    def blob_content(sha256: str, g: Gate = Depends(gate)) -> FileResponse:
        if g.experiments() is not None and not _may_read_blob(store, g, sha256):
            raise NotFoundError(f"no blob {sha256}")
        return FileResponse(store.blobs.verified(sha256, f"blob {sha256}"), media_type="application/octet-stream")

    @api.put("/blobs/{sha256}")
    async def put_blob(sha256: str, request: Request, large: bool = False) -> Any:
        body = await read_body(request)
        store.blobs.put_sent(sha256, body, large)
        return {"ok": True}

    return api


def _may_read_blob(store: Store, g: Gate, sha256: str) -> bool:
    """A blob is readable through what names it: an artifact, diff or package list of a
    run the caller may read, a version of a model they may read, a saved training set."""
    visible = g.experiments() or []
    if visible:
        runs = store.search_runs(experiment=visible)
        named = {c for column in ("git_diff_sha256", "packages_sha256") if column in runs
                 for c in runs[column].dropna()}
        artifacts = store.tracking.artifacts()
        if sha256 in named or sha256 in set(artifacts[artifacts["run_id"].isin(runs["run_id"])]["sha256"]):
            return True
    for model in g.readable("model", store.registry.names()):
        if any(getattr(e, "sha256", None) == sha256 for e in store.registry.events(model)):
            return True
    return any(getattr(e, "sha256", None) == sha256 and set(_views_of(e)) <= set(g.readable("feature_view", _views_of(e)))
               for e in store.features.events() if e.type == "dataset_saved")


def _views_of(event: Any) -> list[str]:
    return sorted({ref.split(":")[0] for ref in event.features})
