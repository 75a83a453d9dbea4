"""Exposure and feedback logs: production volume, one writer per segment file.

Each logging process writes its own segment files, ``ab/<key>/log/<writer>-<n>.jsonl``,
so several routers log at once with no shared lock and no interleaved line; a segment
is closed and the next begun past ``MAX_SEGMENT_BYTES`` or ``MAX_SEGMENT_SECONDS``.
Calls only validate and queue; the queue is written in one ``write()`` when it holds
``FLUSH_EVENTS`` events, at least every ``MLTRAIL_FLUSH_SECONDS`` (1 s) from the
process's background flusher, on :meth:`ExposureLog.flush` and at interpreter exit, and
is durable (fsync) at flush. So a process killed outright loses at most the last
second of events. The experiment's state is re-read at most once a second: exposures
for a paused or stopped experiment are refused.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, WrongStateError
from ..storage import background
from ..storage.ab_events import FEEDBACK_MAX
from ..storage.eventlog import EventWriter, events_to_lines
from ..storage.fields import INT64_MAX, LATEST_TS
from ..storage.ids import new_id
from ..storage.layout import is_unicode_text

logger = logging.getLogger(__name__)

FLUSH_EVENTS = 50_000
MAX_SEGMENT_BYTES = 64 << 20
MAX_SEGMENT_SECONDS = 3600.0
STATE_RECHECK_SECONDS = 1.0
_time = time.time
_open_logs: weakref.WeakSet[ExposureLog] = weakref.WeakSet()


State = Callable[[], tuple[bool, int]]  # (running?, current phase), read from the store


class ExposureLog:
    """Buffered exposure and feedback events of one experiment from this process.

    ``state`` re-reads the experiment (whether it runs, its phase) from the store."""

    def __init__(self, key: str, folder: Path, variants: Iterable[str], metrics: Iterable[str],
                 state: State) -> None:
        self.key = key
        self.folder = folder
        self.writer_id = new_id()
        self._state = state
        self._variants = frozenset(variants)
        self._metrics = frozenset(metrics)
        self._pending: deque[tuple[Any, ...]] = deque()
        self._writing = 0  # events a flush took from the queue and has not yet written
        self._lock = threading.Lock()
        self._seq = 0
        self._segment = 0
        self._segment_bytes = 0
        self._segment_started = time.monotonic()
        self._writer: EventWriter | None = None
        self._checked = time.monotonic()
        self._running, self._phase = state()
        self.counts: Counter[str] = Counter()  # exposures per variant logged by this process
        self.failed_flushes = 0  # flushes that raised (each retried at the next tick)
        self.last_error: str | None = None
        _open_logs.add(self)
        background.keep_flushed(self)

    def describe(self) -> str:
        return f"the exposure log of A/B experiment {self.key!r}"

    @property
    def pending(self) -> int:
        """Events not yet on disk: queued, or taken by a flush that has not finished."""
        return len(self._pending) + self._writing

    def recheck_state(self) -> None:
        """Re-read the experiment's state at the next call (it was just changed here)."""
        self._checked = float("-inf")

    # -- the hot path ----------------------------------------------------------------

    def _refresh_state(self) -> None:
        now = time.monotonic()
        if now - self._checked >= STATE_RECHECK_SECONDS:
            self._running, self._phase = self._state()
            self._checked = now

    def log_exposure(self, unit_id: str, variant: str, phase: int | None = None,
                     attributes: Mapping[str, Any] | None = None) -> None:
        """Record that ``unit_id`` was served ``variant`` (running experiments only), in
        ``phase``: the phase the variant was assigned in (default: the current one).
        ``attributes`` ({"country": "FR"}) are what results can be read by."""
        if type(unit_id) is not str or not unit_id or not (unit_id.isascii() or is_unicode_text(unit_id)):
            raise InvalidInputError(f"unit id must be a non-empty string of Unicode text, not {unit_id!r}")
        if variant not in self._variants:
            raise InvalidInputError(f"unknown variant {variant!r} of {self.key!r}; "
                                    f"variants are {sorted(self._variants)}")
        self._refresh_state()
        if not self._running:
            raise WrongStateError(f"experiment {self.key!r} is not running: exposures are refused")
        if attributes is not None:
            attributes = check_attributes(attributes)
        if phase is None:
            phase = self._phase
        elif isinstance(phase, bool) or not isinstance(phase, int) or not 1 <= phase <= INT64_MAX:
            raise InvalidInputError(f"a phase is a number from 1 (the experiment's first), not {phase!r}")
        self._pending.append((0, unit_id, variant, phase, _now(), attributes))
        self.counts[variant] += 1
        if len(self._pending) >= FLUSH_EVENTS:
            self.flush()

    def log_feedback(self, unit_id: str, metric: str, value: float) -> None:
        """Record a KPI value of a unit (a conversion is 1.0, a revenue an amount)."""
        if type(unit_id) is not str or not unit_id or not (unit_id.isascii() or is_unicode_text(unit_id)):
            raise InvalidInputError(f"unit id must be a non-empty string of Unicode text, not {unit_id!r}")
        if metric not in self._metrics:
            raise InvalidInputError(f"unknown metric {metric!r} of {self.key!r}; "
                                    f"metrics are {sorted(self._metrics)}")
        if type(value) is not float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInputError(f"feedback {metric!r} needs a number, not {value!r}")
            value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInputError(f"feedback {metric!r} must be finite, not {value!r}")
        if abs(value) > FEEDBACK_MAX:  # its square would overflow the variant's statistics
            raise InvalidInputError(f"feedback {metric!r} must be at most {FEEDBACK_MAX:g} in size, not {value!r}")
        self._pending.append((1, unit_id, metric, value, _now()))
        if len(self._pending) >= FLUSH_EVENTS:
            self.flush()

    # -- writing -----------------------------------------------------------------------

    def background_flush(self) -> None:
        """The background flusher's tick: whatever is queued goes to disk."""
        self.flush()

    def flush(self) -> None:
        """Write queued events to this writer's segment and fsync it."""
        with self._lock:
            count = len(self._pending)
            if not count:
                return
            items = [self._pending.popleft() for _ in range(count)]
            self._writing = count
            events = []
            seq = self._seq
            key = self.key
            for item in items:
                seq += 1
                if item[0] == 0:
                    _, unit, variant, phase, ts, attributes = item
                    event = {"v": 1, "type": "exposure", "ts": ts, "experiment": key,
                             "seq": seq, "unit": unit, "variant": variant, "phase": phase}
                    if attributes:
                        event["attributes"] = attributes
                    events.append(event)
                else:
                    _, unit, metric, value, ts = item
                    events.append({"v": 1, "type": "feedback", "ts": ts, "experiment": key,
                                   "seq": seq, "unit": unit, "metric": metric, "value": value})
            try:
                data = events_to_lines(events)
                writer = self._current_writer(len(data))
                writer.append(data)
                writer.sync()  # durable at flush
            except BaseException as exc:  # kept for the next try: nothing queued is dropped
                self._pending.extendleft(reversed(items))
                self._writing = 0
                self.failed_flushes += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                raise
            self._seq = seq
            self._segment_bytes += len(data)
            self._writing = 0

    def _current_writer(self, incoming: int) -> EventWriter:
        too_big = self._segment_bytes and self._segment_bytes + incoming > MAX_SEGMENT_BYTES
        too_old = time.monotonic() - self._segment_started > MAX_SEGMENT_SECONDS
        if self._writer is None or too_big or too_old:
            if self._writer is not None:
                self._writer.close()
                self._segment += 1
            path = self.folder / f"{self.writer_id}-{self._segment:04d}.jsonl"
            self._writer = EventWriter(path)
            self._segment_bytes = 0
            self._segment_started = time.monotonic()
        return self._writer

    def close(self) -> None:
        self.flush()
        background.forget(self)
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @property
    def segments(self) -> list[Path]:
        return sorted(self.folder.glob(f"{self.writer_id}-*.jsonl"))


@atexit.register
def _flush_all_at_exit() -> None:
    for log in list(_open_logs):
        try:
            log.close()
        except OSError as exc:  # the disk is gone at exit: say what was lost
            logger.error("mltrail: could not flush %s at exit: %s", log.describe(), exc)


def _now() -> float:
    """The time of an event; a clock outside the times any reader takes (before 1970,
    after 3000) is refused rather than written into every analysis of the experiment."""
    now = _time()
    if not 0 <= now <= LATEST_TS:
        raise InvalidInputError(f"this machine's clock says {now!r} s since 1970: no event is logged at that "
                                "time; set the clock right")
    return now


def check_attributes(attributes: Mapping[str, Any]) -> dict[str, str]:
    """An exposure's attributes as text: names of 1-100 characters, values of at most 250
    (numbers and booleans written as text)."""
    if not isinstance(attributes, Mapping):
        raise InvalidInputError(f"exposure attributes are a mapping of names to values, not {type(attributes).__name__}")
    checked = {}
    for name, value in attributes.items():
        if not isinstance(name, str) or not 0 < len(name) <= 100 or not is_unicode_text(name):
            raise InvalidInputError(f"an exposure attribute's name is text of 1-100 characters, not {name!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str) or len(value) > 250 or not is_unicode_text(value):
            raise InvalidInputError(f"exposure attribute {name!r} must be text of at most 250 characters, not {value!r}")
        checked[name] = value
    return checked
