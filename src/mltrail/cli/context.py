"""What every command shares: one ``--store`` resolution and one error boundary.

``--store`` may be given to ``mltrail`` itself, to a command group or to a command
(``mltrail --store S models history churn``, ``mltrail models --store S history churn``
and ``mltrail models history churn --store S`` are the same); the one nearest the
command wins, then ``$MLTRAIL_DIR``, then ``./mltrail_runs``. A mistake the library
reports (any :class:`~mltrail.MltrailError`) becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.text import Text

from ..errors import MltrailError
from ..store import Store
from .output import err

_STORE_KEY = "mltrail.store"


def _remember_store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:  # parents are parsed first: the innermost --store wins
        ctx.meta[_STORE_KEY] = value


store_option = click.option(
    "--store", type=click.Path(file_okay=False), default=None, expose_value=False,
    is_eager=True, callback=_remember_store,
    help="Store root (else $MLTRAIL_DIR, else ./mltrail_runs).")


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
        store = ctx.meta["mltrail.store_object"] = Store(ctx.meta.get(_STORE_KEY))
    return store


class MltrailGroup(click.Group):
    """The root group: a library error anywhere below is one clear line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MltrailError as exc:
            err.print(Text.assemble(("error:", "bold red"), f" {exc}"), highlight=False)  # never markup
            sys.exit(1)
