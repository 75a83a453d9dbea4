"""``mltrail.Store("http://host:5050")``: a store behind ``mltrail server``.

A training job never waits for the network and never loses a point because of it: its
runs are written exactly as a local store writes them, into a *spool* folder on the
job's own disk (``$MLTRAIL_SPOOL``, else ``~/.cache/mltrail/spool/<host>-<port>``), and a
background thread sends their new lines to the server every quarter second
(:class:`~mltrail.remote.upload.RunUpload`: in order, each line kept once by the server).
While the server is away the lines wait in the spool; at exit the job waits up to
``MLTRAIL_UPLOAD_WAIT_SECONDS`` for the last of them and says what is left, which
``mltrail sync SPOOL --to URL`` sends later. A blob (an artifact, a diff) goes up just
before the first line that names it.

The other parts are the server's, through the same API as a local store: ``store.ab``
(:mod:`.ab`: a router's exposures and feedback spooled and sent the same way),
``store.registry`` (:mod:`.registry`), ``store.features`` (:mod:`.features`, reading).
Reads (``search_runs``, ``metric_history``, ``experiments``, ``get_run``) are answered
by the server in Arrow IPC; a blob (an artifact, a model) is fetched once into the
spool and its sha256 checked.
"""

from __future__ import annotations

import atexit
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

from ..compaction.compact import CompactionResult
from ..config import FLUSH_SECONDS, UPLOAD_WAIT_SECONDS, current_user
from ..errors import MltrailError, NotFoundError, UpstreamError
from ..query.cells import present
from ..registry.models import ModelVersion
from ..storage.blobs import BlobStore
from ..storage.eventfiles import StopRequest, write_event_file
from ..storage.eventlog import BadLine
from ..storage.layout import Layout
from ..tracking.run import Run
from ..tracking.tracker import DEFAULT_EXPERIMENT, Tracker
from .ab import RemoteAbRegistry, SegmentUpload
from .access import RemoteAccess
from .blob_upload import send_blob
from .features import RemoteFeatureStore
from .http import NotOnServerError, Server
from .registry import RemoteModelRegistry
from .upload import RunUpload
from .wire import read_frame, unpack

UPLOAD_TICK_SECONDS = 0.25


def is_url(root: object) -> bool:
    return isinstance(root, str) and root.startswith(("http://", "https://"))


def default_spool(url: str) -> Path:
    configured = os.environ.get("MLTRAIL_SPOOL")
    if configured:
        return Path(configured).expanduser().absolute()
    where = urllib.parse.urlsplit(url)
    return Path.home() / ".cache" / "mltrail" / "spool" / f"{where.hostname}-{where.port or 80}"


class RemoteStore:
    """A store behind ``mltrail server``: the API of :class:`mltrail.Store`."""

    def __init__(self, url: str, *, token: str | None = None, spool: str | os.PathLike[str] | None = None,
                 acting_as: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.server = Server(self.url, token if token is not None else os.environ.get("MLTRAIL_TOKEN") or None,
                             acting_as=acting_as)
        self.spool = Path(spool).absolute() if spool is not None else default_spool(self.url)
        layout = Layout(self.spool)
        self.blobs = BlobStore(layout)
        self.tracking = Tracker(layout, self.blobs, None)
        self.tracking.on_start = self._track
        self.ab = RemoteAbRegistry(self.server, layout, on_logged=self._start_uploading)
        self.registry = RemoteModelRegistry(self.server, layout, self.blobs, self._fetch_blob, self.get_run)
        self.features = RemoteFeatureStore(self.server, layout, self.blobs, self._fetch_blob)
        self.access = RemoteAccess(self.server)
        self._uploads: dict[Path, RunUpload] = {}
        self._segments: dict[Path, SegmentUpload] = {}
        self._blobs_sent: set[str] = set()
        self._blob_retry: dict[str, tuple[int, float]] = {}  # a blob's failed tries, and when to try again
        self._sending_blob = threading.Lock()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        # registered before any run's own exit handler (which a first run registers), so
        # it runs after that one has ended the runs: their last lines go up too
        atexit.register(self._at_exit)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @property
    def root(self) -> str:
        """The server's URL (a local store's root is its folder)."""
        return self.url

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy, pickle and hasattr probes: the usual answer
            raise AttributeError(name)
        raise NotOnServerError(f"Store({self.url!r}).{name} is not available against a server yet; "
                               "open the server's folder with mltrail.Store(PATH) there")

    # -- writing: into the spool, sent in the background ------------------------------

    def start_run(self, experiment: str = DEFAULT_EXPERIMENT, **options: Any) -> Run:
        """As :meth:`mltrail.Store.start_run`; the run is sent to the server as it logs."""
        return self.tracking.start_run(experiment, **options)  # (its upload: _track, on start)

    def _track(self, run: Run) -> None:
        """Send a run this store's tracker started (by start_run, or as another run's
        child from autologging) to the server as it logs."""
        with self._lock:
            self._uploads[run.path] = RunUpload(self.server, run.path, self._send_blob)
        self._start_uploading()

    def _start_uploading(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                if self._closing.is_set():  # logging again after a close: send at exit again too
                    self._closing.clear()  # (registered anew, it runs before the runs' own exit
                    atexit.register(self._at_exit)  # handler: a run left open then says it waits in the spool)
                self._thread = threading.Thread(target=self._loop, name="mltrail-upload", daemon=True)
                self._thread.start()

    def upload(self) -> int:
        """Send what this process logged since the last send (the background thread does
        this every quarter second): run lines (and the blobs they name), then A/B log lines; the
        runs and log segments not yet entirely on the server."""
        return self._send_runs() + self._send_segments()

    def _send_blob(self, sha256: str) -> None:
        """A blob a line about to be sent names (an artifact, a diff), if the server lacks
        it: in parts, resumed from what the server holds (:mod:`.blob_upload`). After a
        failure the next try waits, doubling up to a minute, and then sends only the parts
        the server lacks: a file the server cannot take is not sent again every tick."""
        if sha256 in self._blobs_sent:
            return
        failures, not_before = self._blob_retry.get(sha256, (0, 0.0))
        if time.monotonic() < not_before:
            raise UpstreamError(f"blob {sha256[:12]}... waits {not_before - time.monotonic():.1f} s "
                                f"before its next try ({failures} failed)")
        path = self.blobs.path(sha256)
        # close() sends too once the background thread outlasts its join: one sender at a time
        if not self._sending_blob.acquire(blocking=False):
            raise UpstreamError(f"blob {sha256[:12]}... is being sent by another thread of this job")
        try:
            send_blob(self.server, sha256, path, large=path.is_relative_to(self.tracking.layout.large_blobs))
        except UpstreamError:
            self._blob_retry[sha256] = (failures + 1, time.monotonic() + min(60.0, UPLOAD_TICK_SECONDS * 2 ** failures))
            raise
        finally:
            self._sending_blob.release()
        self._blob_retry.pop(sha256, None)
        self._blobs_sent.add(sha256)

    def _send_segments(self) -> int:
        left = 0
        for key, log in list(self.ab._logs.items()):
            for path in log.segments:
                upload = self._segments.get(path)
                if upload is None:
                    upload = self._segments[path] = SegmentUpload(self.server, key, path)
                if upload.refused:
                    continue
                try:
                    upload.send()
                except UpstreamError:
                    pass  # the lines wait in the spool
                except MltrailError as exc:  # refused (no permission, a bad line): retrying cannot help
                    upload.refused = True
                    _refused(path, self.url, exc)
                    continue
                if upload.offset is None or path.stat().st_size > upload.offset:
                    left += 1
        return left

    def _send_runs(self) -> int:
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
            except MltrailError as exc:  # refused (no permission to log there): retrying cannot help
                _refused(upload.path, self.url, exc)
                upload.finished = True
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
        # a few times per flush: a line waits for the next tick, not a whole flush period
        # (a tick with nothing new costs a read at the end of each file)
        while not self._closing.wait(min(FLUSH_SECONDS.get(), UPLOAD_TICK_SECONDS)):
            try:
                self.upload()
            except Exception as exc:  # noqa: BLE001 - the uploader must outlive one round's fault
                print(f"mltrail: upload to {self.url} failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def close(self, wait: float | None = None) -> int:
        """Flush this process's A/B logs and send what is left, waiting up to ``wait``
        seconds (default ``MLTRAIL_UPLOAD_WAIT_SECONDS``); say what stays in the spool.
        Called at exit; the runs and segments not yet on the server."""
        atexit.unregister(self._at_exit)
        # the background sender stops first: close sends the rest itself, and no thread of
        # ours may be mid-call when the interpreter finalizes (glibc aborts a thread killed
        # inside a native call: "FATAL: exception not rethrown")
        self._closing.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        for log in list(self.ab._logs.values()):  # their own exit flush would come after this
            try:
                log.flush()
            except OSError as exc:
                print(f"mltrail: could not flush {log.describe()}: {exc}", file=sys.stderr)
        if not self._uploads and not self.ab._logs:
            return 0
        deadline = time.monotonic() + (UPLOAD_WAIT_SECONDS.get() if wait is None else wait)
        left = self.upload()
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = self.upload()
        if left:
            runs, segments = len(self._uploads), max(0, left - len(self._uploads))
            what = " and ".join(part for part in (f"{runs} run(s)" if runs else "",
                                                  f"{segments} A/B log segment(s)" if segments else "") if part)
            print(f"mltrail: {what} not yet on {self.url} wait in {self.spool}; "
                  f"send them with: mltrail sync {self.spool} --to {self.url}", file=sys.stderr)
        return left

    def _at_exit(self) -> None:
        self.close()

    def import_mlflow(self, source: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotOnServerError(f"an MLflow store is imported where the server's folder is: mltrail --store "
                               f"FOLDER import mlflow {source} there (the server serves what it writes); or "
                               f"import into a folder of your own and send its runs with mltrail sync FOLDER "
                               f"--to {self.url} (runs only: registered models stay in that folder)")

    # -- reading: answered by the server ---------------------------------------------

    def search_runs(self, experiment: str | Sequence[str] | None = None, filter: str | None = None,
                    order_by: Sequence[str] | str | None = None, max_results: int | None = None,
                    view: str = "active") -> pd.DataFrame:
        """As :meth:`mltrail.Store.search_runs`, on the server's runs."""
        query = {"experiment": [experiment] if isinstance(experiment, str) else list(experiment or []),
                 "order_by": [order_by] if isinstance(order_by, str) else list(order_by or []),
                 "view": [view]}
        if filter:
            query["filter"] = [filter]
        if max_results is not None:
            query["max_results"] = [str(max_results)]
        return read_frame(self.server.call("GET", f"/api/v1/search?{urllib.parse.urlencode(query, doseq=True)}", raw=True))

    def metric_history(self, run_ids: Sequence[str] | None = None,
                       keys: Sequence[str] | None = None) -> pd.DataFrame:
        """As :meth:`mltrail.Store.metric_history`, on the server's runs."""
        body = orjson.dumps({"run_ids": list(run_ids) if run_ids is not None else None,
                             "keys": list(keys) if keys is not None else None})
        return read_frame(self.server.call("POST", "/api/v1/metric-history", body, raw=True))

    def experiments(self) -> pd.DataFrame:
        """As :meth:`mltrail.Store.experiments`, on the server's runs."""
        return read_frame(self.server.call("GET", "/api/v1/experiments", raw=True))

    def get_run(self, ref: str) -> dict[str, Any]:
        """As :meth:`mltrail.Store.get_run`, a run on the server."""
        parts = unpack(self.server.call("GET", f"/api/v1/runs/{_quoted(ref)}", raw=True))
        parts["run"] = {k: present(v) for k, v in parts["run"].iloc[0].to_dict().items()}  # missing is None, as here
        return parts

    def resolve_run(self, ref: str) -> str:
        return str(self.server.call("GET", f"/api/v1/runs/{_quoted(ref)}/id")["run_id"])

    # -- curation: the server writes the edit files --------------------------------------

    def set_run_name(self, run: str, name: str, *, by: str | None = None) -> str:
        return self._edit(run, "name", by, value=name)

    def set_run_notes(self, run: str, notes: str, *, by: str | None = None) -> str:
        return self._edit(run, "notes", by, value=notes)

    def set_tag(self, run: str, key: str, value: Any, *, by: str | None = None) -> str:
        return self._edit(run, "tag", by, key=key, value=str(value))

    def delete_tag(self, run: str, key: str, *, by: str | None = None) -> str:
        return self._edit(run, "untag", by, key=key)

    def delete_run(self, run: str, *, by: str | None = None) -> str:
        return self._edit(run, "delete", by)

    def restore_run(self, run: str, *, by: str | None = None) -> str:
        return self._edit(run, "restore", by)

    def run_edits(self, run: str) -> pd.DataFrame:
        """The edits made to one run, oldest first (against a server, one run at a time)."""
        return self.get_run(run)["edits"]

    def _edit(self, run: str, kind: str, by: str | None, **fields: Any) -> str:
        body = orjson.dumps({"kind": kind, "by": by or current_user(), **fields})
        return str(self.server.call("POST", f"/api/v1/runs/{_quoted(run)}/edits", body)["run_id"])

    def reproduce_script(self, run: str) -> str:
        return self.server.call("GET", f"/api/v1/runs/{_quoted(run)}/reproduce", raw=True).decode()

    def refresh(self) -> int:
        """The server compacts what is new; the generation of its tables (a cache key)."""
        return int(self.server.call("POST", "/api/v1/refresh")["generation"])

    def compact(self, rebuild: bool = False, progress: Any = None) -> CompactionResult:
        """The server compacts (``rebuild``: from the events alone); what it did."""
        done = self.server.call("POST", f"/api/v1/compact?rebuild={str(bool(rebuild)).lower()}")
        done["bad_lines"] = [BadLine(**bad) for bad in done["bad_lines"]]
        return CompactionResult(**done)

    def artifact_path(self, run: str, name: str) -> Path:
        """A run's artifact, fetched from the server into the spool once (sha256 checked)."""
        details = self.get_run(run)
        artifacts = details["artifacts"].set_index("path")
        if name not in artifacts.index:
            known = ", ".join(artifacts.index) or "none"
            raise NotFoundError(f"run {details['run']['run_id']} logged no artifact {name!r} (artifacts: {known})")
        return self._fetch_blob(artifacts.loc[name, "sha256"])

    def blob(self, sha256: str) -> bytes:
        return self._fetch_blob(sha256).read_bytes()

    def _fetch_blob(self, sha256: str) -> Path:
        """A blob of the server in the spool's blobs (fetched once), its sha256 checked."""
        try:
            return self.blobs.verified(sha256, f"blob {sha256}")
        except NotFoundError:
            pass
        fetched = self.blobs.staging_file()  # streamed to disk and hashed as it arrives: never whole in memory
        try:
            digest = self.server.download(f"/api/v1/blobs/{_quoted(sha256)}/content", fetched)
        except MltrailError:
            fetched.unlink(missing_ok=True)
            raise
        return self.blobs.keep_fetched(fetched, sha256, digest, large=True)  # the spool is no git repository

    # -- the parts together ------------------------------------------------------------

    def load_model(self, uri: str) -> Any:
        """As :meth:`mltrail.Store.load_model`: the artifact is fetched from the server."""
        return self.registry.load(uri)

    def promote_winner(self, experiment: str, alias: str = "production", force: bool = False,
                       by: str | None = None) -> ModelVersion:
        """As :meth:`mltrail.Store.promote_winner`, done by the server."""
        answer = self.server.call("POST", f"/api/v1/ab/{_quoted(experiment)}/promote",
                                  orjson.dumps({"alias": alias, "force": force, "by": by}))
        return self.registry.get(answer["model"], answer["version"])


def _refused(path: Path, url: str, exc: MltrailError) -> None:
    print(f"mltrail: {url} refused {path.name} ({type(exc).__name__}: {exc}); it stays in {path.parent}",
          file=sys.stderr)


def _quoted(name: str) -> str:
    return urllib.parse.quote(str(name), safe="")
