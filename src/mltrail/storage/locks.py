"""Cross-process locks with a bounded wait.

The locks that guard a check-then-write (an A/B lifecycle change, an alias move) are
held for milliseconds. A caller that cannot have one within ``MLTRAIL_LOCK_TIMEOUT``
seconds (10 by default) gets :class:`~mltrail.errors.BusyError` naming the lock, instead
of waiting forever behind a stuck process; a service answers it with 503.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..config import LOCK_TIMEOUT
from ..errors import BusyError


@contextmanager
def held(path: Path, what: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock file ``path`` (guarding ``what``) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wait = LOCK_TIMEOUT.get(timeout)
    try:
        with FileLock(str(path), timeout=wait):
            yield
    except Timeout:
        raise BusyError(f"{what} is being changed by another process (its lock {path} was not free "
                        f"within {wait:g} s); try again") from None
