"""``mltrail.mlflow.exceptions``, as MLflow's ``mlflow.exceptions``: a script's
``except mlflow.exceptions.MlflowException`` catches every error the shim raises.

Each error the shim raises is both the mltrail error it always was and an
:class:`MlflowException` with MLflow's ``error_code``::

    MltrailError
    └── MlflowException                      error_code, message, as MLflow's
        ├── UnsupportedCallError (also AttributeError)   a call the shim does not have
        └── Mlflow<Name>  (also <Name>, for each MltrailError subclass)
            e.g. MlflowNotFoundError: NotFoundError and MlflowException,
                 error_code "RESOURCE_DOES_NOT_EXIST"

``except NotFoundError`` and ``except MlflowException`` both catch a missing run.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from .. import errors
from ..errors import MltrailError

__all__ = ["MlflowException", "UnsupportedCallError", "as_mlflow_exception", "raises_mlflow_exceptions"]

# MLflow's names for its error codes and the HTTP status its server answers with each
# (mlflow/exceptions.py, ERROR_CODE_TO_HTTP_STATUS); a code not listed there is a 500.
HTTP_STATUS = {
    "INTERNAL_ERROR": 500, "INVALID_STATE": 500, "DATA_LOSS": 500, "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504, "REQUEST_LIMIT_EXCEEDED": 429,
    "CANCELLED": 499, "RESOURCE_EXHAUSTED": 429, "ABORTED": 409, "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409, "NOT_FOUND": 404, "ENDPOINT_NOT_FOUND": 404, "RESOURCE_DOES_NOT_EXIST": 404,
    "PERMISSION_DENIED": 403, "CUSTOMER_UNAUTHORIZED": 401, "UNAUTHENTICATED": 401, "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400, "INVALID_PARAMETER_VALUE": 400,
}
ERROR_CODES = frozenset(HTTP_STATUS) | {"FEATURE_DISABLED", "IO_ERROR", "MALFORMED_REQUEST"}

# The code of each mltrail condition, the first of an error's classes (its MRO) listed wins.
_CODE_OF: dict[type[MltrailError], str] = {
    errors.InvalidInputError: "INVALID_PARAMETER_VALUE",
    errors.NotFoundError: "RESOURCE_DOES_NOT_EXIST",
    errors.AlreadyExistsError: "RESOURCE_ALREADY_EXISTS",
    errors.WrongStateError: "INVALID_STATE",
    errors.PermissionDeniedError: "PERMISSION_DENIED",
    errors.BusyError: "TEMPORARILY_UNAVAILABLE",
    errors.UpstreamTimeoutError: "DEADLINE_EXCEEDED",
    errors.UpstreamError: "TEMPORARILY_UNAVAILABLE",
    errors.NotOnServerError: "BAD_REQUEST",
    errors.RunStopRequested: "ABORTED",
}


class MlflowException(MltrailError):
    """MLflow's ``MlflowException``: ``message``, ``error_code`` (MLflow's name for it,
    ``"INVALID_PARAMETER_VALUE"``, ``"RESOURCE_DOES_NOT_EXIST"``...; ``"INTERNAL_ERROR"``
    by default, as MLflow's) and ``serialize_as_json()``.

    >>> raise MlflowException("no run 'x'", error_code="RESOURCE_DOES_NOT_EXIST")  # doctest: +SKIP
    """

    error_code: str = "INTERNAL_ERROR"

    def __init__(self, message: Any, error_code: str = "INTERNAL_ERROR", **kwargs: Any) -> None:
        # as MLflow's: a code it does not know is an internal error, not a second error
        self.error_code = error_code if error_code in ERROR_CODES else "INTERNAL_ERROR"
        self.message = str(message)
        self.json_kwargs = kwargs
        super().__init__(self.message)

    @classmethod
    def invalid_parameter_value(cls, message: Any, **kwargs: Any) -> MlflowException:
        return cls(message, error_code="INVALID_PARAMETER_VALUE", **kwargs)

    def serialize_as_json(self) -> str:
        return json.dumps({"error_code": self.error_code, "message": self.message,
                           **getattr(self, "json_kwargs", {})})

    def get_http_status_code(self) -> int:
        return HTTP_STATUS.get(self.error_code, 500)


class UnsupportedCallError(MlflowException, AttributeError):
    """An MLflow call ``mltrail.mlflow`` does not have (an AttributeError, so that
    ``hasattr(mlflow, name)`` stays False)."""

    def __init__(self, message: Any) -> None:
        super().__init__(message, error_code="NOT_IMPLEMENTED")


def _mlflow_class(cls: type[MltrailError]) -> type[MlflowException]:
    """``Mlflow<Name>``: ``cls`` and :class:`MlflowException` at once, with the code of its
    condition; one class for each, kept in this module so that it pickles by name."""
    name = f"Mlflow{cls.__name__}"
    known = globals().get(name)
    if isinstance(known, type) and issubclass(known, cls) and issubclass(known, MlflowException):
        return known
    code = next((_CODE_OF[base] for base in cls.__mro__ if base in _CODE_OF), "INTERNAL_ERROR")
    made = type(name, (cls, MlflowException), {"error_code": code, "__module__": __name__,
                                               "__doc__": f"{cls.__name__}, as an MlflowException ({code})."})
    globals()[name] = made
    return made


# one for each error mltrail raises, made at import (an error unpickled in another process finds its class)
for _error in [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, MltrailError)]:
    if _error is not MltrailError:
        _mlflow_class(_error)


def _mlflow_words(exc: MltrailError) -> str | None:
    """MLflow's own message for a condition, where scripts and tests match on its words
    (MLflow's stores raise these exact sentences), else None: mltrail's message stands."""
    words = getattr(exc, "mlflow_words", None)  # (the shim's checks carry MLflow's sentence: .validation)
    if isinstance(words, str):
        return words
    if isinstance(exc, errors.ParamChangedError):
        return (f"Changing param values is not allowed. Param with key='{exc.key}' was already logged with "
                f"value='{exc.old}'. Attempted logging new value '{exc.new}'.")
    if isinstance(exc, errors.InvalidMetricValueError):
        return (f"Invalid value {exc.value!r} for metric '{exc.key}' supplied: Please specify value as a valid "
                "double (64-bit floating point)")
    return None


def as_mlflow_exception(exc: MltrailError) -> MlflowException:
    """The same error (class, fields, traceback) as an :class:`MlflowException`, with
    MLflow's message where MLflow has words of its own for it (:func:`_mlflow_words`)."""
    if isinstance(exc, MlflowException):
        return exc
    cls = _mlflow_class(type(exc))
    words = _mlflow_words(exc)
    # not through __init__: each error class has its own fields; the error is copied as it is
    translated = cls.__new__(cls, *((words,) if words is not None else exc.args))
    translated.__dict__.update(vars(exc))
    translated.__dict__.setdefault("message", str(exc) if words is None else words)
    translated.json_kwargs = {}
    translated.__cause__, translated.__context__ = exc.__cause__, exc.__context__
    translated.__suppress_context__ = exc.__suppress_context__
    return translated.with_traceback(exc.__traceback__)


P = ParamSpec("P")
R = TypeVar("R")


def raises_mlflow_exceptions(call: Callable[P, R]) -> Callable[P, R]:
    """A shim call whose mltrail errors reach the script as :class:`MlflowException`\\ s."""

    @functools.wraps(call)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return call(*args, **kwargs)
        except MltrailError as exc:
            if isinstance(exc, MlflowException):
                raise
            translated = as_mlflow_exception(exc)
        raise translated  # outside the except: the error is not its own context

    return wrapper
