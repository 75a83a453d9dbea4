"""``mltrail features``: the feature store."""

from __future__ import annotations

import click

from ..store import Store
from .context import current_store, pass_store, store_option
from .output import age, count, print_table, say


@click.group(invoke_without_command=True)
@store_option
def features() -> None:
    """The feature store: list and materialize (alone: list entities and views)."""
    if click.get_current_context().invoked_subcommand is None:
        _print_features(current_store())


def _print_features(store: Store) -> None:
    fs = store.features
    print_table(["entity", "join keys", "description"],
                ([r["entity"], r["join_keys"], r["description"]] for r in fs.entities().to_dict("records")),
                title="entities")
    print_table(["view", "entity", "features", "source", "ttl", "materialized until", "source rows",
                 "online keys", "freshness"],
                ([r["view"], r["entity"], r["features"], r["source"], r["ttl"], r["materialized_until"],
                  count(r["source_rows"]), count(r["online_keys"]), age(r["freshness"])]
                 for r in fs.list().to_dict("records")),
                title="feature views")


@features.command("list")
@pass_store
def features_list(store: Store) -> None:
    """Entities and feature views: schema, source, ttl, last materialization, freshness."""
    _print_features(store)


@features.command("materialize")
@click.option("--start", default=None, help="Window start (event time; default: where the last run ended).")
@click.option("--end", default=None, help="Window end (default: now).")
@click.option("--view", "views", multiple=True, help="Only these views (repeatable).")
@pass_store
def features_materialize(store: Store, start: str | None, end: str | None, views: tuple[str, ...]) -> None:
    """Load the views' newest rows per key into the online store."""
    report = store.features.materialize(start=start, end=end, views=list(views) or None)
    for row in report.to_dict("records"):
        say(f"{row['view']}: {row['rows']:,} rows in the window, {row['keys']:,} keys, "
            f"{row['seconds']:.2f} s")
