"""Shared fixtures: every test runs in its own folder with a clean MLTRAIL_* environment
and its own home, so nothing a test does (a remote store's default spool under
``~/.cache/mltrail``, a child process it starts) writes outside ``tmp_path``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mltrail
from mltrail import fluent
from mltrail import mlflow as mlflow_api


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("MLTRAIL_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))  # Path.home(), expanduser(), and every child process
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.chdir(tmp_path)
    fluent._stack.clear()  # the active runs (state a user's process has, not a cache): one a failed test left
    monkeypatch.setattr(mlflow_api, "_state", mlflow_api._State())  # set_tracking_uri, set_experiment
    return tmp_path


@pytest.fixture
def store(tmp_path: Path) -> mltrail.Store:
    return mltrail.Store(tmp_path / "store")
