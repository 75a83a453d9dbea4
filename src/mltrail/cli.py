"""The ``mltrail`` command: a thin front end over the library.

Every command takes ``--store PATH`` (else ``$MLTRAIL_DIR``, else ``./mltrail_runs``).
A user mistake prints one clear message on stderr and exits 1; no traceback.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .errors import MltrailError, NotFoundError
from .tracking.reproduce import reproduce_script
from .tracking.store import Store

_out = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 240)
_err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)
_MAX_TABLE_KEYS = 12  # params/metrics shown as columns in `mltrail runs`
_MAX_CELL_WIDTH = 16


def _store_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --store and turn mltrail errors into one line and exit code 1."""
    @click.option("--store", "store_path", type=click.Path(file_okay=False), default=None,
                  envvar="MLTRAIL_DIR", show_envvar=True,
                  help="Store root (default ./mltrail_runs).")
    @functools.wraps(command)
    def wrapper(store_path: str | None, **kwargs: Any) -> Any:
        try:
            return command(Store(store_path), **kwargs)
        except MltrailError as exc:
            _err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            sys.exit(1)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mltrail")
def main() -> None:
    """mltrail: experiment tracking as plain files in git."""


@main.command()
@click.option("--experiment", "-e", multiple=True, help="Only these experiments (repeatable).")
@click.option("--filter", "-f", "filter_", default=None,
              help="MLflow filter, e.g. \"metrics.f1 > 0.8 and params.C = '1.0'\".")
@click.option("--order-by", "-o", multiple=True, help="e.g. 'metrics.f1 DESC' (repeatable).")
@click.option("--max-results", "-n", type=int, default=None, help="At most this many runs.")
@click.option("--all-columns", is_flag=True, help="Also params equal in every listed run.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of runs.")
@_store_option
def runs(store: Store, experiment: tuple[str, ...], filter_: str | None, order_by: tuple[str, ...],
         max_results: int | None, all_columns: bool, as_json: bool) -> None:
    """List runs, newest first (params that differ between them, latest metrics)."""
    frame = store.search_runs(list(experiment) or None, filter_, list(order_by) or None, max_results)
    if as_json:
        click.echo(orjson.dumps(_records(frame), option=orjson.OPT_INDENT_2).decode())
        return
    if frame.empty:
        _err.print("no runs match")
        return
    params = [c for c in frame.columns if c.startswith("params.")
              and (all_columns or len(frame) == 1 or frame[c].nunique(dropna=False) > 1)]
    metrics = [c for c in frame.columns if c.startswith("metrics.")]
    keys = (params + metrics)[:_MAX_TABLE_KEYS]
    table = Table(header_style="bold")
    for column in ("run", "experiment", "name", "status", "start", "duration"):
        table.add_column(column, no_wrap=True)
    for column in keys:
        table.add_column(column.split(".", 1)[1], justify="right" if column in metrics else "left",
                         no_wrap=True, overflow="ellipsis", max_width=_MAX_CELL_WIDTH)
    for row in frame.to_dict("records"):
        table.add_row(row["run_id"][:10], row["experiment"], row["run_name"], _status(row["status"]),
                      _time(row["start_time"]), _duration(row["start_time"], row["end_time"]),
                      *(_cell(row[k]) for k in keys))
    _out.print(table)
    hidden = len(params) + len(metrics) - len(keys)
    note = f"{len(frame)} runs" + (f"; {hidden} more columns in --json" if hidden > 0 else "")
    _err.print(note, highlight=False)


@main.command()
@_store_option
def experiments(store: Store) -> None:
    """List experiments with their descriptions and run counts."""
    table = Table(header_style="bold")
    for column in ("experiment", "runs", "last start", "description"):
        table.add_column(column)
    for row in store.experiments().to_dict("records"):
        table.add_row(row["experiment"], str(row["runs"]), _time(row["last_start"]),
                      row["description"] or "")
    _out.print(table)


@main.command()
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_store_option
def show(store: Store, run: str, as_json: bool) -> None:
    """Everything about one run (ID, ID prefix or unique name)."""
    details = store.get_run(run)
    if as_json:
        payload = {
            "run": _plain(details["run"]),
            "params": _records(details["params"]),
            "metrics": _records(details["metrics"]),
            "tags": details["tags"],
            "artifacts": _records(details["artifacts"]),
            "datasets": _records(details["datasets"]),
        }
        click.echo(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
        return
    info = details["run"]
    _out.print(f"[bold]{info['run_name']}[/]  {info['run_id']}  {_status(info['status'])}")
    _out.print(f"experiment  {info['experiment']}   (run #{info['run_seq']})")
    if info.get("description"):
        _out.print(f"description {info['description']}")
    _out.print(f"started     {_time(info['start_time'])}   duration "
               f"{_duration(info['start_time'], info['end_time'])}")
    if info.get("error"):
        _out.print(f"[red]error[/]\n{info['error']}")
    params = details["params"]
    if len(params):
        table = Table(title="params", header_style="bold")
        for column in ("group", "key", "value"):
            table.add_column(column)
        for row in params.sort_values(["group", "key"], na_position="first").to_dict("records"):
            table.add_row(row["group"] or "", row["key"], row["value"])
        _out.print(table)
    metrics = details["metrics"]
    if len(metrics):
        table = Table(title="metrics", header_style="bold")
        for column in ("key", "latest", "step", "best", "min", "max", "points"):
            table.add_column(column, justify="left" if column == "key" else "right")
        for row in metrics.to_dict("records"):
            table.add_row(row["key"], _number(row["value"]), str(row["step"]),
                          _cell(row["best_value"]), _cell(row["min"]), _cell(row["max"]),
                          str(row["count"]))
        _out.print(table)
    if details["tags"]:
        _out.print("tags        " + ", ".join(f"{k}={v}" for k, v in sorted(details["tags"].items())))
    for row in details["artifacts"].to_dict("records"):
        where = "" if row["in_git"] else " (not in git)"
        _out.print(f"artifact    {row['path']}  {row['size']:,} bytes  sha256 {row['sha256'][:12]}{where}")
    for row in details["datasets"].to_dict("records"):
        shape = f"  {row['rows']:,} rows" if row["rows"] is not None and not pd.isna(row["rows"]) else ""
        _out.print(f"dataset     {row['name']}: {row['path']}{shape}  sha256 {row['sha256'][:12]}")
    if info.get("git_commit"):
        dirty = " (uncommitted changes)" if info.get("git_dirty") else ""
        _out.print(f"git         {info['git_commit'][:12]} on {info.get('git_branch') or '?'}{dirty}")
    if info.get("command"):
        _out.print(f"command     {info['command']}")
    if info.get("python"):
        _out.print(f"environment python {info['python']} on {info.get('platform')}, "
                   f"{info.get('user')}@{info.get('host')}")


@main.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--all", "show_all", is_flag=True, help="Show equal values too.")
@_store_option
def diff(store: Store, run_a: str, run_b: str, show_all: bool) -> None:
    """Params and final metrics of two runs side by side; differences marked."""
    a, b = store.get_run(run_a), store.get_run(run_b)
    table = Table(header_style="bold")
    table.add_column("")
    table.add_column("key")
    table.add_column(f"{a['run']['run_name']} ({a['run']['run_id'][:10]})")
    table.add_column(f"{b['run']['run_name']} ({b['run']['run_id'][:10]})")
    shown = 0
    for kind, column in (("params", "value"), ("metrics", "value")):
        left = dict(zip(a[kind]["key"], a[kind][column]))
        right = dict(zip(b[kind]["key"], b[kind][column]))
        for key in sorted(set(left) | set(right)):
            lv, rv = left.get(key), right.get(key)
            differs = _cell(lv) != _cell(rv)
            if differs or show_all:
                table.add_row("[yellow]≠[/]" if differs else "", f"{kind}.{key}",
                              _cell(lv, "—"), _cell(rv, "—"))
                shown += 1
    if shown:
        _out.print(table)
    else:
        _out.print("no differences in params or final metrics")


@main.command()
@click.option("--rebuild", is_flag=True, help="Rebuild every table from the events alone.")
@_store_option
def compact(store: Store, rebuild: bool) -> None:
    """Bring the Parquet tables up to date with the event files."""
    with Progress(TextColumn("compacting"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                  TimeRemainingColumn(), console=_err, transient=True,
                  disable=not _err.is_terminal) as bar:
        task = bar.add_task("compact", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = store.compact(rebuild=rebuild, progress=progress)
    _out.print(result.summary(), highlight=False)
    for bad in result.bad_lines[:20]:
        _err.print(f"skipped {bad}", highlight=False, markup=False)
    if result.lines_skipped > 20:
        _err.print(f"... and {result.lines_skipped - 20} more skipped lines")


@main.command()
@click.argument("run")
@_store_option
def reproduce(store: Store, run: str) -> None:
    """A shell script that checks out the run's commit, applies its uncommitted diff and
    reruns its command."""
    click.echo(reproduce_script(store, run))


@main.command()
@click.option("--port", type=int, default=8501, show_default=True, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@_store_option
def ui(store: Store, port: int, host: str) -> None:
    """Open the dashboard (Streamlit) on the store."""
    store.compact()  # fails clearly on a missing store, and warms the tables
    app = app_entrypoint()
    env = {**os.environ, "MLTRAIL_DIR": str(store.root)}
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
               "--server.address", host, "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
    _err.print(f"mltrail dashboard on http://{host}:{port} for {store.root}", highlight=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, env)  # become the server: signals reach it directly


@main.group()
def ab() -> None:
    """A/B experiments: planning (and, next, lifecycle and results)."""


@ab.command("power")
@click.option("--baseline", type=float, help="Conversion KPI: the control's rate, e.g. 0.10.")
@click.option("--std", type=float, help="Continuous KPI: its standard deviation.")
@click.option("--mean", type=float, help="Continuous KPI: its mean (for a relative MDE).")
@click.option("--mde", type=float, help="Minimum detectable effect (absolute unless --relative).")
@click.option("--relative", is_flag=True, help="The MDE is a share of the baseline.")
@click.option("--effect-size", type=float, help="Or a standardised effect size (Cohen's d).")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--power", "power_", type=float, default=0.8, show_default=True)
@click.option("--split", type=float, default=0.5, show_default=True,
              help="Share of units in the treatment arm (0.1 for a 90/10 split).")
@click.option("--daily-units", type=float, help="Eligible units a day, for the duration.")
@click.option("--coverage", type=float, default=1.0, show_default=True,
              help="Share of eligible units that enter the experiment.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ab_power(baseline: float | None, std: float | None, mean: float | None, mde: float | None,
             relative: bool, effect_size: float | None, alpha: float, power_: float, split: float,
             daily_units: float | None, coverage: float, as_json: bool) -> None:
    """Minimum units per arm (and days) to detect an effect."""
    from .ab import power as planning

    try:
        if not 0 < split < 1:
            raise MltrailError(f"--split must be in (0, 1), not {split}")
        ratio = split / (1 - split)
        if effect_size is not None:
            size = planning.sample_size(effect_size, alpha, power_, ratio)
        elif baseline is not None and mde is not None:
            size = planning.sample_size_conversion(baseline, mde, relative, alpha, power_, ratio)
        elif std is not None and mde is not None:
            size = planning.sample_size_continuous(std, mde, mean, relative, alpha, power_, ratio)
        else:
            raise MltrailError("give --effect-size, or --baseline with --mde (conversion), "
                               "or --std with --mde (continuous)")
        days = size.duration_days(daily_units, coverage) if daily_units else None
    except MltrailError as exc:
        _err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    report = {"effect_size": size.effect_size, "alpha": alpha, "power": power_,
              "control": size.control, "treatment": size.treatment, "total": size.total,
              "exact_control": size.exact_control, "exact_treatment": size.exact_treatment,
              "days": days}
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    _out.print(f"effect size {size.effect_size:.4f} at alpha {alpha}, power {power_}:", highlight=False)
    _out.print(f"  control   {size.control:>12,} units  ({size.exact_control:,.2f})", highlight=False)
    _out.print(f"  treatment {size.treatment:>12,} units  ({size.exact_treatment:,.2f})", highlight=False)
    _out.print(f"  total     {size.total:>12,} units", highlight=False)
    if days is not None:
        _out.print(f"  duration  {days:>12,} days at {daily_units:,.0f} units/day, coverage {coverage:.0%}",
                   highlight=False)


@ab.command("create")
@click.option("--spec", "spec_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The experiment spec, a .json or .toml file.")
@click.option("--by", default=None, help="Who creates it.")
@_store_option
def ab_create(store: Store, spec_file: str, by: str | None) -> None:
    """Define an experiment from a spec file (it starts as a draft)."""
    path = Path(spec_file)
    try:
        if path.suffix == ".toml":
            import tomllib

            spec = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            spec = orjson.loads(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise MltrailError(f"cannot read the spec {path}: {exc}") from None
    exp = store.ab.create(spec, by=by)
    _out.print(f"created {exp.key} (draft); minimum sample size "
               + ", ".join(f"{k} {v:,}" for k, v in exp.min_sample_size.items()), highlight=False)


@ab.command("list")
@_store_option
def ab_list(store: Store) -> None:
    """Every experiment with its state and phase."""
    table = Table(header_style="bold")
    for column in ("key", "state", "phase", "owner", "primary", "weights", "coverage", "winner"):
        table.add_column(column)
    for row in store.ab.experiments().to_dict("records"):
        weights = ", ".join(f"{k} {v:g}" for k, v in row["weights"].items())
        table.add_row(row["key"], row["state"], str(row["phase"]), row["owner"], row["primary"],
                      weights, f"{row['coverage']:.0%}", "" if _missing(row["winner"]) else row["winner"])
    _out.print(table)


@ab.command("status")
@click.argument("key")
@_store_option
def ab_status(store: Store, key: str) -> None:
    """An experiment's definition and state."""
    exp = store.ab.get(key)
    spec = exp.spec
    _out.print(f"[bold]{exp.key}[/]  {exp.state}  phase {exp.phase.number} (seed {exp.phase.seed})  "
               f"owner {spec.owner}", highlight=False)
    _out.print(f"H0: {spec.hypothesis.null}\nH1: {spec.hypothesis.alternative}", highlight=False)
    _out.print(f"primary KPI {spec.primary.name} ({spec.primary.kind}, {spec.primary.direction} is good); "
               f"alpha {spec.alpha}, power {spec.power}, MDE {spec.mde}{' relative' if spec.mde_relative else ''}"
               f"{', sequential' if spec.sequential else ''}", highlight=False)
    for variant in spec.variants:
        role = " (control)" if variant.control else ""
        serves = variant.model or variant.url or ""
        _out.print(f"  {variant.name}{role}: weight {exp.weights[variant.name]:g}, "
                   f"needs {exp.min_sample_size[variant.name]:,} units  {serves}", highlight=False)
    _out.print(f"coverage {exp.coverage:.0%}", highlight=False)
    if exp.state == "stopped":
        _out.print(f"decision: {exp.winner or 'no winner (control stays)'}: {exp.decision}", highlight=False)


@ab.command("start")
@click.argument("key")
@click.option("--by", default=None)
@click.option("--reason", default=None)
@_store_option
def ab_start(store: Store, key: str, by: str | None, reason: str | None) -> None:
    """Start (or resume) an experiment."""
    _out.print(f"{key}: {store.ab.get(key).start(by=by, reason=reason).state}")


@ab.command("pause")
@click.argument("key")
@click.option("--by", default=None)
@click.option("--reason", default=None)
@_store_option
def ab_pause(store: Store, key: str, by: str | None, reason: str | None) -> None:
    """Pause an experiment: everyone gets the control; nothing is logged as exposed."""
    _out.print(f"{key}: {store.ab.get(key).pause(by=by, reason=reason).state}")


@ab.command("stop")
@click.argument("key")
@click.option("--winner", default=None, help="The winning variant (omit: no winner).")
@click.option("--reason", required=True, help="The decision, in words.")
@click.option("--by", default=None)
@_store_option
def ab_stop(store: Store, key: str, winner: str | None, reason: str, by: str | None) -> None:
    """Stop an experiment with a decision."""
    exp = store.ab.get(key).stop(winner, reason, by=by)
    _out.print(f"{key}: stopped, winner {exp.winner or 'none'}")


@ab.command("weights")
@click.argument("key")
@click.argument("weights", nargs=-1, required=True)
@click.option("--reason", default=None)
@click.option("--by", default=None)
@_store_option
def ab_weights(store: Store, key: str, weights: tuple[str, ...], reason: str | None, by: str | None) -> None:
    """New weights, as VARIANT=WEIGHT pairs: starts a new phase (units are reassigned)."""
    parsed = {}
    for pair in weights:
        name, _, value = pair.partition("=")
        try:
            parsed[name] = float(value)
        except ValueError:
            raise MltrailError(f"weights are VARIANT=WEIGHT pairs, not {pair!r}") from None
    exp = store.ab.get(key).set_weights(parsed, reason=reason, by=by)
    _out.print(f"{key}: phase {exp.phase.number}, weights {exp.weights}", highlight=False)


@ab.command("results")
@click.argument("key")
@click.option("--phase", type=int, default=None, help="Phase to analyse (default: current).")
@click.option("--sequential/--fixed", default=None,
              help="Always-valid intervals, or the fixed-horizon test (default: the spec's choice).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_store_option
def ab_results(store: Store, key: str, phase: int | None, sequential: bool | None, as_json: bool) -> None:
    """The results page: health first, then each metric by variant, then the recommendation."""
    result = store.ab.get(key).results(phase, sequential)
    if as_json:
        click.echo(orjson.dumps({
            "phase": result.phase, "units": result.units, "srm_p_value": result.srm_p_value,
            "srm_alarm": result.srm_alarm, "crossover_units": result.crossover_units,
            "recommendation": result.recommendation, "table": _records(result.table),
        }, option=orjson.OPT_INDENT_2).decode())
        return
    health = "[red]SAMPLE-RATIO MISMATCH[/]" if result.srm_alarm else "[green]split OK[/]"
    _out.print(f"[bold]{key}[/] phase {result.phase}: {health} (p = {result.srm_p_value:.3g}), "
               f"{result.crossover_units} crossover units left out; units "
               + ", ".join(f"{k} {v:,}" for k, v in result.units.items()))
    table = Table(header_style="bold")
    for column in ("metric", "variant", "units", "mean", "lift", "95% interval", "p", "significant",
                   "progress"):
        table.add_column(column, justify="left" if column in ("metric", "variant") else "right")
    for row in result.table.to_dict("records"):
        tested = not _missing(row.get("p_value"))
        table.add_row(row["metric"], row["variant"] + (" (control)" if row["control"] else ""),
                      f"{row['units']:,}", _cell(row["mean"]),
                      f"{row['relative']:+.2%}" if tested else "",
                      f"{row['relative_ci_low']:+.2%} … {row['relative_ci_high']:+.2%}" if tested else "",
                      f"{row['p_value']:.4f}" if tested else "",
                      ("yes" if row["significant"] else "no") if tested else "",
                      f"{row['progress']:.0%}" if not _missing(row["progress"]) else "")
    _out.print(table)
    _out.print(result.recommendation, highlight=False)


@ab.command("coverage")
@click.argument("key")
@click.argument("coverage", type=float)
@click.option("--by", default=None)
@_store_option
def ab_coverage(store: Store, key: str, coverage: float, by: str | None) -> None:
    """Let a share of eligible units in (no unit changes variant)."""
    exp = store.ab.get(key).set_coverage(coverage, by=by)
    _out.print(f"{key}: coverage {exp.coverage:.0%}")


@main.group(invoke_without_command=True)
@_store_option
def models(store: Store) -> None:
    """The model registry (alone: list the models)."""
    if click.get_current_context().invoked_subcommand is None:
        _print_models(store)


def _print_models(store: Store) -> None:
    table = Table(header_style="bold")
    for column in ("model", "versions", "latest", "aliases", "description"):
        table.add_column(column)
    for row in store.registry.models().to_dict("records"):
        latest = "" if _missing(row["latest"]) else f"v{int(row['latest'])}"
        table.add_row(row["model"], str(row["versions"]), latest, row["aliases"], row["description"] or "")
    _out.print(table)


@models.command("list")
@_store_option
def models_list(store: Store) -> None:
    """Every registered model with its versions and aliases."""
    _print_models(store)


@models.command("create")
@click.argument("name")
@click.option("--description", default=None)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE (repeatable).")
@click.option("--by", default=None)
@_store_option
def models_create(store: Store, name: str, description: str | None, tags: tuple[str, ...], by: str | None) -> None:
    """Create a registered model (names are unique ignoring case)."""
    store.registry.create_model(name, description, _pairs(tags), by=by)
    _out.print(f"created model {name}", highlight=False)


@models.command("register")
@click.argument("name")
@click.option("--run", "run_ref", required=True, help="The run (ID, prefix or unique name).")
@click.option("--artifact", default="model.pkl", show_default=True)
@click.option("--description", default=None)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE (repeatable).")
@click.option("--create", is_flag=True, help="Create the model first if it does not exist.")
@click.option("--by", default=None)
@_store_option
def models_register(store: Store, name: str, run_ref: str, artifact: str, description: str | None,
                    tags: tuple[str, ...], create: bool, by: str | None) -> None:
    """Register a run's artifact as the model's next version."""
    if create and name not in set(store.registry.models()["model"]):
        store.registry.create_model(name, by=by)
    version = store.registry.register(name, run_ref, artifact, description, _pairs(tags), by=by)
    _out.print(f"{name} v{version.number}: run {version.run_name or version.run} {artifact} "
               f"(sha256 {version.sha256[:12]}), {version.uri}", highlight=False)


@models.command("show")
@click.argument("name")
@_store_option
def models_show(store: Store, name: str) -> None:
    """A model's versions, with their runs, aliases and final metrics."""
    versions = store.registry.versions(name)
    table = Table(header_style="bold")
    metric_columns = [c for c in versions.columns if c.startswith("metrics.")][:_MAX_TABLE_KEYS]
    for column in ("version", "run", "artifact", "aliases", "state", "created", *metric_columns):
        table.add_column(column.removeprefix("metrics."))
    for row in versions.to_dict("records"):
        table.add_row(f"v{row['version']}", row["run_name"] or row["run"][:10], row["artifact"], row["aliases"],
                      "archived" if row["archived"] else "live", _time(row["created"]),
                      *(_cell(row[c]) for c in metric_columns))
    _out.print(table)


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version")
@click.option("--reason", default=None)
@click.option("--by", default=None)
@_store_option
def models_alias(store: Store, name: str, alias: str, version: str, reason: str | None, by: str | None) -> None:
    """Point ALIAS at VERSION (3 or v3), moving it if it points elsewhere."""
    try:
        previous: int | None = store.registry.get(name, alias=alias).number
    except NotFoundError:
        previous = None
    moved = store.registry.set_alias(name, alias, version, reason=reason, by=by)
    origin = f" (was v{previous})" if previous not in (None, moved.number) else ""
    _out.print(f"{name}@{alias} -> v{moved.number}{origin}", highlight=False)


@models.command("history")
@click.argument("name")
@click.argument("alias", required=False)
@_store_option
def models_history(store: Store, name: str, alias: str | None) -> None:
    """Every move of an alias (of all aliases without ALIAS): when, from, to, who, why."""
    table = Table(header_style="bold")
    for column in ("time", "alias", "from", "to", "by", "reason"):
        table.add_column(column)
    for row in store.registry.alias_history(name, alias).to_dict("records"):
        table.add_row(_time(row["time"]), row["alias"],
                      "" if _missing(row["from_version"]) else f"v{row['from_version']}",
                      "(deleted)" if _missing(row["to_version"]) else f"v{row['to_version']}",
                      row["by"] or "", row["reason"] or "")
    _out.print(table)


@models.command("archive")
@click.argument("name")
@click.argument("version")
@click.option("--reason", default=None)
@click.option("--by", default=None)
@_store_option
def models_archive(store: Store, name: str, version: str, reason: str | None, by: str | None) -> None:
    """Retire a version (latest and new aliases skip it)."""
    archived = store.registry.archive(name, version, reason=reason, by=by)
    _out.print(f"{name} v{archived.number} archived", highlight=False)


@models.command("promote")
@click.argument("experiment")
@click.option("--alias", default="production", show_default=True)
@click.option("--force", is_flag=True, help="Promote even after a sample-ratio mismatch.")
@click.option("--by", default=None)
@_store_option
def models_promote(store: Store, experiment: str, alias: str, force: bool, by: str | None) -> None:
    """Move ALIAS to the version that won a stopped A/B experiment."""
    promoted = store.registry.promote_winner(experiment, alias=alias, force=force, by=by)
    _out.print(f"{promoted.model}@{alias} -> v{promoted.number} (won {experiment})", highlight=False)


def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE")
        pairs[key] = value
    return pairs


@main.group(invoke_without_command=True)
@_store_option
def features(store: Store) -> None:
    """The feature store (alone: list entities and views)."""
    if click.get_current_context().invoked_subcommand is None:
        _print_features(store)


def _print_features(store: Store) -> None:
    fs = store.features
    entities = Table(title="entities", header_style="bold", title_justify="left")
    for column in ("entity", "join keys", "description"):
        entities.add_column(column)
    for row in fs.entities().to_dict("records"):
        entities.add_row(row["entity"], row["join_keys"], row["description"] or "")
    _out.print(entities)
    views = Table(title="feature views", header_style="bold", title_justify="left")
    for column in ("view", "entity", "features", "source", "ttl", "materialized until", "source rows",
                   "online keys", "freshness"):
        views.add_column(column)
    for row in fs.views().to_dict("records"):
        fresh = "" if _missing(row["freshness"]) else _age(row["freshness"])
        views.add_row(row["view"], row["entity"], row["features"], row["source"], row["ttl"] or "",
                      _time(row["materialized_until"]), "" if _missing(row["source_rows"]) else f"{int(row['source_rows']):,}",
                      f"{int(row['online_keys']):,}", fresh)
    _out.print(views)


def _age(delta: Any) -> str:
    seconds = pd.Timedelta(delta).total_seconds()
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} old"
    return f"{seconds:.0f} s old"


@features.command("list")
@_store_option
def features_list(store: Store) -> None:
    """Entities and feature views: schema, source, ttl, last materialization, freshness."""
    _print_features(store)


@features.command("materialize")
@click.option("--start", default=None, help="Window start (event time; default: where the last run ended).")
@click.option("--end", default=None, help="Window end (default: now).")
@click.option("--view", "views", multiple=True, help="Only these views (repeatable).")
@_store_option
def features_materialize(store: Store, start: str | None, end: str | None, views: tuple[str, ...]) -> None:
    """Load the views' newest rows per key into the online store."""
    report = store.features.materialize(start=start, end=end, views=list(views) or None)
    for row in report.to_dict("records"):
        _out.print(f"{row['view']}: {row['rows']:,} rows in the window, {row['keys']:,} keys, "
                   f"{row['seconds']:.2f} s", highlight=False)


@main.group()
def serve() -> None:
    """Services: the A/B router (separated mode)."""


@serve.command("router")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8700, show_default=True)
@click.option("--timeout", type=float, default=2.0, show_default=True,
              help="Seconds to wait for a model service.")
@_store_option
def serve_router(store: Store, host: str, port: int, timeout: float) -> None:
    """Route each predict request to its variant's model service and log exposures.
    Admin calls need MLTRAIL_ADMIN_TOKEN (disabled when it is unset)."""
    from .serve.asgi import run_server
    from .serve.router import create_app

    app = create_app(store, admin_token=os.environ.get("MLTRAIL_ADMIN_TOKEN") or None, timeout=timeout)
    _err.print(f"mltrail router on http://{host}:{port} for {store.root}", highlight=False)
    run_server(app, host, port, loop="uvloop")


@serve.command("model")
@click.option("--model", "uri", default=None,
              help="A registered model: models:/name@alias, models:/name/3, models:/name/latest.")
@click.option("--run", "run_ref", default=None, help="Or a run (ID, prefix or unique name)...")
@click.option("--artifact", default="model.pkl", show_default=True, help="...and its pickled model artifact.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9001, show_default=True)
@_store_option
def serve_model(store: Store, uri: str | None, run_ref: str | None, artifact: str, host: str, port: int) -> None:
    """Serve a pickled scikit-learn model: POST /predict {"features": {...}}."""
    from .serve.asgi import run_server
    from .serve.model import create_model_app

    if (uri is None) == (run_ref is None):
        raise click.UsageError("give --model URI or --run RUN (with --artifact), not both")
    uri = uri or f"runs:/{store.resolve_run(run_ref)}/{artifact}"
    app = create_model_app(store, uri)
    _err.print(f"model service on http://{host}:{port}: {uri}", highlight=False)
    run_server(app, host, port)


def app_entrypoint() -> Path:
    """The dashboard's main.py: $MLTRAIL_APP_DIR, else app/ beside the source tree."""
    folder = Path(os.environ.get("MLTRAIL_APP_DIR") or Path(__file__).resolve().parents[2] / "app")
    main_file = folder / "main.py"
    if not main_file.is_file():
        raise MltrailError(f"the dashboard is not at {main_file}: install mltrail from its "
                           "repository (pip install -e .) or set MLTRAIL_APP_DIR")
    return main_file


def _status(status: str) -> str:
    colour = {"FINISHED": "green", "RUNNING": "cyan", "FAILED": "red", "KILLED": "yellow",
              "CRASHED": "magenta"}.get(status, "white")
    return f"[{colour}]{status}[/]"


def _time(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _duration(start: Any, end: Any) -> str:
    if start is None or pd.isna(start) or end is None or pd.isna(end):
        return ""
    seconds = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}min"


def _cell(value: Any, missing: str = "") -> str:
    """A table cell: missing values (None, NaN from a pivot, NaT) as ``missing``."""
    if _missing(value):
        return missing
    return _number(value) if isinstance(value, float) else str(value)


def _number(value: float) -> str:
    """A logged metric value; NaN and inf are real values here and are shown."""
    return f"{value:.6g}"


def _plain(value: Any) -> Any:
    """A JSON-ready value: timestamps as ISO strings, NaN as null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if hasattr(value, "tolist") and not isinstance(value, str):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if value is pd.NaT:
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items() if not _missing(v)} for row in frame.to_dict("records")]


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and arrays are present values
        return False
