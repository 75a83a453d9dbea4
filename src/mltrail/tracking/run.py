"""A run: the object a training script holds while it logs.

``log_metric`` is the hot path. It validates its arguments, appends a tuple to an
in-memory queue and returns: no syscall, no serialisation. The queue is written in one
``write()`` by :meth:`Run.flush`, which runs when the queue reaches
``MLTRAIL_FLUSH_EVENTS`` events, every ``MLTRAIL_FLUSH_SECONDS`` from a background
thread, at run end and at interpreter exit. A process killed outright (SIGKILL, power
loss) loses at most the events of the last flush interval; everything flushed stays.
"""

from __future__ import annotations

import atexit
import contextvars
import hashlib
import math
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from ..config import HEARTBEAT_SECONDS
from ..errors import InvalidInputError, InvalidMetricValueError, ParamChangedError, RunStateError, RunStopRequested
from ..storage import background
from ..storage import events as ev
from ..storage.eventfiles import STOP_REQUEST, EventFolder, StopRequest
from ..storage.eventlog import EventWriter, events_to_lines
from ..storage.fields import INT64_MAX, LATEST_TS, dataset_text_problem
from ..storage.layout import check_key
from ..storage.run_edits import NAME_TAG, NOTES_TAG
from . import objects
from .curation import check_name, check_notes, check_user_tag

if TYPE_CHECKING:
    from .tracker import Tracker

_time = time.time
_INF = math.inf
_RUNNING = ev.RunStatus.RUNNING
_STEP_MIN, _STEP_MAX = -INT64_MAX - 1, INT64_MAX
# what raises once a run started with stop="raise" was asked to stop
_LOGGING_METHODS = ("log_metric", "log_metrics", "log_param", "log_params", "set_tag", "set_tags",
                    "delete_tag", "log_artifact", "log_dataset", "log_dict", "log_text", "log_table", "log_image",
                    "log_figure")
# called with each run that ends: the module-level API drops it from "the current run"
run_end_hooks: list[Callable[[Run], None]] = []
# the runs whose ``with`` block is open here, innermost last: a run started inside one is its child
_entered: contextvars.ContextVar[tuple[Run, ...]] = contextvars.ContextVar("mltrail_entered_runs", default=())
PARENT_TAG = "mltrail.parent_run_id"  # a child run's parent (MLflow's is mlflow.parentRunId)


def enclosing_run(root: Path) -> Run | None:
    """The innermost run still running whose ``with`` block encloses this code, in the
    store at ``root``."""
    for run in reversed(_entered.get()):
        if run.status == "RUNNING" and run.tracker.layout.root == root:
            return run
    return None


def innermost_run() -> Run | None:
    """The innermost run still running whose ``with`` block encloses this code, in any store."""
    for run in reversed(_entered.get()):
        if run.status == "RUNNING":
            return run
    return None


def _as_array(values: Any) -> Any:
    """A PyTorch (or JAX) tensor as NumPy takes it: detached, on the CPU; anything else as given."""
    if hasattr(values, "detach"):
        values = values.detach()
    if hasattr(values, "cpu"):
        values = values.cpu()
    return values.numpy() if hasattr(values, "numpy") and not hasattr(values, "__array_interface__") else values


def _metric_value(key: str, value: Any) -> float:
    """A metric value as float; bools, strings and None are refused."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        raise InvalidMetricValueError(key, value)
    try:
        return float(value)  # int, numpy and torch scalars
    except (TypeError, ValueError, OverflowError):  # 10**400 has no float
        raise InvalidMetricValueError(key, value) from None


def _dataset_link(dataset: Any) -> tuple[str, str]:
    """A point's dataset, checked: ``(name, digest)``, or an object with a ``name`` and a
    ``digest`` (MLflow's ``mlflow.data`` datasets), as the pair an event holds."""
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        name, digest = dataset
    elif hasattr(dataset, "name") and hasattr(dataset, "digest"):
        name, digest = dataset.name, dataset.digest
    else:
        raise InvalidInputError(f"a metric's dataset is its (name, digest), or an object with a name and a digest "
                                f"(an MLflow dataset), not {dataset!r}")
    for what, text in (("name", name), ("digest", digest)):
        problem = dataset_text_problem(text)
        if problem:
            raise InvalidInputError(f"the dataset {what} {text!r} {problem}")
    return name, digest


def _checked_time(timestamp: Any) -> float:
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) or not 0 <= timestamp <= LATEST_TS:
        raise InvalidInputError(f"a metric timestamp is seconds since 1970 (before year 3000), not {timestamp!r}")
    return float(timestamp)


def _param_text(key: str, value: Any) -> str:
    """Params are kept as text, as MLflow keeps them: ``1.0`` → ``'1.0'``."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:
        return str(value)


class Run:
    """An active run. Use it as a context manager, or call :meth:`end` yourself.

    >>> with store.start_run(experiment="churn") as run:    # doctest: +SKIP
    ...     run.log_metric("loss", 0.3, step=1)
    """

    def __init__(self, tracker: Tracker, run_id: str, experiment: str, name: str, number: int,
                 path: Path, flush_events: int) -> None:
        self.tracker = tracker
        self.id = run_id
        self.experiment = experiment
        self.name = name  # as it reads now; a git merge may renumber a default name
        self.number = number
        self.path = path
        self._status = ev.RunStatus.RUNNING
        self.started: float | None = None  # when it started and ended (seconds), once known
        self.ended: float | None = None
        self._writer = EventWriter(path)  # the run is its file's only writer: no lock needed
        self._pending: deque[Any] = deque()
        self._flush_lock = threading.RLock()
        self._flush_events = flush_events
        self._seq = 0
        self._last_write = time.monotonic()
        self._steps: dict[str, int] = {}
        self._histogram_steps: dict[str, int] = {}
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self.stop_mode = "flag"  # or "raise": see Tracker.start_run
        self.monitor: Any = None  # a SystemMonitor while system metrics are sampled
        self._stop_requests = EventFolder(tracker.layout.stop_requests(path), STOP_REQUEST, "stop request")
        self._stop_request: StopRequest | None = None

    def __repr__(self) -> str:
        return f"<Run {self.name!r} id={self.id} status={self.status}>"

    def describe(self) -> str:
        return f"run {self.id}"

    @property
    def status(self) -> str:
        return self._status.value

    @property
    def stop_requested(self) -> bool:
        """True once someone asked this run to stop (``mltrail stop``, the dashboard):
        seen within ``MLTRAIL_FLUSH_SECONDS``, when the background flusher looks. A loop
        that checks it can end early; the run then ends KILLED with the reason."""
        return self._stop_request is not None

    @property
    def stop_reason(self) -> str | None:
        """Who asked the run to stop and why, once someone did."""
        request = self._stop_request
        if request is None:
            return None
        return f"stop requested by {request.by or 'someone'}" + (f": {request.reason}" if request.reason else "")

    def look_for_stop_request(self) -> None:
        """Take up a request to stop this run from its stop folder, if there is one (the
        background flusher looks every flush; a server store's stop watcher calls this as
        soon as it has copied a request there)."""
        if self._stop_request is not None:
            return
        requests = self._stop_requests.events()
        if not requests:
            return
        self._stop_request = requests[0]
        if self.stop_mode == "raise":  # the next log_* call raises; the hot path pays nothing till then
            for name in _LOGGING_METHODS:
                setattr(self, name, self._refuse_after_stop)

    def _refuse_after_stop(self, *args: Any, **kwargs: Any) -> Any:
        raise RunStopRequested(f"run {self.id} ({self.name}): {self.stop_reason}")

    # -- logging ---------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None, *, best: bool = False,
                   timestamp: float | None = None, dataset: tuple[str, str] | Any = None) -> None:
        """Log one metric point. ``step`` defaults to the key's previous step + 1 (from 0);
        ``best=True`` marks the point as the best so far, for the run's summary;
        ``timestamp`` (seconds since the epoch) is when it was measured, if not now;
        ``dataset`` is the dataset it was measured on, as MLflow 3 links a point to one:
        its ``(name, digest)``, or an MLflow dataset (``metric_history`` shows both)."""
        if self._status is not _RUNNING:  # (a point after end() would be lost at the next flush)
            raise RunStateError(f"run {self.id} is {self.status}; it takes no more metrics")
        last = self._steps.get(key)
        if last is None:
            check_key("metric", key)
            last = -1
        if type(value) is not float:
            value = _metric_value(key, value)
        if step is None:
            step = last + 1
        if type(step) is not int or not _STEP_MIN <= step <= _STEP_MAX:
            step = self._step(key, step)
        marks: Any = best
        if dataset is not None:  # rare: the common point stays a 5-tuple
            marks = (best, *_dataset_link(dataset))
        self._steps[key] = step
        pending = self._pending
        pending.append((key, value, step, _time() if timestamp is None else _checked_time(timestamp), marks))
        if len(pending) >= self._flush_events:
            self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None, *,
                    dataset: tuple[str, str] | Any = None) -> None:
        """Log several metrics at one step (measured on one ``dataset``, if given); all are
        checked before any is logged."""
        known = self._steps
        checked = {(k if k in known else check_key("metric", k)):
                   (v if type(v) is float else _metric_value(k, v)) for k, v in metrics.items()}
        link = None if dataset is None else _dataset_link(dataset)
        for key, value in checked.items():
            self.log_metric(key, value, step, dataset=link)

    def log_histogram(self, key: str, values: Any, step: int | None = None, *, bins: int = 64) -> None:
        """Log the distribution of ``values`` at ``step`` (weights, gradients, activations),
        as TensorBoard's ``add_histogram`` and W&B's ``Histogram`` do: ``values`` is an array
        of any shape (NumPy, a list, a PyTorch tensor), counted into ``bins`` bins of equal
        width between its min and max; or a ``(counts, edges)`` pair that ``np.histogram``
        made. Non-finite values are counted apart, not binned. ``step`` defaults to the
        key's previous histogram step + 1 (from 0). Drawn on the Run page as a heatmap
        over steps; read back with ``store.histograms``."""
        import numpy as np

        self._require_running()
        check_key("histogram", key)
        step = self._step(key, self._histogram_steps.get(key, -1) + 1 if step is None else step)
        if isinstance(values, tuple) and len(values) == 2:
            counts, edges = (np.asarray(_as_array(part), dtype=float).ravel() for part in values)
            if np.any(counts < 0) or np.any(counts != np.round(counts)):
                raise InvalidInputError(f"histogram {key!r}: counts must be whole numbers >= 0")
            fields: dict[str, Any] = {"counts": counts.astype(np.int64).tolist(), "edges": edges.tolist()}
        else:
            array = np.asarray(_as_array(values), dtype=float).ravel()
            finite = array[np.isfinite(array)]
            if not finite.size:
                raise InvalidInputError(f"histogram {key!r} at step {step}: no finite value to count "
                                        f"({array.size} given)")
            if type(bins) is not int or not 1 <= bins <= ev.MAX_BINS:
                raise InvalidInputError(f"histogram {key!r}: bins must be an integer from 1 to {ev.MAX_BINS}, "
                                        f"not {bins!r}")
            lo, hi = float(finite.min()), float(finite.max())
            if lo == hi:  # one value: a bin of width 1 around it (as TensorBoard draws a constant)
                lo, hi = lo - 0.5, hi + 0.5
            counts = np.histogram(finite, bins=bins, range=(lo, hi))[0]
            fields = {"counts": counts.tolist(), "lo": lo, "hi": hi, "dropped": int(array.size - finite.size) or None}
        try:
            self._emit(ev.Histogram, key=key, step=step, **fields)
        except ValueError as exc:  # pydantic's: which field, and why
            raise InvalidInputError(f"histogram {key!r} at step {step}: {exc}") from None
        self._histogram_steps[key] = step

    @staticmethod
    def _step(key: str, step: Any) -> int:
        """A step as an int64 (numpy and torch integers too); anything else is refused."""
        if isinstance(step, bool):
            raise InvalidInputError(f"step of metric {key!r} must be an integer, not {step!r}")
        try:
            step = int(step.__index__())
        except AttributeError:
            raise InvalidInputError(f"step of metric {key!r} must be an integer, not {step!r}") from None
        if not _STEP_MIN <= step <= _STEP_MAX:
            raise InvalidInputError(f"step of metric {key!r} is {step}; steps must fit in a signed 64-bit "
                                    f"integer ({_STEP_MIN} to {_STEP_MAX})")
        return step

    def log_param(self, key: str, value: Any, group: str | None = None) -> None:
        """Log one param. Logging it again with the same value is a no-op; with another
        value it raises :class:`ParamChangedError`."""
        self.log_params({key: value}, group=group)

    def log_params(self, params: Mapping[str, Any], group: str | None = None) -> None:
        """Log params, optionally as a named group (``"model"``, ``"data"``...)."""
        self._require_running()
        new = {}
        for key, value in params.items():
            text = _param_text(check_key("param", key), value)
            old = self._params.get(key)
            if old is not None and old != text:
                raise ParamChangedError(key, old, text)
            if old is None:
                new[key] = text
        if group is not None:
            check_key("param group", group)
        if new:
            self._emit(ev.Params, params=new, group=group)
            self._params.update(new)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags; unlike params, a tag may change (the latest value wins)."""
        self._require_running()
        checked = {check_user_tag(k, running=True): str(v) for k, v in tags.items()}
        self._emit(ev.Tags, tags=checked)
        self._tags.update(checked)

    def set_name(self, name: str) -> None:
        """Rename the run while it runs (after it: ``store.set_run_name``)."""
        self._require_running()
        self._emit(ev.Tags, tags={NAME_TAG: check_name(name)})
        self.name = name

    def set_notes(self, notes: str) -> None:
        """Set the run's notes (Markdown, its description) while it runs."""
        self._require_running()
        self._emit(ev.Tags, tags={NOTES_TAG: check_notes(notes)})

    def delete_tag(self, key: str) -> None:
        self._require_running()
        self._emit(ev.TagDeleted, key=check_user_tag(key, running=True))
        self._tags.pop(key, None)

    def log_artifact(self, local_path: str | os.PathLike[str], name: str | None = None) -> list[str]:
        """Copy a file (or every file of a folder) into the store, content-addressed.

        Returns the artifact names logged. Files over ``MLTRAIL_GIT_ARTIFACT_MAX``
        bytes are kept in ``blobs-large/``, which the store's .gitignore leaves out.
        """
        self._require_running()
        source = Path(local_path)
        if not source.exists():
            raise InvalidInputError(f"artifact {str(source)!r} does not exist")
        base = check_key("artifact", name or source.name)
        files = [(base, source)] if source.is_file() else [
            (f"{base}/{p.relative_to(source).as_posix()}", p)
            for p in sorted(source.rglob("*")) if p.is_file()]
        for artifact_name, path in files:
            check_key("artifact", artifact_name)
        logged = []
        for artifact_name, path in files:
            sha256, size, in_git = self.tracker.blobs.put_file(path)
            self._emit(ev.Artifact, path=artifact_name, sha256=sha256, size=size, in_git=in_git,
                       source=_display_path(path))
            logged.append(artifact_name)
        return logged

    def log_dict(self, obj: Any, name: str) -> str:
        """A dict or list as a JSON artifact ``name`` (``*.json``)."""
        return self._log_bytes(objects.dict_bytes(obj, name), name)

    def log_text(self, text: str, name: str) -> str:
        """Text as an artifact (``notes.md``, ``report.txt``...)."""
        return self._log_bytes(objects.text_bytes(text, name), name)

    def log_table(self, frame: Any, name: str) -> str:
        """A pandas DataFrame as a Parquet artifact (``*.parquet``)."""
        return self._log_bytes(objects.table_bytes(frame, name), name)

    def log_image(self, image: Any, name: str) -> str:
        """A NumPy array or PIL image as an image artifact (``*.png``, ``*.jpg``...)."""
        return self._log_bytes(objects.image_bytes(image, name), name)

    def log_figure(self, figure: Any, name: str) -> str:
        """A matplotlib figure (``*.png``, ``*.svg``...) or a Plotly figure (``*.plotly.json``)."""
        return self._log_bytes(objects.figure_bytes(figure, name), name)

    def _log_bytes(self, data: bytes, name: str) -> str:
        self._require_running()
        check_key("artifact", name)
        staging = self.tracker.layout.cache / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=staging) as tmp:
            path = Path(tmp) / Path(name).name
            path.write_bytes(data)
            return self.log_artifact(path, name=name)[0]

    def log_dataset(self, path: str | os.PathLike[str] | Any, name: str | None = None,
                    context: str | None = None) -> None:
        """Record a dataset this run used: a file (its path, sha256, size, and for CSV or
        Parquet files the row count and column names; the file itself is not copied), or
        data in memory (a DataFrame or an array: the sha256 of its content, its shape and
        columns, as ``memory:<name>``)."""
        self._require_running()
        from .datasets import describe_dataset, describe_memory  # pyarrow's readers load only when needed

        if isinstance(path, (str, os.PathLike)):
            info = describe_dataset(Path(path))
            self._emit(ev.Dataset, name=check_key("dataset", name or Path(path).stem),
                       path=_display_path(Path(path)), context=context, **info)
            return
        if name is None:
            raise InvalidInputError("a dataset in memory needs a name")
        self._emit(ev.Dataset, name=check_key("dataset", name), path=f"memory:{name}", context=context,
                   **describe_memory(path))

    def log_mlflow_dataset(self, dataset: Mapping[str, Any], data: Any = None) -> None:
        """Record a dataset as MLflow's client describes it (``name``, ``digest``,
        ``source_type``, ``source``, ``schema``, ``profile`` and its input ``tags``). With its
        ``data`` (a DataFrame or an array) it gets mltrail's description too (sha256 of the
        content, size, rows, columns); without, mltrail never sees the data and its sha256
        is that of MLflow's description."""
        self._require_running()
        fields = {k: dataset.get(k) for k in ("name", "digest", "source_type", "source", "schema", "profile")}
        tags = {str(k): str(v) for k, v in (dataset.get("tags") or {}).items()}
        if data is not None:
            from .datasets import describe_memory  # (pandas and numpy load only when needed)

            content = describe_memory(data)
        else:
            described = orjson.dumps({**fields, "tags": tags}, option=orjson.OPT_SORT_KEYS)
            content = {"sha256": hashlib.sha256(described).hexdigest(), "size": 0}
        self._emit(ev.Dataset, v=2, name=check_key("dataset", str(fields["name"])),
                   path=str(fields["source"] or f"memory:{fields['name']}"), **content,
                   context=tags.get("mlflow.data.context"), mlflow={**fields, "tags": tags})

    # -- writing ---------------------------------------------------------------------

    def _emit(self, model: type[ev.Event], **fields: Any) -> ev.Event:
        """Validate one event now; queue it to be written in order with the metrics."""
        event = model(ts=_time(), run=self.id, **fields)
        self._pending.append(ev.dump(event))
        return event

    def _require_running(self) -> None:
        if self._status is not ev.RunStatus.RUNNING:
            raise RunStateError(f"run {self.id} is {self.status}; it cannot be changed")

    def flush(self) -> None:
        """Write every queued event to the run's file now."""
        with self._flush_lock:
            count = len(self._pending)
            if not count:
                return
            pending = self._pending
            items = [pending.popleft() for _ in range(count)]
            try:
                self._writer.append(self._serialise(items))
            except BaseException:
                pending.extendleft(reversed(items))  # nothing is lost: retried next flush
                raise
            self._seq += count
            self._last_write = time.monotonic()

    def _serialise(self, items: list[Any]) -> bytes:
        """JSON lines for queued items, numbering them from the file's next seq.

        Metric points become dense ``metrics`` lines (schema 2): the points queued between
        two other events share one line, each point still taking one seq, so a file
        orders its points exactly as one-point lines did. Other events are one line each.
        """
        run_id = self.id
        seq = self._seq
        lines: list[dict[str, Any]] = []
        points: list[tuple[Any, ...]] = []
        for item in items:
            if type(item) is tuple:
                points.append(item)
                continue
            if points:
                lines.append(dense_line(run_id, seq + 1, points))
                seq += len(points)
                points = []
            seq += 1
            item["seq"] = seq
            lines.append(item)
        if points:
            lines.append(dense_line(run_id, seq + 1, points))
        return events_to_lines(lines)

    def background_flush(self) -> None:
        """Called by the background flusher: flush, or write a heartbeat if quiet."""
        heartbeat_seconds = HEARTBEAT_SECONDS.get()
        with self._flush_lock:  # end() cannot close the file in between
            if self._status is not ev.RunStatus.RUNNING:
                return
            if not self._pending and time.monotonic() - self._last_write >= heartbeat_seconds:
                self._emit(ev.Heartbeat)
            self.flush()
        self.look_for_stop_request()

    # -- ending ----------------------------------------------------------------------

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Mark the run FINISHED, FAILED or KILLED, write everything and close the file.
        Ending an ended run does nothing."""
        if status not in ("FINISHED", "FAILED", "KILLED"):
            raise InvalidInputError(f"a run ends FINISHED, FAILED or KILLED, not {status!r}")
        if status == "FINISHED" and self._stop_request is not None:  # it ended because it was asked to
            status, error = "KILLED", self.stop_reason
        if self.monitor is not None:  # its last sample goes in before the end
            self.monitor.stop()
        with self._flush_lock:
            if self._status is not ev.RunStatus.RUNNING:
                return
            self.ended = self._emit(ev.RunFinished, status=status, error=error).ts
            self._status = ev.RunStatus(status)
            try:
                self.flush()
            finally:
                self._writer.close()
                _active_runs.discard(self)
                background.forget(self)
        for hook in run_end_hooks:
            hook(self)

    def __enter__(self) -> Run:
        self._entered = _entered.set((*_entered.get(), self))  # a run started inside is its child
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        token = getattr(self, "_entered", None)
        if token is not None:
            try:
                _entered.reset(token)
            except ValueError:  # exited in another context than entered: take it off by hand
                _entered.set(tuple(r for r in _entered.get() if r is not self))
        if exc is None:
            self.end("FINISHED")
        elif isinstance(exc, RunStopRequested):
            self.end("KILLED", error=self.stop_reason)
        elif isinstance(exc, (KeyboardInterrupt, SystemExit)):
            self.end("KILLED", error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        else:
            summary = "".join(traceback.format_exception(exc_type, exc, tb)[-3:])
            self.end("FAILED", error=summary[-4000:])
        # returning None re-raises the exception: a run never swallows an error


def dense_line(run_id: str, first_seq: int, points: list[tuple[Any, ...]]) -> dict[str, Any]:
    """One ``metrics`` line for queued ``(key, value, step, ts, marks)`` points: ``marks`` is
    whether the point is the best so far, or for a point measured on a dataset the tuple
    ``(best, dataset_name, dataset_digest)``, so a point without one costs nothing more.
    Schema 2, or 3 when a point names a dataset."""
    keys: dict[str, int] = {}
    k: list[int] = []
    steps: list[int] = []
    values: list[float | None] = []
    dts: list[int] = []
    best_at: list[int] = []
    special_at: list[int] = []
    special: list[str | None] = []
    linked: list[tuple[int, tuple[str, str]]] = []  # (point, (name, digest))
    start = points[0][3]
    for i, (key, value, step, ts, marks) in enumerate(points):
        index = keys.get(key)
        if index is None:
            index = keys[key] = len(keys)
        k.append(index)
        steps.append(step)
        dts.append(round((ts - start) * 1000))
        if value != value or value == _INF or value == -_INF:
            values.append(None)
            special_at.append(i)
            special.append(ev.nonfinite_name(value))
        else:
            values.append(value)
        if marks:
            if type(marks) is not tuple:
                best_at.append(i)
            else:  # (best, name, digest)
                if marks[0]:
                    best_at.append(i)
                linked.append((i, marks[1:]))
    line: dict[str, Any] = {"v": 2, "type": "metrics", "ts": start, "run": run_id, "seq": first_seq,
                            "keys": list(keys), "k": k, "steps": steps, "values": values, "dts": dts}
    if best_at:
        line["best_at"] = best_at
    if special_at:
        line["special_at"] = special_at
        line["special"] = special
    if linked:
        datasets: dict[tuple[str, str], int] = {}
        d: list[int | None] = [None] * len(points)
        for i, dataset in linked:
            d[i] = datasets.setdefault(dataset, len(datasets))
        line.update(v=3, datasets=[list(pair) for pair in datasets], d=d)
    return line


def _display_path(path: Path) -> str:
    """A path relative to the working directory when inside it, else absolute."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


# -- process-wide machinery: background flushing, exit and SIGTERM handling ------------

_active_runs: weakref.WeakSet[Run] = weakref.WeakSet()
_machinery_lock = threading.Lock()
_installed = False
_failed_exit = False


def active_runs() -> Iterator[Run]:
    return iter(list(_active_runs))


def register(run: Run) -> None:
    """Track an active run: flush it in the background and end it at exit."""
    global _installed
    _active_runs.add(run)
    background.keep_flushed(run)
    with _machinery_lock:
        if not _installed:
            _installed = True
            atexit.register(_end_all_at_exit)
            _chain_excepthook()
            _install_sigterm()


def _end_all_at_exit() -> None:
    for run in active_runs():
        run.end("FAILED" if _failed_exit else "FINISHED",
                error="the process exited on an uncaught exception" if _failed_exit else None)


def _chain_excepthook() -> None:
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        global _failed_exit
        _failed_exit = True
        for run in active_runs():
            killed = issubclass(exc_type, KeyboardInterrupt)
            run.end("KILLED" if killed else "FAILED", error=f"{exc_type.__name__}: {exc}")
        previous(exc_type, exc, tb)

    sys.excepthook = hook


def _install_sigterm() -> None:
    """On SIGTERM mark active runs KILLED, then die of SIGTERM as before. Only when no
    one else handles SIGTERM and we are on the main thread (signal's own rule)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        for run in active_runs():
            run.end("KILLED", error="SIGTERM")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
