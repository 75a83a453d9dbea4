"""Event schemas of access control on a server's store: users, groups, grants.

Each event is one immutable file, ``access/<id>.jsonl``, named by its time-sortable ID,
so the history of who could see and change what is in git beside the data, and two
branches merge as the union. Token hashes are secrets and never events: they live in
``.secrets/`` (see :mod:`mltrail.access.control`), which git never sees.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter

from .eventfiles import FileEvent

KINDS = ("experiment", "model", "ab", "feature_view")  # what a grant is on
LEVELS = ("read", "edit", "manage")  # each includes the ones before it
PRINCIPAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")  # a user or a group

Kind = Literal["experiment", "model", "ab", "feature_view"]
Level = Literal["read", "edit", "manage"]
Principal = Annotated[str, Field(pattern=PRINCIPAL_NAME.pattern)]


class AccessEvent(FileEvent):
    reason: str | None = None


class UserAdded(AccessEvent):
    type: Literal["user_added"] = "user_added"
    name: Principal
    admin: bool = False


class UserRemoved(AccessEvent):
    type: Literal["user_removed"] = "user_removed"
    name: Principal


class MemberAdded(AccessEvent):
    type: Literal["member_added"] = "member_added"
    group: Principal
    member: Principal


class MemberRemoved(AccessEvent):
    type: Literal["member_removed"] = "member_removed"
    group: Principal
    member: Principal


class Granted(AccessEvent):
    type: Literal["granted"] = "granted"
    kind: Kind
    name: str
    to: Principal
    level: Level


class Revoked(AccessEvent):
    type: Literal["revoked"] = "revoked"
    kind: Kind
    name: str
    to: Principal


AnyAccessEvent = Annotated[Union[UserAdded, UserRemoved, MemberAdded, MemberRemoved, Granted, Revoked],
                           Field(discriminator="type")]
ACCESS_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyAccessEvent)
