"""How the CLI prints: tables whose cells all go through one text conversion, and JSON.

Tables print to stdout; notes, progress and errors to stderr, so ``mltrail runs --json
| jq`` and ``mltrail runs > runs.txt`` get only the data.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
import orjson
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..query.cells import cell_text, is_missing, json_ready, records

out = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)

_STATUS_COLOURS = {"FINISHED": "green", "RUNNING": "cyan", "FAILED": "red", "KILLED": "yellow",
                   "CRASHED": "magenta"}


class Column:
    """A table column: its header and how it is laid out."""

    def __init__(self, header: str, right: bool = False, max_width: int | None = None) -> None:
        self.header = header
        self.right = right
        self.max_width = max_width


def print_table(columns: Sequence[str | Column], rows: Iterable[Sequence[Any]],
                title: str | None = None) -> None:
    """Print a table; every cell is text by :func:`~mltrail.query.cells.cell_text` (a
    missing value is blank). Cells are never read as rich markup (a param value such as
    ``[/data/train.csv]`` is text); a styled cell is a :class:`rich.text.Text`."""
    table = Table(title=title, header_style="bold", title_justify="left" if title else "center")
    for column in columns:
        column = column if isinstance(column, Column) else Column(column)
        table.add_column(Text(column.header), justify="right" if column.right else "left",
                         no_wrap=column.max_width is not None, overflow="ellipsis",
                         max_width=column.max_width)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(cell if isinstance(cell, str) else cell_text(cell))
                        for cell in row))
    out.print(table)


def print_json(payload: Any) -> None:
    """Print any value as indented JSON (times ISO, NaN null, frames as lists of rows)."""
    if isinstance(payload, pd.DataFrame):
        payload = records(payload)
    click.echo(orjson.dumps(json_ready(payload), option=orjson.OPT_INDENT_2).decode())


def say(text: str) -> None:
    """A line of plain output (no markup, no highlighting)."""
    out.print(text, markup=False, highlight=False)


def note(text: str) -> None:
    """A line on stderr: counts, hints, what was skipped."""
    err.print(text, markup=False, highlight=False)


def status(value: Any) -> Text:
    text = cell_text(value)
    return Text(text, style=_STATUS_COLOURS.get(text, "white"))


def duration(start: Any, end: Any) -> str:
    if is_missing(start) or is_missing(end):
        return ""
    seconds = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}min"


def age(delta: Any) -> str:
    if is_missing(delta):
        return ""
    seconds = pd.Timedelta(delta).total_seconds()
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} old"
    return f"{seconds:.0f} s old"


def version(number: Any, missing: str = "") -> str:
    """``v3`` for a version number; ``missing`` when there is none."""
    return missing if is_missing(number) else f"v{int(number)}"


def count(value: Any) -> str:
    return "" if is_missing(value) else f"{int(value):,}"


def pairs(items: tuple[str, ...], what: str = "KEY=VALUE") -> dict[str, str]:
    """``KEY=VALUE`` options as a dict; a malformed one is a usage error naming it."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not {what}")
        parsed[key] = value
    return parsed
