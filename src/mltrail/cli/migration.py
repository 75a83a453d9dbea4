"""``mltrail import mlflow``: bring an MLflow store's runs and models into the store."""

from __future__ import annotations

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..store import Store
from .context import pass_store
from .output import err, note, out, print_json


@click.group(name="import")
def import_group() -> None:
    """Bring runs and models from another tracker (MLflow) into the store."""


@import_group.command()
@click.argument("source")
@click.option("--experiment", "-e", "experiments", multiple=True,
              help="Import only this MLflow experiment (by name; repeat for several).")
@click.option("--include-deleted", is_flag=True, help="Also import deleted runs and experiments (as deleted runs).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_store
def mlflow(store: Store, source: str, experiments: tuple[str, ...], include_deleted: bool, as_json: bool) -> None:
    """Import the MLflow store SOURCE: an mlruns folder (read from its files), or, with
    mlflow installed, a tracking URI (sqlite:///mlflow.db, http://host:5000). Experiments,
    runs with every metric point, params, tags, artifacts, dataset inputs, and registered
    models with their versions and aliases. Run it again at any time: only what is new
    is added."""
    with Progress(TextColumn("importing runs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("import", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = store.import_mlflow(source, list(experiments) or None, include_deleted=include_deleted,
                                      progress=progress)
    if as_json:
        print_json(summary.to_dict())
        return
    first, *rest = summary.text().splitlines()
    out.print(first, highlight=False, soft_wrap=True)  # one line, however narrow the terminal: it is data too
    for line in rest:
        note(line)
