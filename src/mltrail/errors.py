"""Exceptions raised by mltrail.

Every error mltrail raises on purpose derives from :class:`MltrailError`, so a caller
can catch them all in one place; each condition a caller may want to handle has its
own subclass, and its fields carry the offending name and value::

    MltrailError
    ├── InvalidInputError (also ValueError)      bad argument: the caller must fix it
    │   ├── PayloadTooLargeError                 a request bigger than a server takes (413)
    │   ├── InvalidKeyError                      empty, too long or path-like key
    │   ├── InvalidMetricValueError              non-numeric metric value
    │   ├── ParamChangedError                    a param logged twice with two values
    │   ├── AmbiguousRunError                    a run name or ID prefix that several runs have
    │   └── FilterSyntaxError                    a search filter that does not parse
    ├── NotFoundError (also LookupError)         unknown run, experiment, model, phase, file
    ├── AlreadyExistsError                       a model or experiment of that name exists
    ├── WrongStateError                          an operation the current state forbids
    │   └── RunStateError                        ... of a run (logging after its end)
    ├── PermissionDeniedError                    a server's user lacks the level for the action
    ├── BusyError                                a lock held elsewhere was not had in time
    ├── UpstreamError                            a model service or mltrail server failed
    │   └── UpstreamTimeoutError                 ... by not answering in time
    ├── SchemaVersionError                       an event newer than this version reads
    ├── UntrustedTypesError                      a model file (skops) names types no one trusted
    └── StoreCorruptError                        derived tables unreadable: rebuild them

A service maps them to HTTP: invalid input 422, not found 404, already exists and
wrong state 409, too large 413, permission denied 403, busy 503, upstream 502 (a timeout 504).

    SkippedLinesWarning (a UserWarning)          a query's compaction skipped bad lines
"""

from __future__ import annotations


class MltrailError(Exception):
    """Base of every error mltrail raises on purpose."""


class InvalidInputError(MltrailError, ValueError):
    """An argument was wrong; nothing was written."""


class PayloadTooLargeError(InvalidInputError):
    """A request sent to a server was bigger than it takes; nothing was written."""


class InvalidKeyError(InvalidInputError):
    """A param, metric, tag or artifact key is not allowed."""

    def __init__(self, kind: str, key: object, reason: str) -> None:
        self.kind = kind
        self.key = key
        self.reason = reason
        super().__init__(f"invalid {kind} key {key!r}: {reason}")


class InvalidMetricValueError(InvalidInputError):
    """A metric value is not a real number."""

    def __init__(self, key: str, value: object) -> None:
        self.key = key
        self.value = value
        super().__init__(
            f"metric {key!r} got {value!r} ({type(value).__name__}); "
            "metric values must be real numbers (NaN and ±inf are allowed)"
        )


class AmbiguousRunError(InvalidInputError):
    """A run asked for by a name (or an ID prefix) that several runs have: imported runs
    keep MLflow's names, which runs may share. ``candidates`` holds their IDs."""

    SHOWN = 10  # IDs listed in the message; ``candidates`` has them all

    def __init__(self, ref: str, candidates: list[str]) -> None:
        self.ref = ref
        self.candidates = sorted(candidates)
        shown = ", ".join(self.candidates[:self.SHOWN])
        more = f" and {len(self.candidates) - self.SHOWN} more" if len(self.candidates) > self.SHOWN else ""
        super().__init__(f"{ref!r} names {len(self.candidates)} runs ({shown}{more}): give one's run ID "
                         "(or more of it)")


class ParamChangedError(InvalidInputError):
    """A param already logged on this run was logged again with another value."""

    def __init__(self, key: str, old: str, new: str) -> None:
        self.key = key
        self.old = old
        self.new = new
        super().__init__(
            f"param {key!r} is already {old!r} on this run and cannot change to {new!r}; "
            "log it under another key or start a new run"
        )


class FilterSyntaxError(InvalidInputError):
    """A search filter or order_by clause does not parse."""

    def __init__(self, text: str, position: int | None, reason: str) -> None:
        self.text = text
        self.position = position
        self.reason = reason
        if position is None:
            super().__init__(f"invalid filter: {reason}\n  {text}")
        else:
            caret = " " * position + "^"
            super().__init__(f"invalid filter at position {position}: {reason}\n  {text}\n  {caret}")


class NotFoundError(MltrailError, LookupError):
    """A run, experiment or file that was asked for does not exist. ``hint`` lists what
    does (the names it might have meant): a server leaves it out for a user who may not
    read everything, so an error never names what the user may not see."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # pickled with its hint apart
        return type(self), (self.message, self.hint)


class AlreadyExistsError(MltrailError):
    """Something created by name (a registered model, an A/B experiment) exists already."""


class WrongStateError(MltrailError):
    """The object's current state does not allow the operation (starting a stopped
    experiment, archiving a version an alias points at)."""


class RunStateError(WrongStateError):
    """The run is in a state that does not allow the operation (e.g. logging after end)."""


class RunStopRequested(MltrailError):
    """Someone asked this run to stop (``mltrail stop``, the dashboard); raised at the next
    ``log_*`` call of a run started with ``stop="raise"``. The run ends KILLED."""


class PermissionDeniedError(MltrailError):
    """The user may see this but not do that to it (a server with users: 403)."""


class BusyError(MltrailError):
    """A lock another process holds was not had in time; nothing was written: try again."""


class NotOnServerError(MltrailError):
    """A call a store behind ``mltrail server`` does not offer (changing feature
    definitions, managing users, purging runs...): the message says where to run it (on
    the server's machine, with ``mltrail.Store(PATH)``). Every part of both kinds of store
    has the same calls (:mod:`mltrail.contract`); this is the one error for what a server
    leaves to its own machine."""


class UpstreamError(MltrailError):
    """A service mltrail calls failed (a model service behind the router, ``mltrail
    server`` behind a remote store): connection refused, a 5xx answer."""


class UpstreamTimeoutError(UpstreamError):
    """A service the router forwards to did not answer in time."""


class SchemaVersionError(MltrailError):
    """An event was written by a newer mltrail than the one reading it."""


class UntrustedTypesError(MltrailError):
    """A model saved with skops names types that neither skops nor its ``MLmodel`` trusts,
    nor ``MLTRAIL_SKOPS_TRUSTED_TYPES``: loading them could run their code, so nothing was
    loaded. ``types`` are their names, as that setting takes them."""

    def __init__(self, uri: str, types: list[str]) -> None:
        self.uri = uri
        self.types = types
        names = ",".join(types)
        super().__init__(f"{uri} was saved with skops and names types no one trusted: {', '.join(types)}. "
                         "Loading them could run their code, so nothing was loaded. If you trust them, "
                         f"set MLTRAIL_SKOPS_TRUSTED_TYPES={names} (comma-separated; or save the model "
                         f"with mlflow.sklearn.save_model(..., skops_trusted_types=[...]))")

    def __reduce__(self) -> tuple[type, tuple[str, list[str]]]:
        return type(self), (self.uri, self.types)


class StoreCorruptError(MltrailError):
    """The derived tables cannot be read; `mltrail compact --rebuild` recreates them."""


class SkippedLinesWarning(UserWarning):
    """Compaction skipped lines it could not read (corrupt, torn, or from a newer mltrail)."""
