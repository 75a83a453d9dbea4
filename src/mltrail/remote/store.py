"""``mltrail.Store("http://host:5050")``: a store behind ``mltrail server``.

A training job never waits for the network and never loses a point because of it: its
runs are written exactly as a local store writes them, into a *spool* folder on the
job's own disk (``$MLTRAIL_SPOOL``, else ``~/.cache/mltrail/spool/<host>-<port>``), and a
background thread sends their new lines to the server every ``MLTRAIL_FLUSH_SECONDS``
(:class:`~mltrail.remote.upload.RunUpload`: in order, each line kept once by the server).
While the server is away the lines wait in the spool; at exit the job waits up to
``MLTRAIL_UPLOAD_WAIT_SECONDS`` for the last of them and says what is left, which
``mltrail sync SPOOL --to URL`` sends later. Reads (``search_runs``, ``metric_history``)
are answered by the server, in Arrow IPC.
"""

from __future__ import annotations

import atexit
import io
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from ..config import FLUSH_SECONDS, UPLOAD_WAIT_SECONDS, current_user
from ..errors import MltrailError, UpstreamError
from ..storage.blobs import BlobStore
from ..storage.eventfiles import StopRequest, write_event_file
from ..storage.layout import Layout
from ..tracking.run import Run
from ..tracking.tracker import DEFAULT_EXPERIMENT, Tracker
from .http import Server
from .upload import RunUpload


class NotOnServerError(MltrailError, AttributeError):
    """A store call that a store behind a server does not offer yet (``hasattr`` is False)."""


def is_url(root: object) -> bool:
    return isinstance(root, str) and root.startswith(("http://", "https://"))


def default_spool(url: str) -> Path:
    configured = os.environ.get("MLTRAIL_SPOOL")
    if configured:
        return Path(configured).expanduser().absolute()
    where = urllib.parse.urlsplit(url)
    return Path.home() / ".cache" / "mltrail" / "spool" / f"{where.hostname}-{where.port or 80}"


class RemoteStore:
    """The runs part of a store, against a server (issue 15 adds the rest)."""

    def __init__(self, url: str, *, token: str | None = None, spool: str | os.PathLike[str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.server = Server(self.url, token if token is not None else os.environ.get("MLTRAIL_TOKEN") or None)
        self.spool = Path(spool).absolute() if spool is not None else default_spool(self.url)
        layout = Layout(self.spool)
        self.tracking = Tracker(layout, BlobStore(layout), None)
        self._uploads: dict[Path, RunUpload] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # registered before any run's own exit handler (which a first run registers), so
        # it runs after that one has ended the runs: their last lines go up too
        atexit.register(self._at_exit)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy, pickle and hasattr probes: the usual answer
            raise AttributeError(name)
        raise NotOnServerError(f"Store({self.url!r}).{name} is not available against a server yet; "
                               "open the server's folder with mltrail.Store(PATH) there")

    # -- writing: into the spool, sent in the background ------------------------------

    def start_run(self, experiment: str = DEFAULT_EXPERIMENT, **options: Any) -> Run:
        """As :meth:`mltrail.Store.start_run`; the run is sent to the server as it logs."""
        run = self.tracking.start_run(experiment, **options)
        with self._lock:
            self._uploads[run.path] = RunUpload(self.server, run.path)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="mltrail-upload", daemon=True)
                self._thread.start()
        return run

    def upload(self) -> int:
        """Send what the runs logged since the last send (the background thread does
        this every MLTRAIL_FLUSH_SECONDS); the runs not yet entirely on the server."""
        with self._lock:
            uploads = list(self._uploads.values())
        left = 0
        for upload in uploads:
            try:
                upload.send()
                if not upload.finished:
                    self._fetch_stop_requests(upload)
            except UpstreamError:
                pass  # the lines wait in the spool; the next round tries again
            except FileNotFoundError:  # the spool was removed under the job: nothing left to send
                print(f"mltrail: {upload.path} left the spool before it all reached {self.url}", file=sys.stderr)
                upload.finished = True
            if upload.finished:
                with self._lock:
                    self._uploads.pop(upload.path, None)
            else:
                left += 1
        return left

    def request_stop(self, run: str, reason: str | None = None, *, by: str | None = None) -> str:
        """As :meth:`mltrail.Store.request_stop`, on the server: the run's job sees it
        within a few seconds, wherever it runs; the run's ID."""
        body = orjson.dumps({"reason": reason, "by": by or current_user()})
        return self.server.call("POST", f"/api/v1/runs/{urllib.parse.quote(run, safe='')}/stop", body)["run_id"]

    def _fetch_stop_requests(self, upload: RunUpload) -> None:
        """Copy the server's requests to stop a run into the spool, where the run looks."""
        folder = self.tracking.layout.stop_requests(upload.path)
        for request in self.server.call("GET", f"/api/v1/runs/{upload.run_id}/stop"):
            if not (folder / f"{request['id']}.jsonl").exists():
                write_event_file(folder, request["id"], StopRequest.model_validate(request))

    def _loop(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS.get())
            try:
                self.upload()
            except Exception as exc:  # noqa: BLE001 - the uploader must outlive one round's fault
                print(f"mltrail: upload to {self.url} failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _at_exit(self) -> None:
        deadline = time.monotonic() + UPLOAD_WAIT_SECONDS.get()
        while self._uploads and self.upload() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._uploads:
            print(f"mltrail: {len(self._uploads)} run(s) not yet on {self.url} wait in {self.spool}; "
                  f"send them with: mltrail sync {self.spool} --to {self.url}", file=sys.stderr)

    # -- reading: answered by the server ---------------------------------------------

    def search_runs(self, experiment: str | Sequence[str] | None = None, filter: str | None = None,
                    order_by: Sequence[str] | str | None = None, max_results: int | None = None) -> pd.DataFrame:
        """As :meth:`mltrail.Store.search_runs`, on the server's runs."""
        query = {"experiment": [experiment] if isinstance(experiment, str) else list(experiment or []),
                 "order_by": [order_by] if isinstance(order_by, str) else list(order_by or [])}
        if filter:
            query["filter"] = [filter]
        if max_results is not None:
            query["max_results"] = [str(max_results)]
        return _frame(self.server.call("GET", f"/api/v1/search?{urllib.parse.urlencode(query, doseq=True)}", raw=True))

    def metric_history(self, run_ids: Sequence[str] | None = None,
                       keys: Sequence[str] | None = None) -> pd.DataFrame:
        """As :meth:`mltrail.Store.metric_history`, on the server's runs."""
        body = orjson.dumps({"run_ids": list(run_ids) if run_ids is not None else None,
                             "keys": list(keys) if keys is not None else None})
        return _frame(self.server.call("POST", "/api/v1/metric-history", body, raw=True))


def _frame(data: bytes) -> pd.DataFrame:
    with pa.ipc.open_stream(io.BytesIO(data)) as reader:
        return reader.read_all().to_pandas()
