"""``mltrail.Store("http://host:5050")``: a store behind ``mltrail server``.

A training job never waits for the network and never loses a point because of it: its
runs are written exactly as a local store writes them, into a *spool* folder on the
job's own disk (``$MLTRAIL_SPOOL``, else one per server and per user:
``~/.cache/mltrail/spool/<host>-<port>/<key>``, the key a hash of the token), and a
background thread sends their new lines to the server every quarter second
(:class:`~mltrail.remote.upload.RunUpload`: in order, each line kept once by the server).
While the server is away the lines wait in the spool; at exit the job waits up to
``MLTRAIL_UPLOAD_WAIT_SECONDS`` for the last of them (no call outlives that wait) and
says what is left, a run the server refused included, which ``mltrail sync SPOOL --to
URL`` sends later. A blob (an artifact, a diff) goes up just before the first line that
names it. An ended run the server holds all of leaves the spool.

What the job promises its user besides: a read or a registry call first sends the job's
own pending lines (it reads what it wrote); ``start_run(run_id=...)`` resumes a run
logged on another machine (its lines come from the server); a stop watcher holds one
call open on the server and hands a request to stop a run to it at once.

The other parts are the server's, through the same API as a local store: ``store.ab``
(:mod:`.ab`: a router's exposures and feedback spooled and sent the same way),
``store.registry`` (:mod:`.registry`), ``store.features`` (:mod:`.features`, reading).
Reads (``search_runs``, ``metric_history``, ``experiments``, ``get_run``) are answered
by the server in Arrow IPC; a blob (an artifact, a model) is fetched once into the
spool and its sha256 checked.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import logging
import os
import shutil
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from ..compaction.compact import CompactionResult
from ..config import FLUSH_SECONDS, SPOOL, TOKEN, UPLOAD_WAIT_SECONDS, current_user
from ..contract import method_like
from ..errors import BusyError, MltrailError, NotFoundError, NotOnServerError, UpstreamError
from ..query.cells import present
from ..registry.models import ModelVersion
from ..storage.atomic import write_atomic
from ..storage.blobs import BlobStore
from ..storage.eventfiles import StopRequest, write_event_file
from ..storage.eventlog import BadLine
from ..storage.layout import Layout
from ..tracking.run import Run
from ..tracking.tracker import Tracker
from .ab import RemoteAbRegistry, SegmentUpload
from .access import RemoteAccess
from .blob_upload import send_blob
from .features import RemoteFeatureStore
from .http import Server
from .registry import RemoteModelRegistry
from .reports import RemoteReports
from .views import RemoteSavedViews
from .upload import RunUpload
from .wire import read_frame, unpack

if TYPE_CHECKING:
    from ..compaction.reader import Progress
    from ..migration.mlflow_import import ImportSummary
    from ..query.grouped import Band, XAxis
    from ..tracking.curation import GcResult

UPLOAD_TICK_SECONDS = 0.25
STOP_WAIT_SECONDS = 10.0  # how long the stop watcher's call is held open on the server while nobody asks
logger = logging.getLogger(__name__)


def default_spool(url: str, token: str | None = None) -> Path:
    """``$MLTRAIL_SPOOL`` as given, else one folder per server and per user:
    ``~/.cache/mltrail/spool/<host>-<port>/<key>``, the key derived from the token (a
    hash: the token itself is never written), so that two people sharing an OS account
    never send each other's runs."""
    configured = SPOOL.get()
    if configured:
        return Path(configured).expanduser().absolute()
    where = urllib.parse.urlsplit(url)
    user = f"token-{hashlib.sha256(token.encode()).hexdigest()[:16]}" if token else "no-token"
    return Path.home() / ".cache" / "mltrail" / "spool" / f"{where.hostname}-{where.port or 80}" / user


SPOOL_USER_FILE = "spool.json"  # in a spool: the server's name for the user whose runs it holds


def spool_user(spool: Path) -> str | None:
    """The server user whose runs a spool holds, once a job there learned it (None: not known)."""
    try:
        return orjson.loads((spool / SPOOL_USER_FILE).read_bytes()).get("user")
    except (FileNotFoundError, orjson.JSONDecodeError, AttributeError):
        return None


class RemoteStore:
    """A store behind ``mltrail server``: the API of :class:`mltrail.Store`."""

    def __init__(self, url: str, *, crash_after: float | None = None, token: str | None = None,
                 spool: str | os.PathLike[str] | None = None, acting_as: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.server = Server(self.url, token if token is not None else TOKEN.get() or None,
                             acting_as=acting_as)
        self.spool = Path(spool).absolute() if spool is not None else default_spool(self.url, self.server.token)
        layout = Layout(self.spool)
        self.blobs = BlobStore(layout)
        self.tracking = Tracker(layout, self.blobs, crash_after)
        self.tracking.on_start = self._track
        self.ab = RemoteAbRegistry(self.server, layout, on_logged=self._start_uploading)
        self.registry = RemoteModelRegistry(self.server, layout, self.blobs, self._fetch_blob, self.get_run,
                                            before=self._send_own)
        self.features = RemoteFeatureStore(self.server, layout, self.blobs, self._fetch_blob)
        self.access = RemoteAccess(self.server)
        self.views = RemoteSavedViews(self.server, layout)
        self.reports = RemoteReports(self.server, layout)
        self._uploads: dict[Path, RunUpload] = {}
        self._runs: dict[Path, Run] = {}  # this process's runs, by file: their stop requests go to them
        self._segments: dict[Path, SegmentUpload] = {}
        self._blobs_sent: set[str] = set()
        self._blob_retry: dict[str, tuple[int, float]] = {}  # a blob's failed tries, and when to try again
        self._sending_blob = threading.Lock()
        self._refused: dict[Path, str] = {}  # run files and segments the server refused: why
        self._blobs_unneeded: set[str] = set()  # named by runs pruned from the spool
        self._lock = threading.Lock()
        self._sending = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        # the stop watcher: its own connection, held open on the server until a stop request
        self._watcher = Server(self.url, self.server.token, acting_as=acting_as)
        self._watch_thread: threading.Thread | None = None
        self._watch_changed = threading.Event()  # the runs to watch changed: ask again
        # registered before any run's own exit handler (which a first run registers), so
        # it runs after that one has ended the runs: their last lines go up too
        atexit.register(self._at_exit)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @property
    def root(self) -> str:
        """The server's URL (a local store's root is its folder)."""
        return self.url

    @property
    def crash_after(self) -> float:
        """How long a RUNNING run of this process may stay silent before it reads as CRASHED."""
        return self.tracking.crash_after

    # -- writing: into the spool, sent in the background ------------------------------

    @method_like(Tracker.start_run)
    def start_run(self, *args: Any, **options: Any) -> Run:
        """As :meth:`mltrail.Store.start_run`; the run is sent to the server as it logs.
        ``run_id`` resumes a run from wherever it was logged: the server's lines come into
        the spool first when the spool lacks the run, or holds less of it."""
        if options.get("run_id") is None:
            return self.tracking.start_run(*args, **options)  # (its upload: _track, on start)
        self._bring_run(options["run_id"])
        run = self.tracking.start_run(*args, **options)
        try:  # its name and number as the server's experiment has them (the spool may hold it alone)
            info = self.get_run(run.id)["run"]
            run.name, run.number = info["run_name"], int(info["run_seq"])
        except UpstreamError:
            pass
        return run

    def _bring_run(self, run_id: str) -> None:
        """Make the spool hold all of a run before it is resumed: what this spool has
        and the server lacks goes up first; a server that holds more (the run went on
        on another machine) gives its file, which replaces the spool's."""
        try:
            here = self.tracking.run_file(run_id)
        except NotFoundError:
            here = None
        upload = RunUpload(self.server, here, self._send_blob) if here is not None else None
        try:
            if upload is not None:
                upload.send()
            there = self.server.call("GET", f"/api/v1/runs/{_quoted(run_id)}/last-seq")["last_seq"]
            if upload is not None and upload.last_seq_here() >= there:
                return  # the spool holds all of it
            if not there:
                raise NotFoundError(f"no run {run_id!r} on {self.url} nor in {self.spool} "
                                    "(resume takes a run's full ID)")
            lines = self.server.call("GET", f"/api/v1/runs/{_quoted(run_id)}/events", raw=True)
        except UpstreamError:
            if here is None:
                raise
            return  # the server is away: resume from the spool; its lines go up once it is back
        first = orjson.loads(lines[:lines.index(b"\n")])
        path = self.tracking.layout.run_file(first["experiment"], run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lines)
        logger.info("mltrail: run %s brought from %s into %s to resume it", run_id, self.url, path)

    def _track(self, run: Run) -> None:
        """Send a run this store's tracker started (by start_run, or as another run's
        child from autologging) to the server as it logs."""
        with self._lock:
            self._uploads[run.path] = RunUpload(self.server, run.path, self._send_blob)
            self._runs[run.path] = run
        self._start_uploading()
        with self._lock:
            if self._watch_thread is None or not self._watch_thread.is_alive():
                self._watch_thread = threading.Thread(target=self._watch_stops, name="mltrail-stop-watch", daemon=True)
                self._watch_thread.start()

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
        with self._sending:  # one sender at a time: a read's send and the thread's round share offsets
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
                if not upload.refused:
                    try:
                        upload.send()
                    except UpstreamError:
                        pass  # the lines wait in the spool
                    except MltrailError as exc:  # refused (no permission, a bad line): retrying cannot help
                        upload.refused = True
                        self._refuse(path, exc)
                if upload.refused or upload.offset is None or path.stat().st_size > upload.offset:
                    left += 1  # a refused segment's lines are not on the server: they count
        return left

    def _send_runs(self) -> int:
        with self._lock:
            uploads = list(self._uploads.values())
        left = 0
        for upload in uploads:
            if upload.path in self._refused:  # its lines stay in the spool, and count as left
                left += 1
                continue
            try:
                on_server = bool(upload.last_seq)
                upload.send()
                if not on_server and upload.last_seq:  # a stop may be asked for it now: watch it too
                    self._rewatch()
            except UpstreamError:
                pass  # the lines wait in the spool; the next round tries again
            except MltrailError as exc:  # refused (a token rotated, no permission to log there): retrying cannot help
                self._refuse(upload.path, exc)
            except FileNotFoundError:  # the spool was removed under the job: nothing left to send
                logger.warning("mltrail: %s left the spool before it all reached %s", upload.path, self.url)
                upload.finished = True
            if upload.finished:
                with self._lock:
                    self._uploads.pop(upload.path, None)
                    self._runs.pop(upload.path, None)
                if upload.path.exists():
                    self._prune(upload)
            else:
                left += 1
        return left

    def _prune(self, upload: RunUpload) -> None:
        """An ended run the server holds all of leaves the spool: its file and its stop
        requests; the blobs it named go at close (:meth:`_prune_blobs`)."""
        self._blobs_unneeded |= upload.blobs_named
        upload.path.unlink()
        shutil.rmtree(self.tracking.layout.stop_requests(upload.path), ignore_errors=True)

    def _prune_blobs(self) -> None:
        """At close, once this process's runs are all sent: the blobs its pruned runs
        named that no run still in the spool names (the server has them; a read or a
        load fetches one again). Not before: a run still logging may name the same file."""
        others = [path.read_bytes() for path in self.tracking.layout.experiments.glob("*/runs/*.jsonl")]
        for sha256 in self._blobs_unneeded:
            if not any(sha256.encode() in other for other in others):
                for large in (False, True):
                    self.tracking.layout.blob_path(sha256, large=large).unlink(missing_ok=True)
        self._blobs_unneeded.clear()

    def _note_user(self) -> None:
        """Record in the spool whose runs it holds (``mltrail sync`` by an admin sends them
        as that user): asked of the server once, by the background sender."""
        if self.server.token is None or spool_user(self.spool) is not None:
            return
        try:
            user = self.server.call("GET", "/api/v1/whoami")["user"]
        except MltrailError:
            return  # away, or refused: the uploader says so; asked again by the next store
        if user is not None:
            try:
                self.spool.mkdir(parents=True, exist_ok=True)
                write_atomic(self.spool / SPOOL_USER_FILE, orjson.dumps({"user": user, "server": self.url}))
            except OSError as exc:  # the runs' own writes will say more; sync then asks for the user's token
                logger.warning("mltrail: could not record the spool's user in %s: %s", self.spool, exc)

    def _refuse(self, path: Path, exc: MltrailError) -> None:
        """The server refused a run's or a segment's lines: they stay in the spool and
        count as not sent, with the reason (said now, and again at close)."""
        self._refused[path] = f"{type(exc).__name__}: {exc}"
        logger.warning("mltrail: %s refused %s (%s); it stays in %s", self.url, path.name, self._refused[path],
                       path.parent)

    def _refused_count(self) -> int:
        return len(self._refused)

    def _say_left(self, left: int) -> None:
        runs = sum(path not in self._refused for path in self._uploads)
        segments = max(0, left - len(self._refused) - runs)
        send = f"mltrail sync {self.spool} --to {self.url}"
        if runs or segments:
            what = " and ".join(part for part in (f"{runs} run(s)" if runs else "",
                                                  f"{segments} A/B log segment(s)" if segments else "") if part)
            logger.warning("mltrail: %s not yet on %s wait in %s; send them with: %s", what, self.url, self.spool, send)
        for path, reason in self._refused.items():
            logger.warning("mltrail: %s refused %s (%s): it was not sent and waits in %s; once that is fixed "
                           "(a valid token in MLTRAIL_TOKEN, edit on its experiment), send it with: %s",
                           self.url, path.name, reason, path.parent, send)

    def _send_own(self) -> None:
        """Before a read or a registry call: this process's own runs go up first, so that
        it sees what it just wrote (train, then register). Their queued events are written
        to the spool and every line the server lacks is sent; nothing to send costs no call."""
        with self._lock:
            if not self._uploads:
                return
            running = [run for run in self._runs.values() if run.status == "RUNNING"]
        for run in running:
            run.flush()
        self.upload()

    def request_stop(self, run: str, reason: str | None = None, *, by: str | None = None) -> str:
        """As :meth:`mltrail.Store.request_stop`, on the server: the run's job sees it
        within a few seconds, wherever it runs; the run's ID."""
        self._send_own()
        body = orjson.dumps({"reason": reason, "by": by or current_user()})
        return self.server.call("POST", f"/api/v1/runs/{urllib.parse.quote(run, safe='')}/stop", body)["run_id"]

    def _watch_stops(self) -> None:
        """The stop watcher's thread: a call held open on the server (``STOP_WAIT_SECONDS``
        at a time) answers as soon as someone asks one of this process's running runs to
        stop; the request is copied into the spool, where the run looks, and the run told
        at once. A tenth of a second from the request to ``run.stop_requested``, at one
        call per ten seconds while nobody asks."""
        while not self._closing.is_set():
            self._watch_changed.clear()
            runs = self._watched_runs()
            if not runs:
                self._watch_changed.wait(UPLOAD_TICK_SECONDS)
                continue
            try:
                found = self._ask_stop_requests(list(runs))
            except UpstreamError:  # away (or broken off: the runs changed, or closing)
                if not self._watch_changed.is_set():
                    self._closing.wait(1.0)
                continue
            except BusyError:  # the user holds the server's limit of such calls open (many jobs)
                logger.debug("mltrail: the server holds enough stop watches of this user; asking again later")
                self._closing.wait(STOP_WAIT_SECONDS)
                continue
            except MltrailError as exc:  # not allowed (a token rotated): the uploader says so too
                logger.warning("mltrail: cannot watch for stop requests on %s: %s", self.url, exc)
                self._closing.wait(STOP_WAIT_SECONDS)
                continue
            for run_id, requests in found.items():
                if run_id in runs:
                    self._deliver_stop(runs[run_id], requests)

    def _ask_stop_requests(self, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        query = urllib.parse.urlencode({"run": run_ids, "wait": STOP_WAIT_SECONDS}, doseq=True)
        try:
            return dict(self._watcher.call("GET", f"/api/v1/stop-requests?{query}"))
        except NotFoundError:  # a server older than the route: each run's requests, once a second
            found = {run_id: self._watcher.call("GET", f"/api/v1/runs/{run_id}/stop") for run_id in run_ids}
            self._watch_changed.wait(1.0)
            return found

    def _watched_runs(self) -> dict[str, Run]:
        """This process's running runs on the server, not yet asked to stop."""
        with self._lock:
            return {run.id: run for path, run in self._runs.items()
                    if run.status == "RUNNING" and not run.stop_requested and path not in self._refused
                    and path in self._uploads and self._uploads[path].last_seq}

    def _rewatch(self) -> None:
        self._watch_changed.set()
        self._watcher.abort()  # the call held open watches the runs as they were

    def _deliver_stop(self, run: Run, requests: list[dict[str, Any]]) -> None:
        folder = self.tracking.layout.stop_requests(run.path)
        try:
            for request in requests:
                if not (folder / f"{request['id']}.jsonl").exists():
                    write_event_file(folder, request["id"], StopRequest.model_validate(request))
        except (OSError, ValueError) as exc:  # (a ValidationError is a ValueError)
            logger.warning("mltrail: could not keep a request to stop %s: %s", run.describe(), exc)
            return
        run.look_for_stop_request()

    def _loop(self) -> None:
        self._note_user()
        # a few times per flush: a line waits for the next tick, not a whole flush period
        # (a tick with nothing new costs a read at the end of each file)
        while not self._closing.wait(min(FLUSH_SECONDS.get(), UPLOAD_TICK_SECONDS)):
            try:
                self.upload()
            except Exception as exc:  # noqa: BLE001 - the uploader must outlive one round's fault
                logger.warning("mltrail: upload to %s failed: %s: %s", self.url, type(exc).__name__, exc)

    def close(self, wait: float | None = None) -> int:
        """Flush this process's A/B logs and send what is left, waiting up to ``wait``
        seconds (default ``MLTRAIL_UPLOAD_WAIT_SECONDS``: no call outlives it, however the
        server hangs); say what stays in the spool. Called at exit; the runs and segments
        not yet on the server."""
        atexit.unregister(self._at_exit)
        deadline = time.monotonic() + (UPLOAD_WAIT_SECONDS.get() if wait is None else wait)
        # the background sender stops first: close sends the rest itself, and no thread of
        # ours may be mid-call when the interpreter finalizes (glibc aborts a thread killed
        # inside a native call: "FATAL: exception not rethrown")
        self._closing.set()
        self._watch_changed.set()  # (a watcher with no run to watch waits on it)
        self._stop_thread(self._watch_thread, self._watcher, time.monotonic())  # its call waits for nothing now
        self._stop_thread(self._thread, self.server, deadline)
        for log in list(self.ab._logs.values()):  # their own exit flush would come after this
            try:
                log.flush()
            except OSError as exc:
                logger.warning("mltrail: could not flush %s: %s", log.describe(), exc)
        left = 0
        if self._uploads or self.ab._logs:
            with self.server.deadline(deadline):
                left = self.upload()
                while left > self._refused_count() and time.monotonic() < deadline:
                    time.sleep(0.2)
                    left = self.upload()
        if left:
            self._say_left(left)
        if self._blobs_unneeded and not any(run.status == "RUNNING" for run in self._runs.values()):
            self._prune_blobs()
        self.server.close()  # the pooled connections (a later call opens new ones)
        self._watcher.close()
        return left

    @staticmethod
    def _stop_thread(thread: threading.Thread | None, server: Server, deadline: float) -> None:
        """Wait for a thread of ours to end by ``deadline``; past it, break its calls in
        flight (a server that accepted the connection and never answers)."""
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
        give_up = time.monotonic() + 5
        while thread.is_alive() and time.monotonic() < give_up:
            server.abort()  # each call it makes fails at once: it sees it is closing and ends
            thread.join(timeout=0.05)

    def _at_exit(self) -> None:
        self.close()
        # the interpreter's last collections would walk the whole heap (pandas, pyarrow:
        # 0.4 s measured, a third of a stopped job's time from the request to its end);
        # at exit they free nothing the process's end does not
        gc.freeze()

    def import_mlflow(self, source: str | os.PathLike[str], experiments: Sequence[str] | None = None, *,
                      include_deleted: bool = False, progress: Progress | None = None) -> ImportSummary:
        """Not against a server: it says where to run it."""
        raise NotOnServerError(f"an MLflow store is imported where the server's folder is: mltrail --store "
                               f"FOLDER import mlflow {source} there (the server serves what it writes); or "
                               f"import into a folder of your own and send its runs with mltrail sync FOLDER "
                               f"--to {self.url} (runs only: registered models stay in that folder)")

    # -- reading: answered by the server ---------------------------------------------

    def search_runs(self, experiment: str | Sequence[str] | None = None, filter: str | None = None,
                    order_by: Sequence[str] | str | None = None, max_results: int | None = None,
                    view: str = "active") -> pd.DataFrame:
        """As :meth:`mltrail.Store.search_runs`, on the server's runs."""
        self._send_own()
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
        self._send_own()
        body = orjson.dumps({"run_ids": list(run_ids) if run_ids is not None else None,
                             "keys": list(keys) if keys is not None else None})
        return read_frame(self.server.call("POST", "/api/v1/metric-history", body, raw=True))

    def histograms(self, run_ids: Sequence[str] | None = None, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """As :meth:`mltrail.Store.histograms`, on the server's runs (those you may read)."""
        self._send_own()
        body = orjson.dumps({"run_ids": list(run_ids) if run_ids is not None else None,
                             "keys": list(keys) if keys is not None else None})
        return read_frame(self.server.call("POST", "/api/v1/histograms", body, raw=True))

    def grouped_history(self, groups: Mapping[str, str], keys: Sequence[str], *, x: XAxis = "step",
                        band: Band = "std", smoothing: float = 0.0, points: int = 500) -> pd.DataFrame:
        """As :meth:`mltrail.Store.grouped_history`, aggregated on the server (the runs you
        may not read are left out)."""
        self._send_own()
        body = orjson.dumps({"groups": dict(groups), "keys": list(keys), "x": x, "band": band,
                             "smoothing": smoothing, "points": points})
        return read_frame(self.server.call("POST", "/api/v1/grouped-history", body, raw=True))

    def experiments(self) -> pd.DataFrame:
        """As :meth:`mltrail.Store.experiments`, on the server's runs."""
        self._send_own()
        return read_frame(self.server.call("GET", "/api/v1/experiments", raw=True))

    def get_run(self, ref: str) -> dict[str, Any]:
        """As :meth:`mltrail.Store.get_run`, a run on the server."""
        self._send_own()
        parts = unpack(self.server.call("GET", f"/api/v1/runs/{_quoted(ref)}", raw=True))
        parts["run"] = {k: present(v) for k, v in parts["run"].iloc[0].to_dict().items()}  # missing is None, as here
        return parts

    def resolve_run(self, ref: str) -> str:
        self._send_own()
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

    def run_edits(self, run: str | None = None) -> pd.DataFrame:
        """The edits made to one run, oldest first (against a server, one run at a time)."""
        if run is None:
            raise NotOnServerError("run_edits() of every run reads the store's edit files: against a server, "
                                   "name a run (run_edits(RUN)), or open the server's folder with "
                                   "mltrail.Store(PATH) there")
        return self.get_run(run)["edits"]

    def gc(self, runs: Sequence[str] | None = None, *, dry_run: bool = False) -> GcResult:
        """Not against a server: purging deleted runs deletes files, on the server's machine."""
        raise NotOnServerError("gc purges deleted runs' files: run it on the server's machine "
                               "(mltrail --store PATH gc), where the store's folder is")

    def _edit(self, run: str, kind: str, by: str | None, **fields: Any) -> str:
        self._send_own()
        body = orjson.dumps({"kind": kind, "by": by or current_user(), **fields})
        return str(self.server.call("POST", f"/api/v1/runs/{_quoted(run)}/edits", body)["run_id"])

    def reproduce_script(self, run: str) -> str:
        self._send_own()
        return self.server.call("GET", f"/api/v1/runs/{_quoted(run)}/reproduce", raw=True).decode()

    def refresh(self) -> int:
        """The server compacts what is new; the generation of its tables (a cache key)."""
        self._send_own()
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

    def put_file(self, source: Path) -> tuple[str, int, bool]:
        """Not against a server: a file reaches the server as a run's artifact
        (``run.log_artifact``), which names it; a blob no line names is not kept."""
        raise NotOnServerError(f"put_file({str(source)!r}): against a server a file is sent as a run's "
                               "artifact (run.log_artifact), or put on the server's machine with "
                               "mltrail.Store(PATH).put_file there")

    def blob(self, sha256: str) -> bytes:
        """The content of a blob of the server (fetched into the spool once, sha256 checked)."""
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


def _quoted(name: str) -> str:
    return urllib.parse.quote(str(name), safe="")
