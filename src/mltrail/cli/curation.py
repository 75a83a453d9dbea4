"""Curating runs: ``rename``, ``notes``, ``tag``, ``delete``, ``restore`` and ``gc``.

Each change is an edit file beside the run's experiment (see
:mod:`mltrail.tracking.curation`), so it commits and merges like a run; ``gc`` is the
only command that removes files, and only those of deleted runs.
"""

from __future__ import annotations

from typing import IO

import click

from ..errors import InvalidInputError
from ..store import Store
from .context import pass_store
from .output import note, out

_BY = click.option("--by", help="Who makes the change (default: $MLTRAIL_USER, else your login).")


@click.command()
@click.argument("run")
@click.argument("name")
@_BY
@pass_store
def rename(store: Store, run: str, name: str, by: str | None) -> None:
    """Rename a run (ID, ID prefix or unique name)."""
    run_id = store.set_run_name(run, name, by=by)
    out.print(f"run {run_id} is now {name!r}", highlight=False)


@click.command()
@click.argument("run")
@click.argument("text", required=False)
@click.option("--file", "-F", "source", type=click.File("r", encoding="utf-8"),
              help="Read the notes from a file ('-' for standard input).")
@_BY
@pass_store
def notes(store: Store, run: str, text: str | None, source: IO[str] | None, by: str | None) -> None:
    """Set a run's notes (Markdown, shown as its description); an empty TEXT clears them."""
    if (text is None) == (source is None):
        raise InvalidInputError("give the notes as TEXT or with --file, not both or neither")
    content = source.read() if source is not None else text or ""  # (text is given: checked above)
    run_id = store.set_run_notes(run, content, by=by)
    out.print(f"notes of run {run_id} {'set' if content else 'cleared'}", highlight=False)


@click.command()
@click.argument("run")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--delete", "remove", is_flag=True, help="Remove the tag instead.")
@_BY
@pass_store
def tag(store: Store, run: str, key: str, value: str | None, remove: bool, by: str | None) -> None:
    """Set a tag of a run (or remove it with --delete)."""
    if remove == (value is not None):
        raise InvalidInputError("give a VALUE to set the tag, or --delete to remove it")
    if remove:
        run_id = store.delete_tag(run, key, by=by)
        out.print(f"tag {key!r} removed from run {run_id}", highlight=False)
    else:
        run_id = store.set_tag(run, key, value, by=by)
        out.print(f"run {run_id}: {key}={value}", highlight=False)


@click.command()
@click.argument("runs", nargs=-1, required=True)
@_BY
@pass_store
def delete(store: Store, runs: tuple[str, ...], by: str | None) -> None:
    """Delete runs: hidden from searches and the dashboard, kept on disk until `mltrail
    gc`; `mltrail restore` brings them back."""
    for run in runs:
        out.print(f"deleted run {store.delete_run(run, by=by)}", highlight=False)


@click.command()
@click.argument("runs", nargs=-1, required=True)
@_BY
@pass_store
def restore(store: Store, runs: tuple[str, ...], by: str | None) -> None:
    """Bring deleted runs back."""
    for run in runs:
        out.print(f"restored run {store.restore_run(run, by=by)}", highlight=False)


@click.command()
@click.argument("runs", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@pass_store
def gc(store: Store, runs: tuple[str, ...], dry_run: bool) -> None:
    """Purge deleted runs (all, or those given): their files, and the blobs no other
    run or model names. Run it where the store's folder is; commit the removals."""
    result = store.gc(list(runs) or None, dry_run=dry_run)
    out.print(result.summary(), highlight=False)
    for path in result.files + result.blobs + result.uploads:
        note(f"{'would remove' if dry_run else 'removed'} {path}")
