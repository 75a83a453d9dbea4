"""``mlflow.artifacts``, as MLflow's: a run's artifact, or a folder of them, as local files.

mltrail keeps artifacts by their content's hash (no folder of the run's holds them), so
``download_artifacts`` copies them out under their names, into ``dst_path`` or a new
temporary folder, and answers the local path of what was asked for, as MLflow's does.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..errors import InvalidInputError, NotFoundError
from .exceptions import raises_mlflow_exceptions

__all__ = ["download_artifacts"]


@raises_mlflow_exceptions
def download_artifacts(artifact_uri: str | None = None, run_id: str | None = None, artifact_path: str | None = None,
                       dst_path: str | None = None, tracking_uri: str | None = None) -> str:
    """The local path of a run's artifact (``run_id`` and ``artifact_path``, or a
    ``runs:/<run id>/<path>`` URI); a folder's path holds every artifact under it."""
    from . import _store

    if artifact_uri is not None:
        if run_id is not None or artifact_path is not None:
            raise InvalidInputError("give artifact_uri, or run_id and artifact_path, not both")
        if not artifact_uri.startswith("runs:/"):
            raise InvalidInputError(f"mltrail.mlflow downloads runs:/<run id>/<path> URIs, not {artifact_uri!r}")
        run_id, _, artifact_path = artifact_uri.removeprefix("runs:/").partition("/")
    if not run_id:
        raise InvalidInputError("download_artifacts needs a run_id (or a runs:/ URI)")
    store = _store()
    path = (artifact_path or "").strip("/")
    names = [str(n) for n in store.get_run(run_id)["artifacts"]["path"]]
    chosen = [n for n in names if n == path or not path or n.startswith(f"{path}/")]
    if not chosen:
        raise NotFoundError(f"run {run_id} has no artifact {path!r}")
    target = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="mltrail-artifacts-"))
    for name in chosen:
        copy = target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.artifact_path(run_id, name), copy)
    return str(target / path) if path else str(target)
