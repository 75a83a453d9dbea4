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
        self.run_id = run_id

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
        self.model_id = model_id

    def write(self, files: list[tuple[str, Path]]) -> None:
        self.models.log_files(self.model_id, files)

    def sizes(self) -> dict[str, int]:
        return self.models.file_sizes(self.model_id)

    def file(self, name: str) -> Path:
        return self.models.file(self.model_id, name)


class MltrailArtifactRepository(ArtifactRepository):
    """The artifacts of one run, or the files of one logged model, of an mltrail folder
    (under an optional path inside them)."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        parsed = urlparse(artifact_uri)
        roots = parse_qs(parsed.query).get("root")
        parts = [p for p in parsed.path.split("/") if p]
        if parsed.scheme != ARTIFACTS_SCHEME or not roots or not parts:
            raise MlflowException(f"not an mltrail artifact URI: {artifact_uri!r} "
                                  f"({ARTIFACTS_SCHEME}:/<run ID>[/<path>]?root=<store folder>, or "
                                  f"{ARTIFACTS_SCHEME}:/{MODELS_PATH}/<model ID>[/<path>]?root=<store folder>)",
                                  error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        self.translation = translation_for(Path(roots[0]))
        if parts[0] == MODELS_PATH:  # a run's ID is never "models": a ULID or MLflow's hex
            if len(parts) < 2:
                raise MlflowException(f"{artifact_uri!r} names no logged model ({ARTIFACTS_SCHEME}:/{MODELS_PATH}/"
                                      "<model ID>?root=<store folder>)",
                                      error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
            self.files: _RunFiles | _ModelFiles = _ModelFiles(self.translation, parts[1])
            parts = parts[1:]
        else:
            self.files = _RunFiles(self.translation, parts[0])
        self.prefix = "/".join(parts[1:])  # the path inside the run or model this repository is at

    def _name(self, *parts: str | None) -> str:
        name = posixpath.join(self.prefix, *(p.strip("/") for p in parts if p and p.strip("/")))
        name = posixpath.normpath(name) if name else name
        if not name or name == "." or name.startswith(("../", "/")) or name == "..":
            raise MlflowException(f"artifact path {name!r} leaves the artifacts of {self.artifact_uri}",
                                  error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        return name

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        self.files.write([(self._name(artifact_path, Path(local_file).name), Path(local_file))])

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        folder = Path(local_dir)
        self.files.write([(self._name(artifact_path, path.relative_to(folder).as_posix()), path)
                          for path in sorted(p for p in folder.rglob("*") if p.is_file())])

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """What is directly under ``path`` (relative to this repository): files with their
        size, folders once each; a path that is a file lists nothing, as MLflow's do."""
        base = posixpath.join(self.prefix, path.strip("/")) if path and path.strip("/") else self.prefix
        base = base.strip("/")
        inside = f"{base}/" if base else ""
        shown: dict[str, FileInfo] = {}
        for name, size in self.files.sizes().items():
            if not name.startswith(inside):
                continue
            head, _, rest = name[len(inside):].partition("/")
            relative = posixpath.relpath(f"{inside}{head}", self.prefix) if self.prefix else f"{inside}{head}"
            shown.setdefault(relative, FileInfo(relative, True, None) if rest else FileInfo(relative, False, size))
        return sorted(shown.values(), key=lambda f: f.path)

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        shutil.copyfile(self.files.file(self._name(remote_file_path)), local_path)
