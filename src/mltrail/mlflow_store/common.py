"""What the translation, the plugin and the artifact repository share: the URI scheme of
an mltrail store's artifacts, and mltrail's errors as MLflow's.

It imports no other module of this package: MLflow's own import loads the plugin and the
artifact repository through its entry points, which may happen while the translation is
still being imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2

from ..errors import (
    AlreadyExistsError,
    InvalidInputError,
    MltrailError,
    NotFoundError,
    PermissionDeniedError,
    WrongStateError,
)

ARTIFACTS_SCHEME = "mltrail-artifacts"
MODELS_PATH = "models"  # mltrail-artifacts:/models/<model ID>: a logged model's files, not a run's

# A refusal for a thing's state (a run deleted already, a version archived) is MLflow's
# INVALID_PARAMETER_VALUE, as its stores answer "must be in the 'active' state": its
# INVALID_STATE is an HTTP 500, which MLflow's REST client retries for ~4 minutes first.
_ERROR_CODE = [
    (NotFoundError, databricks_pb2.RESOURCE_DOES_NOT_EXIST),
    (AlreadyExistsError, databricks_pb2.RESOURCE_ALREADY_EXISTS),
    (PermissionDeniedError, databricks_pb2.PERMISSION_DENIED),
    (InvalidInputError, databricks_pb2.INVALID_PARAMETER_VALUE),
    (WrongStateError, databricks_pb2.INVALID_PARAMETER_VALUE),
]


@contextmanager
def mlflow_errors() -> Iterator[None]:
    """mltrail's errors as MLflow's, with the error code MLflow's client and REST API expect."""
    try:
        yield
    except MlflowException:
        raise
    except MltrailError as exc:
        code = next((c for kind, c in _ERROR_CODE if isinstance(exc, kind)), databricks_pb2.INTERNAL_ERROR)
        raise MlflowException(str(exc), error_code=code) from exc
