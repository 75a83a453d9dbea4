"""MLflow's client-side checks of what a script logs, in MLflow's words.

MLflow's client refuses a bad name or value before any store sees it, with sentences that
scripts and tests match on (``Invalid value "apple" for parameter 'value' supplied``); the
shim checks the same things first, so a script's ``except`` and its log read the same.
mltrail's own checks (:mod:`mltrail.storage.layout`) still run after these: a name MLflow
allows and mltrail does not is refused in mltrail's words.
"""

from __future__ import annotations

import json
import numbers
import posixpath
import re
from collections.abc import Iterable
from typing import Any

from ..errors import InvalidInputError, InvalidMetricValueError

# the characters MLflow allows in a param, metric or tag name (off Windows)
_NAME = re.compile(r"[/\w.\- :]*")
_MISSING_KEY = "A key name must be provided."


class _MetricValueError(InvalidMetricValueError):
    """mltrail's error for a metric value that is not a number, carrying MLflow's sentence for
    it (which names the value's place in the call: ``metrics[0].value``)."""

    def __init__(self, key: str, value: object, mlflow_words: str) -> None:
        super().__init__(key, value)
        self.mlflow_words = mlflow_words


def invalid_value(path: str, value: Any, message: str | None = None) -> str:
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return f"Invalid value {shown} for parameter '{path}' supplied" + (f": {message}" if message else ".")


def _at(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def check_name(name: Any, path: str, what: str = "") -> None:
    """A param's, metric's or tag's name, as MLflow checks it."""
    if name is None:
        raise InvalidInputError(invalid_value(path, "" if not what else None,
                                              f"{what} name cannot be None. {_MISSING_KEY}" if what else _MISSING_KEY))
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(invalid_value(
            path, name, "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), "
                        "colon(:) and slashes (/)."))
    normal = posixpath.normpath(name)
    if name and (normal != name or normal == "." or normal.startswith(("..", "/"))):
        raise InvalidInputError(invalid_value(
            path, name, "Names may be treated as files in certain cases, and must not resolve to other names when "
                        f"treated as such. This name would resolve to {posixpath.normpath(name)!r}"))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def check_metric(key: Any, value: Any, timestamp: Any, step: Any, path: str = "") -> None:
    check_name(key, _at(path, "name"), "Metric")
    if value is None:
        raise InvalidInputError(f"Missing value for required parameter '{_at(path, 'value')}'.")
    if not _is_number(value):
        raise _MetricValueError(key, value, invalid_value(_at(path, "value"), value, f"(timestamp={timestamp}). "
                                                          "Please specify value as a valid double (64-bit floating "
                                                          "point)"))
    if not isinstance(timestamp, numbers.Real) or timestamp < 0:
        raise InvalidInputError(invalid_value(_at(path, "timestamp"), timestamp, "metric timestamp must be a "
                                              "nonnegative long (64-bit integer) "))
    if not isinstance(step, numbers.Number):
        raise InvalidInputError(invalid_value(_at(path, "step"), step, "metric step must be a valid long "
                                              "(64-bit integer) "))


def check_batch(metrics: Iterable[Any], params: Iterable[Any], tags: Iterable[Any]) -> None:
    """A ``log_batch``'s entities, each named by its place (``metrics[0].value``), and no param
    key twice."""
    params = list(params)
    for i, metric in enumerate(metrics):
        check_metric(metric.key, metric.value, metric.timestamp, metric.step, f"metrics[{i}]")
    for i, param in enumerate(params):
        check_name(param.key, f"params[{i}].key")
    for i, tag in enumerate(tags):
        check_name(tag.key, f"tags[{i}].key")
    keys = [p.key for p in params]
    twice = [k for i, k in enumerate(keys) if k in keys[:i]]
    if twice:
        raise InvalidInputError(f"Duplicate parameter keys have been submitted: {twice}. Please ensure the request "
                                "contains only one param value per param key.")


def check_experiment_name(name: Any) -> None:
    if name is None or (isinstance(name, str) and not name.strip()):
        raise InvalidInputError(f"Invalid experiment name: '{name}'")
    if not isinstance(name, str):
        raise InvalidInputError(f"Invalid experiment name: {name}. Expects a string.")
