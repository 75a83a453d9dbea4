"""Settings, resolved in one documented order: keyword argument, then the ``MLTRAIL_*``
environment variable, then the default.

Every setting is a :class:`Setting` below, with its one-line meaning; :data:`SETTINGS`
lists them all. The README's configuration table is generated from them
(``python scripts/settings_table.py --write``) and ``tests/test_config.py`` keeps the
two equal, so a setting added here without its line in the README fails the tests.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from .errors import InvalidInputError

DEFAULT_STORE_DIR = "mltrail_runs"

T = TypeVar("T", int, float, str)


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One typed setting backed by an environment variable.

    ``doc`` is its meaning in one line and ``shown`` its default as a reader should see
    it, when the value alone would mislead (a default computed at run time, or unset);
    both go into the README's table.
    """

    env: str
    default: T
    cast: type[T]  # what get() returns: FLUSH_EVENTS.get() is an int, FLUSH_SECONDS.get() a float
    doc: str = ""
    shown: str = ""

    def get(self, value: T | None = None) -> T:
        if value is not None:
            return self.cast(value)
        raw = os.environ.get(self.env)
        if raw is None or raw == "":
            return self.cast(self.default)
        try:
            return self.cast(raw)
        except ValueError:
            raise InvalidInputError(f"{self.env}={raw!r} is not a {self.cast.__name__}") from None

    @property
    def shown_default(self) -> str:
        if self.shown:
            return self.shown
        default: object = self.default  # (a T, of which only a float has is_integer)
        if isinstance(default, float) and default.is_integer():
            return f"`{int(default)}`"  # (10, not 10.0: the variable takes either)
        return f"`{self.default}`"


# Where things are, and who acts
STORE_DIR = Setting("MLTRAIL_DIR", DEFAULT_STORE_DIR, str, "store root: a folder, or an mltrail server's "
                    "`http(s)://` URL", "`./mltrail_runs`")
USER = Setting("MLTRAIL_USER", "", str, "who a registry, A/B or feature change is `by` when none is given",
               "your login name")
# Runs
FLUSH_SECONDS = Setting("MLTRAIL_FLUSH_SECONDS", 1.0, float, "buffered events (a run's, an A/B log's) are "
                        "written at least this often, in seconds: what a killed process can lose")
FLUSH_EVENTS = Setting("MLTRAIL_FLUSH_EVENTS", 20_000, int, "... or as soon as this many are buffered")
HEARTBEAT_SECONDS = Setting("MLTRAIL_HEARTBEAT_SECONDS", 10.0, float, "a quiet running run writes a heartbeat "
                            "this often, in seconds")
CRASH_AFTER_SECONDS = Setting("MLTRAIL_CRASH_AFTER_SECONDS", 120.0, float, "a RUNNING run silent this many "
                              "seconds reads as CRASHED")
DIFF_MAX_BYTES = Setting("MLTRAIL_DIFF_MAX_BYTES", 1_000_000, int, "bytes of `git diff` kept with a run")
GIT_ARTIFACT_MAX = Setting("MLTRAIL_GIT_ARTIFACT_MAX", 10_000_000, int, "artifacts larger than this many bytes "
                           "go to `blobs-large/`, out of git")
SYSTEM_METRICS = Setting("MLTRAIL_SYSTEM_METRICS", "", str, "`true`: every run samples system metrics "
                         "(`start_run(log_system_metrics=...)` decides for one run)", "unset (off)")
SYSTEM_METRICS_SECONDS = Setting("MLTRAIL_SYSTEM_METRICS_SECONDS", 10.0, float, "how often a run samples CPU, "
                                 "memory, disk, network and GPUs, in seconds")
# Registry, A/B and the services
LOCK_TIMEOUT = Setting("MLTRAIL_LOCK_TIMEOUT", 10.0, float, "seconds to wait for a registry or A/B lock (then "
                       "`BusyError`, a 503 in the router)")
AB_MEMORY = Setting("MLTRAIL_AB_MEMORY", "1GB", str, "memory an A/B analysis's engine (DuckDB) may use before "
                    "it spills to disk (`512MB`, `4GB`...)")
SKOPS_TRUSTED_TYPES = Setting("MLTRAIL_SKOPS_TRUSTED_TYPES", "", str, "types (comma-separated, as "
                              "`UntrustedTypesError` names them) a model saved with skops may load besides "
                              "skops' own and its `MLmodel`'s `skops_trusted_types`", "unset")
ADMIN_TOKEN = Setting("MLTRAIL_ADMIN_TOKEN", "", str, "the A/B router's admin calls ask for "
                      "`Authorization: Bearer` it (off while unset)", "unset")
# A team's server and its clients
SERVER_TOKEN = Setting("MLTRAIL_SERVER_TOKEN", "", str, "`mltrail server` on a store without users asks every "
                       "call for `Authorization: Bearer` it (with users, each has their own)", "unset (open)")
TOKEN = Setting("MLTRAIL_TOKEN", "", str, "the token a server store, the CLI, the dashboard and `mltrail sync` "
                "send when none is given", "unset")
SPOOL = Setting("MLTRAIL_SPOOL", "", str, "where a server store's runs are written before they are sent (used "
                "as given)", "`~/.cache/mltrail/spool/<host>-<port>/<token key>`")
UPLOAD_WAIT_SECONDS = Setting("MLTRAIL_UPLOAD_WAIT_SECONDS", 10.0, float, "at exit, how many seconds a job "
                              "waits for its last lines to reach the server")
STAGED_MAX_BYTES = Setting("MLTRAIL_STAGED_MAX_BYTES", 100 << 30, int, "a server holds at most this many bytes "
                           "of one user's blobs sent but not yet named by a run's line (uploads in flight); past "
                           "it their next part waits (503)", "`107374182400` (100 GiB)")
# The dashboard
# a download button holds its file in the server's memory while the page is open
UI_DOWNLOAD_MAX = Setting("MLTRAIL_UI_DOWNLOAD_MAX", 50_000_000, int, "the dashboard offers artifacts up to "
                          "this many bytes for download")
APP_DIR = Setting("MLTRAIL_APP_DIR", "", str, "the folder of the dashboard's Streamlit pages (`main.py`) that "
                  "`mltrail ui` runs", "`app/` beside the source tree")

SETTINGS = (STORE_DIR, USER, FLUSH_SECONDS, FLUSH_EVENTS, HEARTBEAT_SECONDS, CRASH_AFTER_SECONDS, DIFF_MAX_BYTES,
            GIT_ARTIFACT_MAX, SYSTEM_METRICS, SYSTEM_METRICS_SECONDS, LOCK_TIMEOUT, AB_MEMORY, SKOPS_TRUSTED_TYPES,
            ADMIN_TOKEN, SERVER_TOKEN, TOKEN, SPOOL, UPLOAD_WAIT_SECONDS, STAGED_MAX_BYTES, UI_DOWNLOAD_MAX, APP_DIR)


def settings_markdown() -> str:
    """Every setting as the README's Markdown table (variable, meaning, default)."""
    lines = ["| variable | meaning | default |", "|---|---|---|"]
    lines += [f"| `{s.env}` | {s.doc} | {s.shown_default} |" for s in SETTINGS]
    return "\n".join(lines) + "\n"


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)


def ab_memory_limit() -> str:
    """How much memory an A/B analysis may use before its engine spills to disk:
    ``$MLTRAIL_AB_MEMORY`` (``512MB``, ``4GB``...), 1 GB by default."""
    raw = AB_MEMORY.get()
    match = _SIZE.fullmatch(raw)
    if match is None:
        raise InvalidInputError(f"MLTRAIL_AB_MEMORY={raw!r} is not a size such as 512MB or 2GB")
    return f"{match.group(1)}{match.group(2)}"


def resolve_store_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The store root: ``root`` if given, else ``$MLTRAIL_DIR``, else ``./mltrail_runs``."""
    if root is None or str(root) == "":
        root = STORE_DIR.get()
    return Path(root).expanduser().absolute()


def current_user() -> str | None:
    """Who acts, for the ``by`` of registry, A/B and feature events when none is given:
    ``$MLTRAIL_USER``, else the login name (None where there is none, as in some
    containers)."""
    user = USER.get()
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def is_url(root: object) -> bool:
    """Whether a store root names a server (``http(s)://``) rather than a folder."""
    return isinstance(root, str) and root.startswith(("http://", "https://"))
