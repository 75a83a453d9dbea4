"""MLflow's artifact repository on an mltrail store: the ``mltrail-artifacts`` scheme.

A run's artifact URI is ``mltrail-artifacts:/<run ID>?root=<store folder>``; MLflow appends
a path inside the run to it (``.../<run ID>/model/MLmodel?root=...``) and builds a repository
for any such URI. Files go into the store content-addressed, as the run's artifacts named
by their path, through the run's own writer (:class:`.translate.Translation`), so the
run's log says what was logged and when.

A logged model's files (MLflow 3) are at ``mltrail-artifacts:/models/<model ID>?root=...``:
the same repository, writing and reading the model's files instead of a run's.
"""

from __future__ import annotations

import posixpath
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from .plugin import translation_for
from .common import ARTIFACTS_SCHEME, MODELS_PATH

if TYPE_CHECKING:
    from .translate import Translation


class _RunFiles:
    """A run's artifacts, as the repository reads and writes them."""

    def __init__(self, translation: Translation, run_id: str) -> None:
        self.translation = translation
        self.run_id = self.owner = run_id

    def write(self, files: list[tuple[str, Path]]) -> None:
        for name, path in files:
            self.translation.log_artifact(self.run_id, path, name)

    def sizes(self) -> dict[str, int]:
        return self.translation.artifact_sizes(self.run_id)

    def file(self, name: str) -> Path:
        return self.translation.artifact_file(self.run_id, name)


class _ModelFiles:
    """A logged model's files: one upload is one event of the model."""

    def __init__(self, translation: Translation, model_id: str) -> None:
        self.models = translation.logged_models
        self.model_id = self.owner = model_id

    def write(self, files: list[tuple[str, Path]]) -> None:
        self.models.log_files(self.model_id, files)

    def sizes(self) -> dict[str, int]:
        return self.models.file_sizes(self.model_id)

    def file(self, name: str) -> Path:
        return self.models.file(self.model_id, name)


class MltrailArtifactRepository(ArtifactRepository):
    """The artifacts of one run, or the files of one logged model, of an mltrail folder
    (under an optional path inside them).

    MLflow also builds a repository one level up: ``download_artifacts(artifact_uri=...)``
    and ``list_artifacts(artifact_uri=...)`` split a URI into its parent and last part, so
    ``mltrail-artifacts:/<run ID>?root=...`` is read as the path ``<run ID>`` of the
    repository at ``mltrail-artifacts:/?root=...`` (a model's ``/models/<model ID>`` as the
    path ``<model ID>`` at ``/models``). Such a repository names no run or model itself:
    the first part of each path it is given does."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        parsed = urlparse(artifact_uri)
        roots = parse_qs(parsed.query).get("root")
        parts = [p for p in parsed.path.split("/") if p]
        if parsed.scheme != ARTIFACTS_SCHEME or not roots:
            raise MlflowException(f"not an mltrail artifact URI: {artifact_uri!r} "
                                  f"({ARTIFACTS_SCHEME}:/<run ID>[/<path>]?root=<store folder>, or "
                                  f"{ARTIFACTS_SCHEME}:/{MODELS_PATH}/<model ID>[/<path>]?root=<store folder>)",
                                  error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        self.translation = translation_for(Path(roots[0]))
        # a run's ID is never "models": a ULID or MLflow's hex
        self.models = bool(parts) and parts[0] == MODELS_PATH
        self.owner = parts[1 if self.models else 0] if len(parts) > self.models else None
        self.prefix = "/".join(parts[2 if self.models else 1:])  # the path inside the run or model

    def _files(self, owner: str) -> _RunFiles | _ModelFiles:
        return _ModelFiles(self.translation, owner) if self.models else _RunFiles(self.translation, owner)

    def _target(self, *parts: str | None) -> tuple[_RunFiles | _ModelFiles, str]:
        """The run's (or model's) files and the name inside them that ``parts`` give."""
        joined = posixpath.join(self.prefix, *(p.strip("/") for p in parts if p and p.strip("/")))
        owner = self.owner
        if owner is None:  # a repository above the runs (or models): the path names one first
            owner, _, joined = joined.partition("/")
            if not owner:
                raise MlflowException(f"{self.artifact_uri!r} names no {'logged model' if self.models else 'run'}: "
                                      "give a path that starts with its ID",
                                      error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        name = posixpath.normpath(joined) if joined else joined
        if not name or name == "." or name.startswith(("../", "/")) or name == "..":
            raise MlflowException(f"artifact path {name!r} leaves the artifacts of {self.artifact_uri}",
                                  error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        return self._files(owner), name

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        files, name = self._target(artifact_path, Path(local_file).name)
        files.write([(name, Path(local_file))])

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        folder = Path(local_dir)
        batches: dict[str, tuple[_RunFiles | _ModelFiles, list[tuple[str, Path]]]] = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            files, name = self._target(artifact_path, path.relative_to(folder).as_posix())
            batches.setdefault(files.owner, (files, []))[1].append((name, path))
        for files, named in batches.values():  # one write a run or model (a model's: one event)
            files.write(named)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """What is directly under ``path`` (relative to this repository): files with their
        size, folders once each; a path that is a file lists nothing, as MLflow's do."""
        base = posixpath.join(self.prefix, path.strip("/")) if path and path.strip("/") else self.prefix
        base = base.strip("/")
        owner, above = self.owner, ""
        if owner is None:  # above the runs: the path's first part names the run (none: nothing listed)
            owner, _, base = base.partition("/")
            if not owner:
                return []
            above = owner
        inside = f"{base}/" if base else ""
        shown: dict[str, FileInfo] = {}
        try:
            sizes = self._files(owner).sizes()
        except MlflowException:
            if self.owner is None:
                return []  # an unknown ID under a repository above the runs lists nothing
            raise
        for name, size in sizes.items():
            if not name.startswith(inside):
                continue
            head, _, rest = name[len(inside):].partition("/")
            full = posixpath.join(above, f"{inside}{head}")
            relative = posixpath.relpath(full, self.prefix) if self.prefix else full
            shown.setdefault(relative, FileInfo(relative, True, None) if rest else FileInfo(relative, False, size))
        return sorted(shown.values(), key=lambda f: f.path)

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        files, name = self._target(remote_file_path)
        shutil.copyfile(files.file(name), local_path)
