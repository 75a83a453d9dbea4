"""The process's background flusher: buffered events reach the disk at least every
``MLTRAIL_FLUSH_SECONDS``, whoever buffered them (runs, A/B exposure logs).

One daemon thread per process, started by the first buffer that registers. It survives
any error of one buffer (a full disk, a bug): the error is logged as a warning of this
module's logger (shown on stderr unless the application configures logging) and the
other buffers keep flowing; the failing one is tried again at the next tick.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Protocol

from ..config import FLUSH_SECONDS

logger = logging.getLogger(__name__)


class Buffered(Protocol):
    def background_flush(self) -> None:
        """Write what is due; called from the flusher thread every tick."""

    def describe(self) -> str:
        """What this buffer is, for an error message."""


RECHECK_SECONDS = 0.5  # how soon a changed MLTRAIL_FLUSH_SECONDS takes effect
_members: weakref.WeakSet[Buffered] = weakref.WeakSet()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def keep_flushed(buffer: Buffered) -> None:
    """Flush ``buffer`` in the background from now until it is garbage or forgotten."""
    global _thread
    _members.add(buffer)
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="mltrail-flusher", daemon=True)
            _thread.start()


def forget(buffer: Buffered) -> None:
    _members.discard(buffer)


def flush_all_now() -> None:
    """One tick, now (tests, and code that wants its events on disk)."""
    for buffer in list(_members):
        _flush_one(buffer)


def _loop() -> None:
    # the period is read again every RECHECK_SECONDS, not slept whole: one sleep of a long
    # MLTRAIL_FLUSH_SECONDS (3600, set for a while) kept every later buffer of the process
    # from the disk for an hour after the setting was changed back
    last = time.monotonic()
    while True:
        due = last + FLUSH_SECONDS.get()
        now = time.monotonic()
        if now < due:
            time.sleep(min(due - now, RECHECK_SECONDS))
            continue
        last = now
        flush_all_now()


def _flush_one(buffer: Buffered) -> None:
    try:
        buffer.background_flush()
    except Exception as exc:  # noqa: BLE001 - the flusher must outlive any one buffer's fault
        # a warning, not an error: nothing is lost yet, the next tick tries again
        logger.warning("mltrail: could not flush %s: %s: %s", buffer.describe(), type(exc).__name__, exc)
