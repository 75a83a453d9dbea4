"""What every command shares: one ``--store`` resolution and one error boundary.

``--store`` may be given to ``mltrail`` itself, to a command group or to a command
(``mltrail --store S models history churn``, ``mltrail models --store S history churn``
and ``mltrail models history churn --store S`` are the same); the one nearest the
command wins, then ``$MLTRAIL_DIR``, then ``./mltrail_runs``. The store may be a
server's URL (``--store http://host:5050``), with ``--token`` (else ``$MLTRAIL_TOKEN``),
which is accepted in the same places. A mistake the library reports (any
:class:`~mltrail.MltrailError`) becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.text import Text

from ..config import STORE_DIR, is_url
from ..errors import InvalidInputError, MltrailError
from ..store import Store
from .output import err

_STORE_KEY = "mltrail.store"
_TOKEN_KEY = "mltrail.token"


def _remember(key: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:  # parents are parsed first: the innermost one wins
            ctx.meta[key] = value
    return remember


def store_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--store`` and ``--token`` on a command or a group."""
    command = click.option(
        "--token", default=None, expose_value=False, is_eager=True, callback=_remember(_TOKEN_KEY),
        help="A server's token when --store is a URL (else $MLTRAIL_TOKEN).")(command)
    return click.option(
        "--store", type=click.Path(file_okay=False), default=None, expose_value=False,
        is_eager=True, callback=_remember(_STORE_KEY),
        help="Store root, or a server's URL (else $MLTRAIL_DIR, else ./mltrail_runs).")(command)


def pass_store(command: Callable[..., Any]) -> Callable[..., Any]:
    """Accept ``--store`` here too and call the command with the resolved Store first."""
    @store_option
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(current_store(), *args, **kwargs)
    return wrapper


def current_store() -> Store:
    """The Store of this invocation (one per invocation, shared by group and command)."""
    ctx = click.get_current_context()
    store = ctx.meta.get("mltrail.store_object")
    if store is None:
        root = ctx.meta.get(_STORE_KEY)
        token = ctx.meta.get(_TOKEN_KEY)
        if is_url(root if root is not None else STORE_DIR.get()):
            store = Store(root, token=token)
        elif token is not None:
            raise InvalidInputError("--token is for a store that is a server's URL (--store http://...)")
        else:
            store = Store(root)
        ctx.meta["mltrail.store_object"] = store
    return store


class MltrailGroup(click.Group):
    """The root group: a library error anywhere below is one clear line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MltrailError as exc:
            err.print(Text.assemble(("error:", "bold red"), f" {exc}"), highlight=False)  # never markup
            sys.exit(1)
