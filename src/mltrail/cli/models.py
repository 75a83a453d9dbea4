"""``mltrail models``: the model registry."""

from __future__ import annotations

import click

from ..errors import NotFoundError
from ..query.cells import present
from ..store import Store
from .context import current_store, pass_store, store_option
from .output import count, note, pairs, print_json, print_table, say, version


@click.group(invoke_without_command=True)
@store_option
def models() -> None:
    """The model registry: list, create, register, show, alias, history, archive and
    promote (alone: list the models)."""
    if click.get_current_context().invoked_subcommand is None:
        _print_models(current_store(), as_json=False)


def _print_models(store: Store, as_json: bool) -> None:
    frame = store.registry.list()
    if as_json:
        print_json(frame)
        return
    print_table(["model", "versions", "latest", "aliases", "description"],
                ([r["model"], count(r["versions"]), version(r["latest"]), r["aliases"], r["description"]]
                 for r in frame.to_dict("records")))


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_store
def models_list(store: Store, as_json: bool) -> None:
    """Every registered model with its versions and aliases."""
    _print_models(store, as_json)


@models.command("create")
@click.argument("name")
@click.option("--description", default=None)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE (repeatable).")
@click.option("--by", default=None, help="Who creates it (default: you).")
@pass_store
def models_create(store: Store, name: str, description: str | None, tags: tuple[str, ...], by: str | None) -> None:
    """Create a registered model (names are unique ignoring case)."""
    store.registry.create(name, description, pairs(tags), by=by)
    say(f"created model {name}")


@models.command("register")
@click.argument("name")
@click.option("--run", "run_ref", required=True, help="The run (ID, prefix or unique name).")
@click.option("--artifact", default="model.pkl", show_default=True)
@click.option("--description", default=None)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE (repeatable).")
@click.option("--create", is_flag=True, help="Create the model first if it does not exist.")
@click.option("--by", default=None, help="Who registers it (default: you).")
@pass_store
def models_register(store: Store, name: str, run_ref: str, artifact: str, description: str | None,
                    tags: tuple[str, ...], create: bool, by: str | None) -> None:
    """Register a run's artifact as the model's next version."""
    if not store.registry.exists(name):
        if not create:
            raise NotFoundError(f"no model {name!r} in the registry of {store.root}: create it with "
                                f"`mltrail models create {name}`, or add --create here")
        store.registry.create(name, by=by)
    registered = store.registry.register(name, run_ref, artifact, description, pairs(tags), by=by)
    _, sha256 = registered.main_file()
    say(f"{name} v{registered.number}: run {registered.run_name or registered.run} {artifact} "
        f"(sha256 {sha256[:12]}), {registered.uri}")


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_store
def models_show(store: Store, name: str, as_json: bool) -> None:
    """A model's versions, with their runs, aliases and final metrics."""
    versions = store.registry.versions(name)
    if as_json:
        print_json(versions)
        return
    metric_columns = [c for c in versions.columns if c.startswith("metrics.")][:12]
    rows = versions.to_dict("records")
    print_table(["version", "run", "artifact", "aliases", "state", "created", "by",
                 *(c.removeprefix("metrics.") for c in metric_columns)],
                ([version(r["version"]), present(r["run_name"]) or (present(r["run"]) or "")[:10],
                  present(r["artifact"]) or "(no files)", r["aliases"], "archived" if r["archived"] else "live",
                  r["created"], r["by"], *(r[c] for c in metric_columns)] for r in rows))
    for r in rows:  # (a version imported from MLflow without its files: why, under the table)
        if present(r["missing"]):
            note(f"v{r['version']} has no files: {r['missing']}")


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version_ref", metavar="VERSION")
@click.option("--reason", default=None)
@click.option("--by", default=None, help="Who moves it (default: you).")
@pass_store
def models_alias(store: Store, name: str, alias: str, version_ref: str, reason: str | None, by: str | None) -> None:
    """Point ALIAS at VERSION (3 or v3), moving it if it points elsewhere."""
    try:
        previous: int | None = store.registry.get(name, alias=alias).number
    except NotFoundError:
        previous = None
    moved = store.registry.set_alias(name, alias, version_ref, reason=reason, by=by)
    origin = f" (was v{previous})" if previous not in (None, moved.number) else ""
    say(f"{name}@{alias} -> v{moved.number}{origin}")


@models.command("history")
@click.argument("name")
@click.argument("alias", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_store
def models_history(store: Store, name: str, alias: str | None, as_json: bool) -> None:
    """Every move of an alias (of all aliases without ALIAS): when, from, to, who, why."""
    history = store.registry.alias_history(name, alias)
    if as_json:
        print_json(history)
        return
    print_table(["time", "alias", "from", "to", "by", "reason"],
                ([r["time"], r["alias"], version(r["from_version"]), version(r["to_version"], "(deleted)"),
                  r["by"], r["reason"]] for r in history.to_dict("records")))


@models.command("archive")
@click.argument("name")
@click.argument("version_ref", metavar="VERSION")
@click.option("--reason", default=None)
@click.option("--by", default=None, help="Who archives it (default: you).")
@pass_store
def models_archive(store: Store, name: str, version_ref: str, reason: str | None, by: str | None) -> None:
    """Retire a version (latest and new aliases skip it)."""
    archived = store.registry.archive(name, version_ref, reason=reason, by=by)
    say(f"{name} v{archived.number} archived")


@models.command("promote")
@click.argument("experiment")
@click.option("--alias", default="production", show_default=True)
@click.option("--force", is_flag=True, help="Promote even after a sample-ratio mismatch.")
@click.option("--by", default=None, help="Who promotes it (default: you).")
@pass_store
def models_promote(store: Store, experiment: str, alias: str, force: bool, by: str | None) -> None:
    """Move ALIAS to the version that won a stopped A/B experiment."""
    promoted = store.promote_winner(experiment, alias=alias, force=force, by=by)
    say(f"{promoted.model}@{alias} -> v{promoted.number} (won {experiment})")
