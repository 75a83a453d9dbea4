"""Commands on runs: ``runs``, ``experiments``, ``show``, ``diff``, ``compact``,
``reproduce`` and ``ui``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from ..config import APP_DIR
from ..errors import InvalidInputError, MltrailError
from ..query.cells import cell_text, is_missing
from ..storage.run_edits import describe_edit
from ..store import Store
from .context import pass_store
from .output import Column, duration, err, note, out, print_json, print_table, status

MAX_TABLE_KEYS = 12  # params/metrics shown as columns in `mltrail runs`
MAX_CELL_WIDTH = 16


@click.command()
@click.option("--experiment", "-e", multiple=True, help="Only these experiments (repeatable).")
@click.option("--filter", "-f", "filter_", default=None,
              help="MLflow filter, e.g. \"metrics.f1 > 0.8 and params.C = '1.0'\".")
@click.option("--order-by", "-o", multiple=True, help="e.g. 'metrics.f1 DESC' (repeatable).")
@click.option("--max-results", "-n", type=int, default=None, help="At most this many runs.")
@click.option("--all-columns", is_flag=True, help="Also params equal in every listed run.")
@click.option("--deleted", is_flag=True, help="List deleted runs instead (restorable until `mltrail gc`).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of runs.")
@pass_store
def runs(store: Store, experiment: tuple[str, ...], filter_: str | None, order_by: tuple[str, ...],
         max_results: int | None, all_columns: bool, deleted: bool, as_json: bool) -> None:
    """List runs, newest first (params that differ between them, latest metrics)."""
    frame = store.search_runs(list(experiment) or None, filter_, list(order_by) or None, max_results,
                              view="deleted" if deleted else "active")
    if as_json:
        print_json(frame)
        return
    if frame.empty:
        note("no runs match")
        return
    params = [c for c in frame.columns if c.startswith("params.")
              and (all_columns or len(frame) == 1 or frame[c].nunique(dropna=False) > 1)]
    metrics = [c for c in frame.columns if c.startswith("metrics.")]
    keys = (params + metrics)[:MAX_TABLE_KEYS]
    columns: list[str | Column] = ["name", "experiment", "status", "start", "duration", "run",
               *(Column(k.split(".", 1)[1], right=k in metrics, max_width=MAX_CELL_WIDTH) for k in keys)]
    print_table(columns, ([row["run_name"], row["experiment"], status(row["status"]), row["start_time"],
                           duration(row["start_time"], row["end_time"]), row["run_id"][:10],
                           *(row[k] for k in keys)] for row in frame.to_dict("records")))
    hidden = len(params) + len(metrics) - len(keys)
    note(f"{len(frame)} runs" + (f"; {hidden} more columns in --json" if hidden > 0 else ""))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_store
def experiments(store: Store, as_json: bool) -> None:
    """List experiments with their descriptions and run counts."""
    frame = store.experiments()
    if as_json:
        print_json(frame)
        return
    print_table(["experiment", "runs", "last start", "description"],
                ([r["experiment"], r["runs"], r["last_start"], r["description"]]
                 for r in frame.to_dict("records")))


@click.command()
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_store
def show(store: Store, run: str, as_json: bool) -> None:
    """Everything about one run (ID, ID prefix or unique name)."""
    details = store.get_run(run)
    if as_json:
        print_json(details)
        return
    info = details["run"]
    out.print(Text.assemble((cell_text(info["run_name"]), "bold"), f"  {info['run_id']}  ", status(info["status"]),
                            ("  DELETED (mltrail restore brings it back)", "red") if info.get("deleted") else ""),
              highlight=False)
    lines = [("experiment", f"{info['experiment']}   (run #{info['run_seq']})"),
             ("description", cell_text(info.get("description"))),
             ("started", f"{cell_text(info['start_time'])}   duration "
                         f"{duration(info['start_time'], info['end_time'])}")]
    for label, text in lines:
        if text:
            out.print(f"{label:<11} {text}", markup=False, highlight=False)
    if info.get("error"):
        out.print(Text("error", style="red"))
        out.print(info["error"], markup=False, highlight=False)
    params = details["params"]
    if len(params):
        print_table(["group", "key", "value"],
                    ([r["group"], r["key"], r["value"]] for r in
                     params.sort_values(["group", "key"], na_position="first").to_dict("records")),
                    title="params")
    metrics = details["metrics"]
    if len(metrics):
        # the latest value of a metric is shown even when it is NaN: NaN was logged
        print_table(["key", *(Column(c, right=True) for c in ("latest", "step", "best", "min", "max", "points"))],
                    ([r["key"], f"{r['value']:.6g}", r["step"], r["best_value"], r["min"], r["max"], r["count"]]
                     for r in metrics.to_dict("records")), title="metrics")
    if details["tags"]:
        note_line("tags", ", ".join(f"{k}={v}" for k, v in sorted(details["tags"].items())))
    for row in details["artifacts"].to_dict("records"):
        where = "" if row["in_git"] else " (not in git)"
        note_line("artifact", f"{row['path']}  {int(row['size']):,} bytes  sha256 {row['sha256'][:12]}{where}")
    for row in details["datasets"].to_dict("records"):
        shape = "" if is_missing(row["rows"]) else f"  {int(row['rows']):,} rows"
        note_line("dataset", f"{row['name']}: {row['path']}{shape}  sha256 {row['sha256'][:12]}")
    if info.get("git_commit"):
        dirty = " (uncommitted changes)" if info.get("git_dirty") else ""
        note_line("git", f"{info['git_commit'][:12]} on {info.get('git_branch') or '?'}{dirty}")
    if info.get("command"):
        note_line("command", info["command"])
    if info.get("python"):
        note_line("environment", f"python {info['python']} on {cell_text(info.get('platform'), '?')}, "
                                 f"{cell_text(info.get('user'), '?')}@{cell_text(info.get('host'), '?')}")
    for row in details["edits"].to_dict("records"):
        note_line("edited", f"{cell_text(row['time'])} by {cell_text(row['by'], '?')}: {describe_edit(row['kind'], row['key'], row['value'])}")


def note_line(label: str, text: str) -> None:
    out.print(f"{label:<11} {text}", markup=False, highlight=False)


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--all", "show_all", is_flag=True, help="Show equal values too.")
@pass_store
def diff(store: Store, runs: tuple[str, ...], show_all: bool) -> None:
    """Params and final metrics of two or more runs side by side; keys whose values differ
    are marked (a key a run lacks shows as —)."""
    if len(runs) < 2:
        raise InvalidInputError("diff needs two runs or more")
    details = [store.get_run(ref) for ref in runs]
    rows = []
    for kind in ("params", "metrics"):
        values = [dict(zip(d[kind]["key"], d[kind]["value"])) for d in details]
        for key in sorted(set().union(*values)):
            cells = [cell_text(v.get(key), "—") for v in values]
            differs = len(set(cells)) > 1
            if differs or show_all:
                rows.append([Text("≠", style="yellow") if differs else "", f"{kind}.{key}", *cells])
    if not rows:
        out.print(f"no differences in params or final metrics between the {len(runs)} runs")
        return
    print_table(["", "key", *(f"{cell_text(d['run']['run_name'])} ({d['run']['run_id'][:10]})" for d in details)], rows)


@click.command()
@click.option("--rebuild", is_flag=True, help="Rebuild every table from the events alone.")
@pass_store
def compact(store: Store, rebuild: bool) -> None:
    """Bring the Parquet tables up to date with the event files."""
    with Progress(TextColumn("compacting"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                  TimeRemainingColumn(), console=err, transient=True,
                  disable=not err.is_terminal) as bar:
        task = bar.add_task("compact", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = store.compact(rebuild=rebuild, progress=progress)
    out.print(result.summary(), highlight=False)
    for bad in result.bad_lines[:20]:
        note(f"skipped {bad}")
    if result.lines_skipped > 20:
        note(f"... and {result.lines_skipped - 20} more skipped lines")


@click.command()
@click.argument("run")
@click.option("--reason", help="Why: kept with the request and in the run's end.")
@click.option("--by", help="Who asks (default: $MLTRAIL_USER, else your login).")
@pass_store
def stop(store: Store, run: str, reason: str | None, by: str | None) -> None:
    """Ask a running run to stop. Its process sees `run.stop_requested` within a second or
    two (with `start_run(stop="raise")` its next log call raises); it ends KILLED."""
    run_id = store.request_stop(run, reason, by=by)
    out.print(f"asked run {run_id} to stop", highlight=False)


@click.command()
@click.argument("run")
@pass_store
def reproduce(store: Store, run: str) -> None:
    """A shell script that reruns a run in a new worktree at its commit, with its
    uncommitted diff applied, logging into this store; your checkout is not touched."""
    click.echo(store.reproduce_script(run), nl=False)


@click.command()
@click.option("--port", type=int, default=8501, show_default=True, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@pass_store
def ui(store: Store, port: int, host: str) -> None:
    """Open the dashboard (Streamlit) on the store."""
    if isinstance(store, Store):
        store.refresh()  # fails clearly on a missing store, and warms the tables
    else:  # a server: is it there? (who the user is, the dashboard asks)
        store.server.call("GET", "/api/v1/health")
    app = app_entrypoint()
    env = {**os.environ, "MLTRAIL_DIR": str(store.root)}
    token = getattr(getattr(store, "server", None), "token", None)
    if token:  # the dashboard's process opens the same server with the same token
        env["MLTRAIL_TOKEN"] = token
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
               "--server.address", host, "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
    note(f"mltrail dashboard on http://{host}:{port} for {store.root}")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, env)  # become the server: signals reach it directly


def app_entrypoint() -> Path:
    """The dashboard's main.py: in $MLTRAIL_APP_DIR when set, else the copy an installed
    wheel carries (``mltrail/_app``, mapped from ``app/`` by setup.py), else ``app/`` of
    the repository an editable install runs from."""
    package = Path(__file__).resolve().parents[1]  # .../site-packages/mltrail or <repo>/src/mltrail
    setting = APP_DIR.get()
    folders = [Path(setting)] if setting else [package / "_app", package.parents[1] / "app"]
    for folder in folders:
        if (folder / "main.py").is_file():
            return folder / "main.py"
    looked = " nor ".join(str(folder / "main.py") for folder in folders)
    raise MltrailError(f"the dashboard is not at {looked}: reinstall mltrail (a wheel carries it; "
                       "from its repository, pip install -e .) or set MLTRAIL_APP_DIR")
