"""Model URIs and loading: ``models:/name@alias``, ``models:/name/3``, ``models:/name/latest``
(MLflow's forms) and ``runs:/RUN/artifact``, each resolved to the artifact's file with its
hash verified, so what is served is exactly what was registered."""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, MltrailError, StoreCorruptError
from ..tracking.datasets import file_sha256

if TYPE_CHECKING:
    from ..tracking.store import Store
    from .models import ModelVersion

_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))?$")
_RUNS = re.compile(r"^runs:/(?P<run>[^/]+)/(?P<artifact>.+)$")


def parse_model_uri(uri: str) -> tuple[str, int | None, str | None]:
    """``(name, version, alias)`` of a ``models:/`` URI; ``latest`` is an alias."""
    match = _MODELS.match(uri) if isinstance(uri, str) else None
    if match is None:
        raise InvalidInputError(f"{uri!r} is not a model URI: use models:/name@alias, models:/name/3 "
                                "or models:/name/latest")
    version = match["version"]
    if version is None:
        return match["name"], None, match["alias"] or "latest"
    if version.lower() == "latest":
        return match["name"], None, "latest"
    if not version.isdigit():
        raise InvalidInputError(f"{uri!r}: the version must be a number or 'latest', not {version!r}")
    return match["name"], int(version), None


@dataclass(frozen=True)
class ResolvedModel:
    """Where a URI's artifact is, what it must hash to, and what it came from."""

    uri: str
    path: Path
    sha256: str
    run: str
    artifact: str
    version: ModelVersion | None  # for models:/ URIs


def resolve(store: Store, uri: str) -> ResolvedModel:
    """The artifact file a URI names, its sha256 checked against the record."""
    runs = _RUNS.match(uri) if isinstance(uri, str) else None
    if runs is not None:
        details = store.get_run(runs["run"])
        run_id = details["run"]["run_id"]
        artifacts = details["artifacts"].set_index("path")
        path = store.artifact_path(run_id, runs["artifact"])
        resolved = ResolvedModel(uri, path, artifacts.loc[runs["artifact"], "sha256"], run_id,
                                 runs["artifact"], None)
    else:
        name, number, alias = parse_model_uri(uri)
        version = store.registry.get(name, number, alias)
        resolved = ResolvedModel(uri, store.artifact_path(version.run, version.artifact), version.sha256,
                                 version.run, version.artifact, version)
    verified(resolved.path, resolved.sha256, uri)
    return resolved


def verified(path: Path, sha256: str, what: str) -> Path:
    """``path``, after checking that it still hashes to ``sha256``."""
    digest, _ = file_sha256(path)
    if digest != sha256:
        raise StoreCorruptError(f"{what}: the file {path} no longer matches its sha256 "
                                f"{sha256[:12]}... (it hashes to {digest[:12]}...)")
    return path


def load_model(uri: str, store: Store | None = None) -> Any:
    """Unpickle the model a URI names (hash verified first). Unpickling runs code from
    the file: load only from a store you trust."""
    if store is None:
        from ..tracking.fluent import default_store

        store = default_store()
    return unpickled(resolve(store, uri))


def unpickled(resolved: ResolvedModel) -> Any:
    """The object pickled in a resolved artifact. Unpickling imports the classes the
    model was made of: a module missing here is named, with what installs it."""
    try:
        return pickle.loads(resolved.path.read_bytes())  # noqa: S301 - a trusted store's artifact, hash checked
    except ModuleNotFoundError as exc:
        package = {"sklearn": "scikit-learn"}.get((exc.name or "").partition(".")[0], exc.name)
        raise MltrailError(f"{resolved.uri} needs the Python module {exc.name!r}, which is not installed "
                           f"here: pip install {package} (the sample models: pip install -e '.[samples]')"
                           ) from None
