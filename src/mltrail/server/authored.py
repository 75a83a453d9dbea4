"""What the routes of a team's named files share (saved views, reports): any user may add
one, only its author (the first to save it) or an admin changes or deletes it, and the check
and the write happen under one lock, so two users saving one new name take turns and only
one becomes its author."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter
from starlette.concurrency import run_in_threadpool

from ..errors import PermissionDeniedError
from ..storage.locks import held
from ..store import Store
from .gate import Gate

T = TypeVar("T")


class By(BaseModel):
    """A deletion's body: who asks (a service account's user it acts for, else the caller)."""

    model_config = ConfigDict(extra="forbid")
    by: str | None = None


BY = TypeAdapter(By)


def require_author(g: Gate, what: str, author: str | None) -> None:
    """PermissionDeniedError unless the caller wrote ``what`` first or is an admin (a file
    whose author cannot be read is an admin's to change)."""
    if g.user is not None and not g.user.admin and (author is None or author != g.user.name):
        raise PermissionDeniedError(f"{what} is {author or 'someone else'}'s: only its author or an admin may "
                                    "change or delete it (save yours under another name)")


async def locked(store: Store, lock: str, what: str, work: Callable[[], T]) -> T:
    """``work()`` off the event loop, under the store's lock ``lock`` (``what`` names it
    when the lock is not had in time)."""
    def run() -> T:
        with held(store.layout.lock_file(lock), what):
            return work()
    return await run_in_threadpool(run)
