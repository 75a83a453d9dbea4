"""``mltrail users``, ``mltrail groups`` and ``mltrail access``: who may use a server's
store. Users and groups are made on the server's machine (``--store PATH``); grants
from anywhere a manager of the object is (``--store URL`` too)."""

from __future__ import annotations

import click

from ..errors import InvalidInputError
from ..storage.access_events import KINDS, LEVELS
from ..store import Store
from .context import current_store, pass_store, store_option
from .output import out, print_table, say


def _folder(store: Store) -> Store:
    if not isinstance(store, Store):
        raise InvalidInputError("users and groups are made on the server's machine: --store PATH (its folder)")
    return store


@click.group(invoke_without_command=True)
@store_option
def users() -> None:
    """A server's users: add, list, token, remove (alone: list). A store with users asks
    every call to its server for a user's token."""
    if click.get_current_context().invoked_subcommand is None:
        _print_users(current_store())


def _print_users(store: Store) -> None:
    frame = _folder(store).access.users()
    print_table(["user", "admin", "groups", "added", "by"],
                ([r["user"], "admin" if r["admin"] else "", r["groups"], str(r["added"])[:19], r["by"] or ""]
                 for r in frame.to_dict("records")))


@users.command("list")
@pass_store
def users_list(store: Store) -> None:
    """Every user, whether an admin, and their groups."""
    _print_users(store)


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="An admin sees and manages everything.")
@pass_store
def users_add(store: Store, name: str, admin: bool) -> None:
    """Create a user and print their API token, once (only its hash is kept)."""
    _print_token(f"added {'admin ' if admin else ''}user {name}; their token (shown once, give it to them):",
                 _folder(store).access.add_user(name, admin))


@users.command("token")
@click.argument("name")
@pass_store
def users_token(store: Store, name: str) -> None:
    """A new token for a user (the old one stops working); printed once."""
    _print_token(f"a new token for {name} (the old one no longer works):", _folder(store).access.rotate_token(name))


def _print_token(said: str, token: str) -> None:
    """The token alone on the last line of the output (for scripts: ``| tail -1``)."""
    say(said)
    out.print(token, highlight=False, soft_wrap=True)


@users.command("remove")
@click.argument("name")
@pass_store
def users_remove(store: Store, name: str) -> None:
    """Remove a user: their token stops working; their grants stay in the history."""
    _folder(store).access.remove_user(name)
    say(f"removed user {name}")


@click.group(invoke_without_command=True)
@store_option
def groups() -> None:
    """Groups of users, to grant to many at once: add, remove-member, list (alone: list)."""
    if click.get_current_context().invoked_subcommand is None:
        _print_groups(current_store())


def _print_groups(store: Store) -> None:
    frame = _folder(store).access.groups()
    print_table(["group", "members"], ([r["group"], r["members"]] for r in frame.to_dict("records")))


@groups.command("list")
@pass_store
def groups_list(store: Store) -> None:
    """Every group and its members."""
    _print_groups(store)


@groups.command("add")
@click.argument("group")
@click.option("--member", "members", multiple=True, required=True, help="A user (repeatable).")
@pass_store
def groups_add(store: Store, group: str, members: tuple[str, ...]) -> None:
    """Add users to a group (made on first use)."""
    _folder(store).access.add_members(group, list(members))
    say(f"group {group}: added {', '.join(members)}")


@groups.command("remove-member")
@click.argument("group")
@click.argument("member")
@pass_store
def groups_remove_member(store: Store, group: str, member: str) -> None:
    """Take a user out of a group."""
    _folder(store).access.remove_member(group, member)
    say(f"group {group}: removed {member}")


@click.group()
@store_option
def access() -> None:
    """Who may read, edit or manage an experiment, a model, an A/B experiment or a
    feature view: grant, revoke, show."""


_kind = click.argument("kind", type=click.Choice(KINDS))


@access.command("grant")
@_kind
@click.argument("name")
@click.option("--to", required=True, help="A user or a group.")
@click.option("--level", type=click.Choice(LEVELS), required=True)
@click.option("--reason", default=None, help="Why: kept in the store's history of access.")
@pass_store
def access_grant(store: Store, kind: str, name: str, to: str, level: str, reason: str | None) -> None:
    """Give a user or a group a level on an object (replacing what they had)."""
    store.access.grant(kind, name, to, level, reason)
    say(f"{to} may now {level} {kind} {name}")


@access.command("revoke")
@_kind
@click.argument("name")
@click.option("--to", required=True, help="A user or a group.")
@click.option("--reason", default=None)
@pass_store
def access_revoke(store: Store, kind: str, name: str, to: str, reason: str | None) -> None:
    """Take back a user's or a group's grant on an object."""
    store.access.revoke(kind, name, to, reason)
    say(f"{to} no longer has a grant on {kind} {name}")


@access.command("show")
@_kind
@click.argument("name")
@pass_store
def access_show(store: Store, kind: str, name: str) -> None:
    """Who has which level on an object, and how (directly, a group, an admin)."""
    frame = store.access.show(kind, name)
    print_table(["user", "level", "via"], ([r["user"], r["level"], r["via"]] for r in frame.to_dict("records")))
