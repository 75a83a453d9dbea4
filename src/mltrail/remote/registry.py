"""``store.registry`` against a server: each model is read as its events and replayed
here exactly as a local store replays its files; changes (create, register, aliases,
archive) are checked and written by the server. ``load_model`` fetches the artifact's
blob (an MLflow model's: each of its folder's) once into the spool's blobs and checks its
sha256 before loading."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from ..errors import InvalidInputError, NotFoundError
from ..registry.models import ModelRegistry, ModelVersion, artifact_files, check_alias
from ..storage import registry_events as ev
from ..storage.blobs import BlobStore
from ..storage.layout import Layout
from ..storage.logged_model_events import ModelFile
from .http import Server


def _quoted(name: Any) -> str:
    return urllib.parse.quote(str(name), safe="")


class RemoteModelRegistry(ModelRegistry):
    """The server's registered models. ``fetch(sha256)`` brings a blob into ``blobs``;
    ``get_run(ref)`` reads a run on the server (for ``runs:/`` URIs); ``before()`` sends
    this process's own runs first (a version registered from the run it just logged)."""

    def __init__(self, server: Server, spool: Layout, blobs: BlobStore,
                 fetch: Callable[[str], Path], get_run: Callable[[str], dict[str, Any]],
                 before: Callable[[], None] | None = None) -> None:
        super().__init__(spool, blobs, runs=None)  # type: ignore[arg-type]  # runs are read on the server
        self.server = server
        self._fetch = fetch
        self._get_run = get_run
        self._before = before

    # -- reading: the server's events, replayed here ---------------------------------

    def names(self) -> list[str]:
        return list(self.server.call("GET", "/api/v1/models"))

    def exists(self, name: str) -> bool:
        return name in self.names()

    def events(self, name: str) -> list[ev.RegistryEvent]:
        self._folder(name)  # the name's own check and message, before a call
        return [ev.REGISTRY_EVENT_ADAPTER.validate_python(e)
                for e in self.server.call("GET", f"/api/v1/models/{_quoted(name)}/events")]

    # -- writing: on the server --------------------------------------------------------

    def create(self, name: str, description: str | None = None, tags: Mapping[str, str] | None = None, *,
               by: str | None = None) -> pd.Series:
        self._folder(name)
        self.server.call("POST", "/api/v1/models", orjson.dumps(
            {"name": name, "description": description, "tags": dict(tags or {}), "by": by}))
        return self.list().set_index("model").loc[name]

    def register(self, name: str, run_id: str, artifact: str = "model.pkl", description: str | None = None,
                 tags: Mapping[str, str] | None = None, *, by: str | None = None) -> ModelVersion:
        if self._before is not None:
            self._before()
        answer = self.server.call("POST", f"/api/v1/models/{_quoted(name)}/versions", orjson.dumps(
            {"run": run_id, "artifact": artifact, "description": description, "tags": dict(tags or {}), "by": by}))
        return self.get(name, answer["version"])

    def set_alias(self, name: str, alias: str, version: int | str, reason: str | None = None, *,
                  by: str | None = None, promotion: dict[str, Any] | None = None) -> ModelVersion:
        check_alias(alias)
        if promotion is not None:
            raise InvalidInputError("a promotion is recorded by the server: store.promote_winner(experiment)")
        answer = self.server.call("PUT", f"/api/v1/models/{_quoted(name)}/aliases/{_quoted(alias)}",
                                  orjson.dumps({"version": version, "reason": reason, "by": by}))
        return self.get(name, answer["version"])

    def delete_alias(self, name: str, alias: str, reason: str | None = None, *, by: str | None = None) -> None:
        self.server.call("DELETE", f"/api/v1/models/{_quoted(name)}/aliases/{_quoted(alias)}",
                         orjson.dumps({"reason": reason, "by": by}))

    def archive(self, name: str, version: int | str, reason: str | None = None, *,
                by: str | None = None) -> ModelVersion:
        answer = self.server.call("POST", f"/api/v1/models/{_quoted(name)}/versions/{_quoted(version)}/archive",
                                  orjson.dumps({"reason": reason, "by": by}))
        return self.get(name, answer["version"])

    def _write(self, folder: Path, event: ev.RegistryEvent) -> None:
        """The edits a server makes through its own calls only (tags, descriptions, MLflow's
        deletes and folder versions: its MLflow API) are never written into the spool."""
        raise InvalidInputError(f"{event.type.replace('_', ' ')} of model {event.model!r} is made on the "
                                "server: through its MLflow API (MLFLOW_TRACKING_URI=<server URL>)")

    # -- loading: the artifact's blobs, fetched once ----------------------------------

    def _run_details(self, run: str) -> dict[str, Any]:
        return self._get_run(run)

    def _version_run_artifacts(self, version: ModelVersion) -> dict[str, ModelFile] | None:
        if version.run is None:  # a version made without a run (its logged model's files are its own)
            return None
        try:
            return artifact_files(self._get_run(version.run)["artifacts"])
        except NotFoundError:  # a user who may read the model and not its run: its own file only
            return None

    def _blob(self, sha256: str, what: str, in_git: bool | None) -> Path:
        self._fetch(sha256)  # into the spool's blobs (a fetch checks the sha256 too)
        return self.blobs.verified(sha256, what)
