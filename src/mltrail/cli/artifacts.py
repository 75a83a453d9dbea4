"""``mltrail artifacts``: a run's artifacts, listed and fetched (from a folder or a server)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from ..errors import AlreadyExistsError
from ..store import Store
from .context import pass_store, store_option
from .output import print_table, say


@click.group()
@store_option
def artifacts() -> None:
    """A run's artifacts: list, get."""


@artifacts.command("list")
@click.argument("run")
@pass_store
def artifacts_list(store: Store, run: str) -> None:
    """Every artifact of RUN (ID, ID prefix or unique name): name, size, where it is kept."""
    table = store.get_run(run)["artifacts"]
    print_table(["artifact", "bytes", "sha256", "kept"],
                ([r["path"], f"{int(r['size']):,}", r["sha256"][:16] + "…", "git" if r["in_git"] else "blobs-large/"]
                 for r in table.to_dict("records")))


@artifacts.command("get")
@click.argument("run")
@click.argument("name")
@click.option("-o", "--output", default=None,
              help="Where to write it (default: its file name here; '-' for standard output).")
@click.option("--force", is_flag=True, help="Replace a file already there.")
@pass_store
def artifacts_get(store: Store, run: str, name: str, output: str | None, force: bool) -> None:
    """Copy artifact NAME of RUN out of the store."""
    source = store.artifact_path(run, name)
    if output == "-":
        with open(source, "rb") as handle:
            shutil.copyfileobj(handle, sys.stdout.buffer)
        return
    target = Path(output) if output else Path(Path(name).name)
    if target.exists() and not force:
        raise AlreadyExistsError(f"{target} exists: --force replaces it, -o chooses another path")
    shutil.copyfile(source, target)
    say(f"wrote {target} ({target.stat().st_size:,} bytes)")
