"""Settings, resolved in one documented order: keyword argument, then the ``MLTRAIL_*``
environment variable, then the default.

=============================== ========================= =========================
environment variable            meaning                   default
=============================== ========================= =========================
``MLTRAIL_DIR``                 store root                ``./mltrail_runs``
``MLTRAIL_USER``                who a registry, A/B or    the login name
                                feature change is ``by``
``MLTRAIL_FLUSH_SECONDS``       buffered events flush at  ``1.0``
                                least this often
``MLTRAIL_FLUSH_EVENTS``        ... or when this many     ``20000``
                                events are buffered
``MLTRAIL_HEARTBEAT_SECONDS``   a quiet running run       ``10``
                                writes a heartbeat
``MLTRAIL_CRASH_AFTER_SECONDS`` a RUNNING run silent this ``120``
                                long reads as CRASHED
``MLTRAIL_DIFF_MAX_BYTES``      git diff kept per run     ``1000000``
``MLTRAIL_GIT_ARTIFACT_MAX``    artifacts larger than     ``10000000``
                                this stay out of git
``MLTRAIL_LOCK_TIMEOUT``        seconds to wait for a     ``10``
                                registry or A/B lock
``MLTRAIL_UI_DOWNLOAD_MAX``      the dashboard offers      ``50000000``
                                artifacts up to this size
                                for download (bytes)
=============================== ========================= =========================
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInputError

DEFAULT_STORE_DIR = "mltrail_runs"


@dataclass(frozen=True)
class Setting:
    """One typed setting backed by an environment variable."""

    env: str
    default: float
    cast: type = float

    def get(self, value: float | None = None) -> float:
        if value is not None:
            return self.cast(value)
        raw = os.environ.get(self.env)
        if raw is None or raw == "":
            return self.cast(self.default)
        try:
            return self.cast(raw)
        except ValueError:
            raise InvalidInputError(f"{self.env}={raw!r} is not a {self.cast.__name__}") from None


FLUSH_SECONDS = Setting("MLTRAIL_FLUSH_SECONDS", 1.0)
FLUSH_EVENTS = Setting("MLTRAIL_FLUSH_EVENTS", 20_000, int)
HEARTBEAT_SECONDS = Setting("MLTRAIL_HEARTBEAT_SECONDS", 10.0)
CRASH_AFTER_SECONDS = Setting("MLTRAIL_CRASH_AFTER_SECONDS", 120.0)
DIFF_MAX_BYTES = Setting("MLTRAIL_DIFF_MAX_BYTES", 1_000_000, int)
GIT_ARTIFACT_MAX = Setting("MLTRAIL_GIT_ARTIFACT_MAX", 10_000_000, int)
LOCK_TIMEOUT = Setting("MLTRAIL_LOCK_TIMEOUT", 10.0)
# a download button holds its file in the server's memory while the page is open
SYSTEM_METRICS_SECONDS = Setting("MLTRAIL_SYSTEM_METRICS_SECONDS", 10.0)  # a run's system sample period
UPLOAD_WAIT_SECONDS = Setting("MLTRAIL_UPLOAD_WAIT_SECONDS", 10.0)  # at exit, for a server store's last lines
UI_DOWNLOAD_MAX = Setting("MLTRAIL_UI_DOWNLOAD_MAX", 50_000_000, int)


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)


def ab_memory_limit() -> str:
    """How much memory an A/B analysis may use before its engine spills to disk:
    ``$MLTRAIL_AB_MEMORY`` (``512MB``, ``4GB``...), 1 GB by default."""
    raw = os.environ.get("MLTRAIL_AB_MEMORY") or "1GB"
    match = _SIZE.fullmatch(raw)
    if match is None:
        raise InvalidInputError(f"MLTRAIL_AB_MEMORY={raw!r} is not a size such as 512MB or 2GB")
    return f"{match.group(1)}{match.group(2)}"


def resolve_store_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The store root: ``root`` if given, else ``$MLTRAIL_DIR``, else ``./mltrail_runs``."""
    if root is None or str(root) == "":
        root = os.environ.get("MLTRAIL_DIR") or DEFAULT_STORE_DIR
    return Path(root).expanduser().absolute()


def current_user() -> str | None:
    """Who acts, for the ``by`` of registry, A/B and feature events when none is given:
    ``$MLTRAIL_USER``, else the login name (None where there is none, as in some
    containers)."""
    user = os.environ.get("MLTRAIL_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
