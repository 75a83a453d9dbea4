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
  ``POST /api/v1/metric-history`` and ``POST /api/v1/histograms`` (``{"run_ids": [...], "keys":
  [...]}``) and ``GET
  /api/v1/experiments``: Arrow IPC streams
- ``GET /api/v1/runs/{run}`` (a run's details, :mod:`mltrail.remote.wire`), ``GET
  /api/v1/runs/{run}/id``, ``GET /api/v1/runs/{run}/reproduce`` (the script)
- ``POST /api/v1/refresh``: compact what is new; the tables' generation. ``POST
  /api/v1/compact?rebuild=0|1``: what the compaction did (``mltrail compact``; an admin's)

Blobs (artifacts, diffs) have their own routes: :mod:`.blob_routes`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
import time
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.concurrency import run_in_threadpool

from ..errors import BusyError, InvalidInputError, NotFoundError
from ..query.grouped import MAX_POINTS
from ..storage.run_edits import RUN_EDIT
from ..store import Store
from ..tracking.ingest import Appended, RunIngest
from .blob_routes import require_sent
from .bodies import arrow, json_body, packed, parsed, read_body
from .gate import Gate, gate


GROUPED_RUNS_MAX = 100_000  # runs one grouped-history call may aggregate
GROUPED_KEYS_MAX = 100  # metrics it may ask for at once


class _StopAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None
    by: str | None = None


class _HistoryAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_ids: list[str] | None = None
    keys: list[str] | None = None


class _GroupedAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: dict[str, str] = Field(max_length=GROUPED_RUNS_MAX)  # run ID -> its group's label
    keys: list[str] = Field(min_length=1, max_length=GROUPED_KEYS_MAX)
    x: Literal["step", "time"] = "step"
    band: Literal["std", "minmax", "ci"] = "std"
    smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    points: int = Field(default=500, ge=1, le=MAX_POINTS)


class _EditAsked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["name", "notes", "tag", "untag", "delete", "restore"]
    key: str | None = None
    value: Any = None
    by: str | None = None


STOP_WAIT_MAX = 30.0  # seconds a stop-requests call may be held open
STOP_RUNS_MAX = 1000  # runs one stop-requests call may watch
# calls one user (a host, on a store without users) may hold open on stop-requests at once
# (a job holds one): past it the server answers 503 at once, so nobody ties up the server
STOP_WATCHES_PER_USER = 64
_STOP_ASKED = TypeAdapter(_StopAsked)
_EDIT_ASKED = TypeAdapter(_EditAsked)
_HISTORY_ASKED = TypeAdapter(_HistoryAsked)
_GROUPED_ASKED = TypeAdapter(_GroupedAsked)


def readable_runs(g: Gate, run_ids: list[str] | None) -> list[str] | None:
    """The runs asked for (None: all) that the caller may read: a run of an experiment they
    may not read is left out, as if it had nothing to show."""
    visible = g.experiments()
    if visible is None:
        return run_ids
    allowed = set(g.store.search_runs(experiment=visible, view="all")["run_id"]) if visible else set()
    return [r for r in (run_ids if run_ids is not None else allowed) if r in allowed]


def routes(store: Store) -> APIRouter:
    ingest = RunIngest(store.layout)
    api = APIRouter(prefix="/api/v1")

    creating = threading.Lock()  # one first upload at a time makes a new experiment (and its manager)
    watches: dict[str, int] = {}  # stop-requests calls held open, by user or host (the event loop's: no lock)

    def may_log(g: Gate, run_id: str, experiment: str) -> None:
        """The caller may log ``run_id`` into ``experiment``: an existing run into its own
        experiment (named by its first line), a new run into one they may edit."""
        started_in = ingest.experiment_of(run_id)
        if started_in is not None:
            g.require_run(run_id, started_in, "edit", "log into it")
        else:
            g.require("experiment", experiment, "edit", "log into it")

    def append(g: Gate, run_id: str, experiment: str, body: bytes) -> Appended:
        if ingest.experiment_of(run_id) is not None or store.layout.experiment_dir(experiment).is_dir():
            may_log(g, run_id, experiment)
            require_sent(store, g, body)  # a line may name only a blob its writer has
            return ingest.append(experiment, run_id, body)
        with creating:  # decided and written under one lock: two first uploads make one manager
            existed = store.layout.experiment_dir(experiment).is_dir()
            if existed:
                may_log(g, run_id, experiment)
            require_sent(store, g, body)
            done = ingest.append(experiment, run_id, body)
            if done.written and not existed:
                g.created("experiment", experiment)
            return done

    @api.get("/runs/{run_id}/last-seq")
    def last_seq(run_id: str, g: Gate = Depends(gate)) -> dict[str, int]:
        experiment = ingest.experiment_of(run_id)
        if experiment is not None:
            g.require_run(run_id, experiment, "edit", "log into it")
        return {"last_seq": ingest.last_seq(run_id)}

    @api.post("/runs/{run_id}/events")
    async def events(run_id: str, experiment: str, request: Request, g: Gate = Depends(gate)) -> Any:
        body = await read_body(request)
        done = await run_in_threadpool(append, g, run_id, experiment, body)  # the file work is off the loop
        return {"written": done.written, "duplicates": done.duplicates, "last_seq": done.last_seq}

    @api.post("/runs/{run_ref}/stop", openapi_extra=json_body(_STOP_ASKED))
    async def request_stop(run_ref: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _STOP_ASKED, "a stop request")
        run_id = g.run(run_ref, "edit", "stop its runs")
        return {"run_id": store.request_stop(run_id, asked.reason, by=g.by(asked.by))}

    @api.post("/runs/{run_ref}/edits", openapi_extra=json_body(_EDIT_ASKED))
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

    @api.put("/runs/{run_id}/edits/{edit_id}", openapi_extra=json_body(RUN_EDIT))
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
            g.require_run(run_id, experiment, "edit", "log into it")
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
                g.require_run(run_id, experiment, "edit", "log into it")
                watched.append(run_id)
        until = time.monotonic() + (min(max(wait, 0.0), STOP_WAIT_MAX) if math.isfinite(wait) else 0.0)
        # by user; on a store without users every caller shares the one token, so by host
        # (a team's jobs run on many machines: one limit for all of them would slow their stops)
        host = request.client.host if request.client else "?"
        who = f"user {g.user.name}" if g.user is not None else f"host {host}"
        if watches.get(who, 0) >= STOP_WATCHES_PER_USER:
            raise BusyError(f"{who} holds {STOP_WATCHES_PER_USER} stop-requests calls open already: "
                            "ask again later")
        watches[who] = watches.get(who, 0) + 1
        try:
            while True:
                found = {run_id: [r.model_dump(mode="json") for r in ingest.stop_requests(run_id)]
                         for run_id in watched}
                found = {run_id: requests for run_id, requests in found.items() if requests}
                if (found or time.monotonic() >= until or request.app.state.stopping.is_set()
                        or await request.is_disconnected()):
                    return found
                await asyncio.sleep(0.1)
        finally:
            watches[who] -= 1

    @api.get("/runs/{run_id}/events")
    def run_lines(run_id: str, g: Gate = Depends(gate)) -> Response:
        """The run's file as the server holds it (its acknowledged lines): a job resuming
        the run on another machine continues from them."""
        experiment = ingest.experiment_of(run_id)
        if experiment is None:
            raise NotFoundError(f"no run {run_id}")
        g.require_run(run_id, experiment, "edit", "resume its runs")
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

    @api.post("/metric-history", openapi_extra=json_body(_HISTORY_ASKED))
    async def metric_history(request: Request, g: Gate = Depends(gate)) -> Response:
        asked = await parsed(request, _HISTORY_ASKED, "a metric-history query")
        return arrow(await run_in_threadpool(store.metric_history, readable_runs(g, asked.run_ids), asked.keys))

    @api.post("/histograms", openapi_extra=json_body(_HISTORY_ASKED))
    async def histograms(request: Request, g: Gate = Depends(gate)) -> Response:
        """Store.histograms of the runs asked for (all: None) that the caller may read."""
        asked = await parsed(request, _HISTORY_ASKED, "a histograms query")
        return arrow(await run_in_threadpool(store.histograms, readable_runs(g, asked.run_ids), asked.keys))

    @api.post("/grouped-history", openapi_extra=json_body(_GROUPED_ASKED))
    async def grouped_history(request: Request, g: Gate = Depends(gate)) -> Response:
        """Store.grouped_history over the runs asked for that the caller may read: the others
        are left out, as if they had no points."""
        asked = await parsed(request, _GROUPED_ASKED, "a grouped-history query")
        kept = set(readable_runs(g, list(asked.groups)) or ())
        groups = {run_id: label for run_id, label in asked.groups.items() if run_id in kept}
        return arrow(await run_in_threadpool(lambda: store.grouped_history(
            groups, asked.keys, x=asked.x, band=asked.band, smoothing=asked.smoothing, points=asked.points)))

    @api.get("/experiments")
    def experiments(g: Gate = Depends(gate)) -> Response:
        table = store.experiments()
        visible = g.experiments()
        return arrow(table if visible is None else table[table["experiment"].isin(visible)].reset_index(drop=True))

    @api.post("/compact")
    def compact(rebuild: bool = False, g: Gate = Depends(gate)) -> dict[str, Any]:
        """``mltrail compact [--rebuild]`` against the server: what the compaction did."""
        # what it read says how many runs the store holds, and its bad lines name their
        # files: a user's queries compact by themselves (POST /refresh)
        g.admin("compacting the store and reading what it found")
        return dataclasses.asdict(store.compact(rebuild=rebuild))

    @api.post("/refresh")
    def refresh() -> dict[str, int]:
        """Compact what is new (each reader would otherwise ask for it); the generation
        of the tables, which changes when they do."""
        return {"generation": store.refresh()}

    return api

