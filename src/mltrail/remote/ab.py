"""``store.ab`` against a server: the experiments are the server's, read as their
lifecycle events and replayed here exactly as a local store replays its files; changes
are checked and written by the server. This process's exposures and feedback go into
the spool as segments a local store would write, and are sent in the background
(:class:`SegmentUpload`), so a router on another host logs without waiting for the
network and loses nothing while the server is away. ``results()`` is computed by the
server on its compacted log, after this process's own lines are sent."""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
from pydantic import ValidationError

from ..ab.experiment import AbRegistry, Experiment
from ..errors import InvalidInputError, NotOnServerError
from ..storage import ab_events as ev
from ..storage.layout import Layout
from .http import Server
from .upload import whole_lines_from
from .wire import unpack

if TYPE_CHECKING:
    from ..ab.analysis import Results
    from ..compaction.ablog import AbLog


def _quoted(name: str) -> str:
    return urllib.parse.quote(str(name), safe="")


class RemoteAbRegistry(AbRegistry):
    """The server's A/B experiments, with this process's logs spooled under ``spool``."""

    def __init__(self, server: Server, spool: Layout, on_logged: Any = None) -> None:
        super().__init__(spool)
        self.server = server
        self._on_logged = on_logged  # called when this process opens a log: the uploader watches it

    def lifecycle(self, key: str) -> list[ev.AbEvent]:
        return [ev.AB_EVENT_ADAPTER.validate_python(e)
                for e in self.server.call("GET", f"/api/v1/ab/{_quoted(key)}/lifecycle")]

    def keys(self) -> list[str]:
        return list(self.server.call("GET", "/api/v1/ab"))

    def exists(self, key: str) -> bool:
        return key in self.keys()

    def create(self, spec: ev.ExperimentSpec | Mapping[str, Any], *, by: str | None = None) -> Experiment:
        try:  # the same check and message as a local store, before anything is sent
            spec = spec if isinstance(spec, ev.ExperimentSpec) else ev.ExperimentSpec.model_validate(spec)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors())
            raise InvalidInputError(f"invalid experiment spec: {problems}") from None
        body = orjson.dumps({"spec": spec.model_dump(mode="json"), "by": by})
        self.server.call("POST", "/api/v1/ab", body)
        return self.get(spec.key)

    def append(self, key: str, model: type[ev.AbEvent], **fields: Any) -> Experiment:
        kind = model.model_fields["type"].default
        # the arguments of the Experiment's method, which the server calls: it draws a
        # new phase's seed itself
        arguments = {name: value for name, value in fields.items() if name != "seed"}
        self.server.call("POST", f"/api/v1/ab/{_quoted(key)}/lifecycle",
                         orjson.dumps({"type": kind, "fields": arguments}))
        if key in self._logs:
            self._logs[key].recheck_state()
        return self.get(key)

    def log(self, key: str) -> Any:
        opened = key not in self._logs
        log = super().log(key)
        if opened and self._on_logged is not None:
            self._on_logged()
        return log

    def dimensions(self, exp: Experiment) -> list[str]:
        self._send_log(exp)
        return list(self.server.call("GET", f"/api/v1/ab/{_quoted(exp.key)}/dimensions"))

    def results_by(self, exp: Experiment, dimension: str, phase: int | None = None,
                   sequential: bool | None = None, engine: str = "duckdb") -> Any:
        """As :meth:`Experiment.results_by`, computed by the server."""
        from ..ab.analysis import DimensionResults, Results

        if engine != "duckdb":
            raise NotOnServerError(f"results_by(engine={engine!r}) runs where the store's folder is; "
                                   "against a server, the server's engine analyses")
        self._send_log(exp)
        body = orjson.dumps({"dimension": dimension, "phase": phase, "sequential": sequential})
        parts = unpack(self.server.call("POST", f"/api/v1/ab/{_quoted(exp.key)}/results-by", body, raw=True))
        names = [f.name for f in dataclasses.fields(Results)]
        return DimensionResults(parts["dimension"], {
            segment: Results(**{name: parts[f"{i}.{name}"] for name in names})
            for i, segment in enumerate(parts["segments"])})

    def _send_log(self, exp: Experiment) -> None:
        """This process's exposures and feedback of ``exp``, flushed and sent first."""
        log = self.open_log(exp.key)
        if log is not None:
            log.flush()
            for segment in log.segments:
                SegmentUpload(self.server, exp.key, segment).send()

    def results(self, exp: Experiment, phase: int | None = None, sequential: bool | None = None,
                covariate: pd.Series | None = None, engine: str = "duckdb") -> Results:
        from ..ab.analysis import Results

        if engine != "duckdb":  # the server aggregates where its files are, on its own engine
            raise NotOnServerError(f"results(engine={engine!r}) runs where the store's folder is; "
                                   "against a server, the server's engine analyses")
        self._send_log(exp)
        body = orjson.dumps({"phase": phase, "sequential": sequential,
                             "covariate": None if covariate is None else
                             {str(k): float(v) for k, v in covariate.items()}})
        parts = unpack(self.server.call("POST", f"/api/v1/ab/{_quoted(exp.key)}/results", body, raw=True))
        return Results(**parts)

    def fingerprint(self, key: str) -> tuple[int, int]:
        lifecycle, logged = self.server.call("GET", f"/api/v1/ab/{_quoted(key)}/fingerprint")
        return int(lifecycle), int(logged)

    def log_tables(self, exp: Experiment, rebuild: bool = False) -> AbLog:
        raise NotOnServerError("the compacted log of an experiment is on the server: ask it for "
                                "results(), or open its folder with mltrail.Store(PATH) there")


class SegmentUpload:
    """One log segment's progress towards the server (it only grows: one writer)."""

    def __init__(self, server: Server, key: str, path: Path) -> None:
        self.server = server
        self.key = key
        self.path = path
        self.offset: int | None = None  # bytes the server holds, once asked
        self.refused = False  # the server refused it (no permission, a bad line): not sent again

    def send(self) -> int:
        """Send the whole lines the server lacks; the bytes sent. Raises UpstreamError
        when the server cannot be reached (the lines wait in the spool)."""
        where = f"/api/v1/ab/{_quoted(self.key)}/log/{_quoted(self.path.name)}"
        if self.offset is None:
            self.offset = self.server.call("GET", where)["size"]
        data = whole_lines_from(self.path, self.offset)
        if not data:
            return 0
        try:
            self.offset = self.server.call("POST", f"{where}?offset={self.offset}", data)["size"]
        except Exception:
            self.offset = None  # ask again: the server may hold more (or less) than was thought
            raise
        return len(data)
