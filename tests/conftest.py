"""Shared fixtures: every test runs in its own folder with a clean MLTRAIL_* environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mltrail
from mltrail.tracking import fluent

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("MLTRAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    fluent._stack.clear()
    fluent._stores.clear()
    return tmp_path


@pytest.fixture
def store(tmp_path: Path) -> mltrail.Store:
    return mltrail.Store(tmp_path / "store")


def quiet_run(store: mltrail.Store, experiment: str = "exp", **kwargs):
    """A run without capture: fast, and independent of the machine's git state."""
    return store.start_run(experiment, log_git=False, log_packages=False, **kwargs)


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a real child process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def spawn_python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def free_port() -> int:
    """A loopback port nothing listens on now (for a service a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
