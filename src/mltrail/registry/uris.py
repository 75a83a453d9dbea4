"""Model URIs and loading: ``models:/name@alias``, ``models:/name/3``, ``models:/name/latest``
(MLflow's forms), ``models:/m-<ID>`` (an MLflow 3 logged model, as MLflow reads it) and
``runs:/RUN/artifact``, each resolved to the artifact's file with its hash verified, so
what is served is exactly what was registered. A URI that names an MLflow model (a folder
with an ``MLmodel`` file) resolves to every file of that folder, each verified;
:mod:`.mlflow_models` loads it."""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, MltrailError

if TYPE_CHECKING:
    from .models import ModelVersion

_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))?$")
RUNS_URI = re.compile(r"^runs:/(?P<run>[^/]+)/(?P<artifact>.+)$")
LOGGED_MODEL_URI = re.compile(r"^models:/(?P<model_id>m-[0-9a-f]{32})/?$")  # MLflow 3: a logged model's ID


def parse_model_uri(uri: str) -> tuple[str, int | None, str | None]:
    """``(name, version, alias)`` of a ``models:/`` URI; ``latest`` is an alias."""
    match = _MODELS.fullmatch(uri) if isinstance(uri, str) else None
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
    """Where a URI's artifact is, what it must hash to, and what it came from. For an
    MLflow model, ``files`` is its folder (``MLmodel`` among them): each file's path
    inside the folder and its verified blob; ``path`` is then the ``MLmodel``'s (or the
    version's own file's)."""

    uri: str
    path: Path
    sha256: str
    run: str | None  # None: a logged model or version made without a run
    artifact: str
    version: ModelVersion | None  # for models:/ URIs
    files: Mapping[str, Path] = field(default_factory=dict)


PICKLE_PROTOCOLS = range(2, 6)  # what pickle.dumps and joblib.dump write since Python 2.3


def looks_pickled(head: bytes) -> bool:
    """True when a file starting with ``head`` is a pickle (protocol 2 to 5): a model."""
    return len(head) >= 2 and head[0] == 0x80 and head[1] in PICKLE_PROTOCOLS


def unpickled(resolved: ResolvedModel) -> Any:
    """The object pickled in a resolved artifact. Unpickling imports the classes the
    model was made of: a module missing here is named, with what installs it; a file
    that is no pickle (a plot logged as an artifact) is named as such."""
    data = resolved.path.read_bytes()
    if not looks_pickled(data[:2]):
        raise InvalidInputError(f"{resolved.uri} is not a pickled model: artifact {resolved.artifact!r} of run "
                                f"{resolved.run or '(none)'} starts with {data[:8]!r}; mltrail loads models saved with "
                                "pickle or joblib (uncompressed), and MLflow model folders (an MLmodel file "
                                "and its files)")
    return unpickle(data, resolved.uri)


# the packages whose import name is not their pip name, among those models are made of
PIP_NAMES = {"sklearn": "scikit-learn"}


def needs_module(uri: str, exc: ModuleNotFoundError) -> MltrailError:
    """The error for a model whose library is not installed here, naming what installs it."""
    package = PIP_NAMES.get((exc.name or "").partition(".")[0], exc.name)
    return MltrailError(f"{uri} needs the Python module {exc.name!r}, which is not installed here: pip install "
                        f"{package} (the sample models: pip install -e '.[samples]')")


def unpickle(data: bytes, uri: str) -> Any:
    """The object pickled (by pickle, joblib uncompressed or cloudpickle) in ``data``."""
    try:
        return pickle.loads(data)  # noqa: S301 - a trusted store's artifact, hash checked
    except ModuleNotFoundError as exc:
        raise needs_module(uri, exc) from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise MltrailError(f"{uri} cannot be unpickled here ({type(exc).__name__}: {exc}): "
                           "it was saved by a version of its library this environment does not have, "
                           "or it is damaged") from None
