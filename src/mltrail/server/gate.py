"""Who is calling, and what they may do: the server's half of :mod:`mltrail.access`.

On a store without users (issue 15's set-up: one shared token, or none) every caller
may do everything. Once the store has a user, each call carries a user's token, and the
routes ask the request's :class:`Gate` before they read or change anything:

- an object the user may not read does not exist for them: a direct read is a 404 with
  no list of the names it might have meant, and lists, searches and counts leave it out;
- an object they may read but not change at the needed level is a 403;
- whoever creates an experiment, A/B experiment or model through the server gets
  ``manage`` on it, as an event in ``access/``;
- the ``by`` of every event written is the user, whatever the request says.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request

from ..access.control import RANK, User
from ..errors import NotFoundError, PermissionDeniedError
from ..store import Store

_WHAT = {"experiment": "experiment", "model": "model", "ab": "A/B experiment", "feature_view": "feature view"}


class Gate:
    """One request's user (None: a store without users) and their levels."""

    def __init__(self, store: Store, user: User | None, default: str | None) -> None:
        self.store = store
        self.user = user
        self.default = default
        self._experiments: list[str] | None = None

    def level(self, kind: str, name: str) -> str | None:
        if self.user is None:
            return "manage"
        return self.store.access.level(self.user, kind, name, self.default)

    def require(self, kind: str, name: str, level: str, action: str = "do that") -> None:
        """NotFoundError when the user may not read the object (it does not exist for
        them), PermissionDeniedError when their level is below ``level``."""
        have = self.level(kind, name)
        if not RANK[have]:
            raise NotFoundError(f"no {_WHAT[kind]} {name!r}")
        if RANK[have] < RANK[level]:
            raise PermissionDeniedError(f"{self.user.name if self.user else 'you'} may {have} "  # (user is set here)
                                        f"{_WHAT[kind]} {name!r}: to {action} needs {level}")

    def readable(self, kind: str, names: Iterable[str]) -> list[str]:
        return [n for n in names if RANK[self.level(kind, n)]]

    def sees_everything(self) -> bool:
        """The caller may read every object: no users, an admin, or a default of read."""
        return self.user is None or self.user.admin or self.default is not None

    def may_read_views(self, views: Iterable[str]) -> bool:
        """A training set (or a view's materialization) is read by who may read each view
        it was made from; one made from no view has no grant to go by: only those who may
        read everything see it."""
        wanted = sorted(set(views))
        if not wanted:
            return self.sees_everything()
        return len(self.readable("feature_view", wanted)) == len(wanted)

    def may_read_training_set(self, event: Any) -> bool:
        """A saved training set (``dataset_saved``): by the views its feature refs
        (``view:feature``) name, as :meth:`may_read_views` says."""
        return self.may_read_views(ref.split(":")[0] for ref in event.features)

    def created(self, kind: str, name: str) -> None:
        """The caller made this object: they manage it (recorded as a grant event)."""
        if self.user is not None and not self.user.admin:
            self.store.access.grant(kind, name, self.user.name, "manage", reason="created it", by=self.user.name)

    def by(self, given: str | None) -> str | None:
        """Who an event says acted: the caller, when the store has users."""
        return self.user.name if self.user is not None else given

    # -- runs follow their experiment ---------------------------------------------------

    def experiments(self) -> list[str] | None:
        """The tracking experiments the caller may read (None: all of them); worked out
        once per request (a search, a blob read and a compaction each ask more than once)."""
        if self.sees_everything():
            return None
        if self._experiments is None:
            self._experiments = self.readable("experiment", self.store.experiments()["experiment"])
        return self._experiments

    def run(self, ref: str, level: str = "read", action: str = "do that") -> str:
        """The ID of a run the caller may reach at ``level`` (its experiment's)."""
        run_id = self.store.tracking.resolve_run(ref, within=self.experiments())
        self.require_run(run_id, self.store.tracking.experiment_of(run_id), level, action)
        return run_id

    def require_run(self, run_id: str, experiment: str, level: str, action: str = "do that") -> None:
        """As :meth:`require` for a run of ``experiment``, found by its ID: one the caller
        may not read is "no run", its experiment unnamed (the ID alone must not tell it)."""
        if not RANK[self.level("experiment", experiment)]:
            raise NotFoundError(f"no run {run_id}")
        self.require("experiment", experiment, level, action)

    def admin(self, action: str) -> None:
        """PermissionDeniedError unless the caller is an admin (or the store has no users)."""
        if self.user is not None and not self.user.admin:
            raise PermissionDeniedError(f"{action} is for an admin")


def gate(request: Request) -> Gate:
    """The FastAPI dependency: the request's gate (its user set by the app's middleware)."""
    state: Any = request.app.state
    return Gate(state.store, getattr(request.state, "user", None), state.default_permission)
