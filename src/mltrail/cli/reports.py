"""``mltrail report``: the store's reports (Markdown under ``reports/``) and their HTML."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import click

from ..storage.atomic import write_atomic
from ..store import Store
from .context import current_store, pass_store, store_option
from .output import print_json, print_table, say


@click.group(invoke_without_command=True)
@store_option
def report() -> None:
    """Reports: Markdown files with blocks drawn from live data (alone: list them)."""
    if click.get_current_context().invoked_subcommand is None:
        _print_reports(current_store(), as_json=False)


def _print_reports(store: Store, as_json: bool) -> None:
    frame = store.reports.list()
    if as_json:
        print_json(frame)
        return
    print_table(["report", "title", "author", "updated"],
                ([r["name"], r["title"], r["author"] or "", r["updated"].strftime("%Y-%m-%d %H:%M")]
                 for r in frame.to_dict("records")))


@report.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_store
def report_list(store: Store, as_json: bool) -> None:
    """Every report: name, title, author, when it changed."""
    _print_reports(store, as_json)


@report.command("show")
@click.argument("name")
@pass_store
def report_show(store: Store, name: str) -> None:
    """Print a report's Markdown, as written."""
    click.echo(store.reports.get(name).text, nl=False)


@report.command("render")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The HTML file to write (default: NAME.html).")
@pass_store
def report_render(store: Store, name: str, output: Path | None) -> None:
    """Draw a report with the store's data now into one HTML file (charts as SVG, no script,
    no request: it opens offline), to send to people without the dashboard."""
    from ..reports.html import to_html
    from ..reports.render import Problem, render

    found = store.reports.get(name)
    pieces = render(store, found.text)
    target = output or Path(f"{name}.html")
    write_atomic(target, to_html(pieces, found.title, source=f"{store.root} reports/{name}.md").encode("utf-8"),
                 sync_folder=False)
    problems = [p for p in pieces if isinstance(p, Problem)]
    for problem in problems:
        click.echo(f"warning: {problem.text}", err=True)
    say(f"wrote {target} ({target.stat().st_size:,} bytes" + (f", {len(problems)} block(s) not drawn)"
                                                               if problems else ")"))


@report.command("save")
@click.argument("name")
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@pass_store
def report_save(store: Store, name: str, source: TextIO) -> None:
    """Save SOURCE (a Markdown file, or - for standard input) as report NAME: on a server,
    only its author (or an admin) replaces one."""
    saved = store.reports.save(name, source.read())
    say(f"saved report {saved.name} ({saved.title})")


@report.command("delete")
@click.argument("name")
@pass_store
def report_delete(store: Store, name: str) -> None:
    """Delete a report (a folder's git history keeps it)."""
    store.reports.delete(name)
    say(f"deleted report {name}")


