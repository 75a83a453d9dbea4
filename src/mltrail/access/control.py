"""Who may read and change what on a server's store: ``store.access``.

A store opened as a folder has no users: the file system's permissions rule it. A server
whose store has users (``mltrail users add``) asks each call for a user's token and
shows each user only what they may read. Users, groups and grants are events in
``access/`` (in git: the history of access is kept with the data); token hashes are
secrets, in ``.secrets/tokens.json``, which a ``.gitignore`` of its own keeps out of git.

Levels: ``read`` < ``edit`` (log runs into an experiment, register versions of a model,
log exposures of an A/B experiment) < ``manage`` (grant, move aliases, start and stop an
A/B experiment, archive). A user's level on an object is the highest of the grants to
the user and to the groups they are in; else the server's default (none, or read);
admins manage everything. Whoever creates an object through the server gets ``manage``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd
from pydantic import ValidationError

from ..config import current_user
from ..errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ..storage import access_events as ev
from ..storage.atomic import write_atomic
from ..storage.eventfiles import EventFolder, write_event_file
from ..storage.ids import new_id
from ..storage.layout import Layout, stat_signature
from ..storage.locks import held

RANK = {None: 0, "read": 1, "edit": 2, "manage": 3}
TOKEN_PREFIX = "mlt_"


@dataclass(frozen=True)
class User:
    """Who a token belongs to."""

    name: str
    admin: bool = False
    groups: frozenset[str] = frozenset()


@dataclass
class AccessState:
    """The replay of the access events."""

    users: dict[str, ev.UserAdded] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)
    grants: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (kind, name) -> {to: level}
    had_users: bool = False  # once a store has had a user, every call needs one, even with none left

    def groups_of(self, user: str) -> frozenset[str]:
        return frozenset(g for g, members in self.groups.items() if user in members)


def replay(events: list[ev.AccessEvent]) -> AccessState:
    state = AccessState()
    for event in events:
        if isinstance(event, ev.UserAdded):
            state.users[event.name] = event
            state.had_users = True
        elif isinstance(event, ev.UserRemoved):
            # whatever the user had goes with them: a later user of that name starts with nothing
            state.users.pop(event.name, None)
            for members in state.groups.values():
                members.discard(event.name)
            for grants in state.grants.values():
                grants.pop(event.name, None)
        elif isinstance(event, ev.MemberAdded):
            state.groups.setdefault(event.group, set()).add(event.member)
        elif isinstance(event, ev.MemberRemoved):
            state.groups.get(event.group, set()).discard(event.member)
        elif isinstance(event, ev.Granted):
            state.grants.setdefault((event.kind, event.name), {})[event.to] = event.level
        elif isinstance(event, ev.Revoked):
            state.grants.get((event.kind, event.name), {}).pop(event.to, None)
    return state


class AccessControl:
    """Users, groups and grants of one store."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.root = layout.root / "access"
        self.secrets = layout.root / ".secrets"
        self._folder = EventFolder(self.root, ev.ACCESS_EVENT_ADAPTER, "access")
        self._hashes: dict[str, str] = {}
        self._hashes_seen: tuple[int, int] | None = None
        self._replayed: tuple[Any, AccessState] = (None, AccessState())

    # -- reading ---------------------------------------------------------------------

    def state(self) -> AccessState:
        """The replay of the events, kept until a new event file appears (a server asks
        for every object of every call)."""
        events = self._folder.events()
        seen = (len(events), events[-1].id if events else None)
        if seen != self._replayed[0]:
            self._replayed = (seen, replay(events))
        return self._replayed[1]

    def enabled(self) -> bool:
        """True once the store has had a user: a server then asks every call for a user's
        token. Removing the last user does not open the store to anyone: no token works
        until an admin adds a user again (``mltrail users add NAME --admin`` on its machine)."""
        return self.state().had_users

    def authenticate(self, token: str) -> User | None:
        """The user a token belongs to (None for an unknown, rotated or removed token)."""
        digest = _hash(token)
        state = self.state()
        for name, known in self._token_hashes().items():
            if hmac.compare_digest(known, digest) and name in state.users:
                return User(name, state.users[name].admin, state.groups_of(name))
        return None

    def user(self, name: str) -> User:
        state = self.state()
        if name not in state.users:
            raise NotFoundError(f"no user {name!r}")
        return User(name, state.users[name].admin, state.groups_of(name))

    def level(self, user: User, kind: str, name: str, default: str | None = None) -> str | None:
        """The user's level on an object: their best grant, directly or through a group;
        else ``default``. Admins manage everything."""
        if user.admin:
            return "manage"
        grants = self.state().grants.get((kind, name), {})
        best = default
        for principal in (user.name, *user.groups):
            level = grants.get(principal)
            if RANK[level] > RANK[best]:
                best = level
        return best

    def whoami(self) -> dict[str, Any]:
        """The caller, as a server would answer it: a folder opened directly has no user
        to be (its file system's permissions rule it), so the caller acts as an admin."""
        return {"user": None, "admin": True, "groups": [], "users": self.enabled()}

    def my_level(self, kind: str, name: str) -> str | None:
        """The caller's level on an object: on a folder opened directly, ``manage``."""
        _check_kind(kind)
        return "manage"

    def users(self) -> pd.DataFrame:
        state = self.state()
        rows = [{"user": name, "admin": added.admin, "groups": ", ".join(sorted(state.groups_of(name))),
                 "added": pd.Timestamp(added.ts, unit="s", tz="UTC"), "by": added.by}
                for name, added in sorted(state.users.items())]
        return pd.DataFrame(rows, columns=["user", "admin", "groups", "added", "by"])

    def groups(self) -> pd.DataFrame:
        rows = [{"group": group, "members": ", ".join(sorted(members))}
                for group, members in sorted(self.state().groups.items()) if members]
        return pd.DataFrame(rows, columns=["group", "members"])

    def show(self, kind: str, name: str) -> pd.DataFrame:
        """Who has which level on an object, and how: directly, or as a member of a group."""
        _check_kind(kind)
        state = self.state()
        rows = []
        for principal, level in sorted(state.grants.get((kind, name), {}).items()):
            if principal in state.users:
                rows.append({"user": principal, "level": level, "via": "direct"})
            for member in sorted(state.groups.get(principal, ())):
                rows.append({"user": member, "level": level, "via": f"group {principal}"})
        rows += [{"user": u, "level": "manage", "via": "admin"} for u, added in sorted(state.users.items()) if added.admin]
        return pd.DataFrame(rows, columns=["user", "level", "via"])

    def history(self) -> pd.DataFrame:
        """Every access event, oldest first: who did what to whom, when and why."""
        rows = [{"time": pd.Timestamp(e.ts, unit="s", tz="UTC"), "event": e.type, "by": e.by,
                 **{k: v for k, v in e.model_dump().items() if k not in ("v", "type", "ts", "id", "by")}}
                for e in self._folder.events()]
        return pd.DataFrame(rows)

    # -- users and groups --------------------------------------------------------------

    def add_user(self, name: str, admin: bool = False, *, by: str | None = None) -> str:
        """Create a user; their API token (only its hash is kept: show it to them once)."""
        with self._lock():
            state = self.state()
            if name in state.users:
                raise AlreadyExistsError(f"user {name!r} already exists (a new token: mltrail users token {name})")
            if name in state.groups:
                raise AlreadyExistsError(f"{name!r} is a group: users and groups share one set of names")
            self._write(ev.UserAdded, name=name, admin=admin, by=by)
            return self._new_token(name)

    def rotate_token(self, name: str) -> str:
        """A new token for a user; the old one stops working at once."""
        with self._lock():
            self.user(name)
            return self._new_token(name)

    def remove_user(self, name: str, *, by: str | None = None) -> None:
        with self._lock():
            self.user(name)
            self._write(ev.UserRemoved, name=name, by=by)
            hashes = self._token_hashes()
            hashes.pop(name, None)
            self._save_hashes(hashes)

    def add_members(self, group: str, members: list[str], *, by: str | None = None) -> None:
        with self._lock():
            state = self.state()
            if group in state.users:
                raise AlreadyExistsError(f"{group!r} is a user: users and groups share one set of names")
            unknown = [m for m in members if m not in state.users]
            if unknown or not members:
                raise NotFoundError(f"no user {unknown[0]!r}" if unknown else "a group needs a member")
            for member in members:
                if member not in state.groups.get(group, set()):
                    self._write(ev.MemberAdded, group=group, member=member, by=by)

    def remove_member(self, group: str, member: str, *, by: str | None = None) -> None:
        with self._lock():
            if member not in self.state().groups.get(group, set()):
                raise NotFoundError(f"{member!r} is not a member of group {group!r}")
            self._write(ev.MemberRemoved, group=group, member=member, by=by)

    # -- grants --------------------------------------------------------------------------

    def grant(self, kind: str, name: str, to: str, level: str, reason: str | None = None, *,
              by: str | None = None) -> None:
        """Give ``to`` (a user or a group) ``level`` on an object (replacing what it had)."""
        _check_kind(kind)
        if level not in ev.LEVELS:
            raise InvalidInputError(f"a level is one of {', '.join(ev.LEVELS)}, not {level!r}")
        with self._lock():
            state = self.state()
            if to not in state.users and to not in state.groups:
                raise NotFoundError(f"no user or group {to!r}")
            self._write(ev.Granted, kind=kind, name=name, to=to, level=level, reason=reason, by=by)

    def revoke(self, kind: str, name: str, to: str, reason: str | None = None, *, by: str | None = None) -> None:
        _check_kind(kind)
        with self._lock():
            if to not in self.state().grants.get((kind, name), {}):
                raise NotFoundError(f"{to!r} has no grant on {kind} {name!r}")
            self._write(ev.Revoked, kind=kind, name=name, to=to, reason=reason, by=by)

    # -- files ---------------------------------------------------------------------------

    def _write(self, model: type[ev.AccessEvent], **fields: Any) -> None:
        fields["by"] = fields.get("by") or current_user()
        try:
            event = model(ts=time.time(), id=new_id(), **fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidInputError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        write_event_file(self.root, event.id, event)

    def _lock(self) -> Any:
        return held(self.layout.lock_file("access"), "the store's users and grants")

    def _new_token(self, name: str) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        hashes = self._token_hashes()
        hashes[name] = _hash(token)
        self._save_hashes(hashes)
        return token

    def _token_hashes(self) -> dict[str, str]:
        path = self.secrets / "tokens.json"
        seen = stat_signature(path)
        if seen != self._hashes_seen:
            self._hashes = orjson.loads(path.read_bytes()) if seen is not None else {}
            self._hashes_seen = seen
        return dict(self._hashes)

    def _save_hashes(self, hashes: dict[str, str]) -> None:
        self.secrets.mkdir(parents=True, exist_ok=True)
        ignore = self.secrets / ".gitignore"
        if not ignore.exists():  # whatever the store's own .gitignore says (an old store's lacks it)
            ignore.write_text("# Written by mltrail: secrets never go into git.\n*\n", encoding="utf-8")
        path = self.secrets / "tokens.json"
        write_atomic(path, orjson.dumps(hashes, option=orjson.OPT_SORT_KEYS), mode=0o600)


def _hash(token: str) -> str:
    # tokens are 256 random bits: a plain sha256 cannot be brute-forced (passwords would need a slow hash)
    return hashlib.sha256(token.encode()).hexdigest()


def _check_kind(kind: str) -> None:
    if kind not in ev.KINDS:
        raise InvalidInputError(f"a grant is on one of {', '.join(ev.KINDS)}, not {kind!r}")
