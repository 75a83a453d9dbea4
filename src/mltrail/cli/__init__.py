"""The ``mltrail`` command: a thin front end over the library.

One module per command group; :mod:`.context` resolves ``--store`` (given anywhere on
the command line, else ``$MLTRAIL_DIR``, else ``./mltrail_runs``) and turns a library
error into one line and exit code 1; :mod:`.output` prints every table and ``--json``.
"""

from __future__ import annotations

import click

from .ab import ab
from .access import access, groups, users
from .artifacts import artifacts
from .context import MltrailGroup, store_option
from .curation import delete, gc, notes, rename, restore, tag
from .features import features
from .migration import import_group
from .models import models
from .reports import report
from .runs import compact, diff, experiments, reproduce, runs, show, stop, ui
from .serve import serve
from .server import server, sync


@click.group(cls=MltrailGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mltrail")
@store_option
def main() -> None:
    """mltrail: experiments, A/B tests, models and features as plain files in git."""


for command in (runs, experiments, show, diff, compact, reproduce, stop, ui, ab, models, features, serve, server,
                sync, users, groups, access, artifacts, rename, notes, tag, delete, restore, gc,
                import_group, report):
    main.add_command(command)

__all__ = ["main"]
