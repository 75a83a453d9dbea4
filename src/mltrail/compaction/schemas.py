"""The schemas of the derived Parquet tables, and conversions of their rows."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

TS = pa.timestamp("us", tz="UTC")

RUNS = pa.schema([
    ("run_id", pa.string()), ("experiment", pa.string()), ("run_seq", pa.int64()),
    ("run_name", pa.string()), ("requested_name", pa.string()), ("description", pa.string()),
    ("status", pa.string()), ("start_time", TS), ("end_time", TS), ("last_seen", TS),
    ("error", pa.string()), ("file", pa.string()),
    ("git_commit", pa.string()), ("git_branch", pa.string()), ("git_dirty", pa.bool_()),
    ("git_remote", pa.string()), ("git_repo_path", pa.string()),
    ("git_diff_sha256", pa.string()), ("git_diff_truncated", pa.bool_()),
    ("command", pa.string()), ("script", pa.string()), ("cwd", pa.string()),
    ("python", pa.string()), ("platform", pa.string()), ("host", pa.string()),
    ("user", pa.string()), ("packages_sha256", pa.string()),
    ("experiment_description", pa.string()),
    ("deleted", pa.bool_()), ("deleted_time", TS),
])
EXPERIMENTS = pa.schema([
    ("experiment", pa.string()), ("description", pa.string()), ("runs", pa.int64()),
    ("first_start", TS), ("last_start", TS),
])
PARAMS = pa.schema([("run_id", pa.string()), ("key", pa.string()), ("value", pa.string()),
                    ("group", pa.string())])
TAGS = pa.schema([("run_id", pa.string()), ("key", pa.string()), ("value", pa.string())])
LATEST_METRICS = pa.schema([
    ("run_id", pa.string()), ("key", pa.string()), ("value", pa.float64()), ("step", pa.int64()),
    ("seq", pa.int64()), ("timestamp", TS), ("min", pa.float64()), ("max", pa.float64()),
    ("count", pa.int64()), ("best_value", pa.float64()), ("best_step", pa.int64()),
    ("best_seq", pa.int64()),
])
METRIC_POINTS = pa.schema([
    ("run_id", pa.string()), ("key", pa.string()), ("step", pa.int64()), ("value", pa.float64()),
    ("timestamp", TS), ("seq", pa.int64()), ("best", pa.bool_()),
    # the dataset the point was measured on (MLflow 3's link; tables format 4), null for none
    ("dataset_name", pa.string()), ("dataset_digest", pa.string()),
])
ARTIFACTS = pa.schema([
    ("run_id", pa.string()), ("path", pa.string()), ("sha256", pa.string()), ("size", pa.int64()),
    ("in_git", pa.bool_()), ("source", pa.string()), ("timestamp", TS),
])
DATASETS = pa.schema([
    ("run_id", pa.string()), ("name", pa.string()), ("path", pa.string()), ("sha256", pa.string()),
    ("size", pa.int64()), ("rows", pa.int64()), ("columns", pa.list_(pa.string())),
    ("context", pa.string()), ("timestamp", TS),
    ("mlflow", pa.string()),  # an MLflow dataset's digest, source, schema, profile, tags (JSON)
])
HISTOGRAMS = pa.schema([  # one row a histogram line: bin i counts values in [edges[i], edges[i + 1])
    ("run_id", pa.string()), ("key", pa.string()), ("step", pa.int64()), ("timestamp", TS), ("seq", pa.int64()),
    ("edges", pa.list_(pa.float64())), ("counts", pa.list_(pa.int64())), ("dropped", pa.int64()),
])
RUN_EDITS = pa.schema([
    ("run_id", pa.string()), ("edit_id", pa.string()), ("ts", pa.float64()), ("by", pa.string()),
    ("kind", pa.string()), ("key", pa.string()), ("value", pa.string()),
])
# the metric history's bucket sums (compaction.buckets): per run, key and bucket of 2**level steps
METRIC_BUCKETS = pa.schema([
    ("run_id", pa.string()), ("key", pa.string()), ("level", pa.int8()), ("bucket", pa.int64()),
    ("n", pa.int64()), ("step_min", pa.int64()), ("step_max", pa.int64()),
    ("step_sum", pa.float64()), ("value_sum", pa.float64()),
])
TABLE_SCHEMAS = {"runs": RUNS, "experiments": EXPERIMENTS, "params": PARAMS, "tags": TAGS,
                 "latest_metrics": LATEST_METRICS, "metrics": METRIC_POINTS,
                 "artifacts": ARTIFACTS, "datasets": DATASETS, "run_edits": RUN_EDITS, "histograms": HISTOGRAMS,
                 "metric_buckets": METRIC_BUCKETS}

_TIME_FIELDS = ("start_time", "end_time", "last_seen", "deleted_time")
_STATE_FIELDS = [name for name in RUNS.names if name not in ("run_seq", "run_name")]


def new_run_state(run_id: str, rel: str) -> dict[str, Any]:
    """A run seen for the first time; its experiment defaults to its folder's name."""
    state: dict[str, Any] = dict.fromkeys(_STATE_FIELDS)
    folder = rel.split("/")[1] if rel.count("/") >= 2 else "unknown"
    state.update(run_id=run_id, experiment=folder, status="RUNNING", file=rel,
                 last_seen=0.0, deleted=False)
    return state


def run_state_from_row(row: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {name: row.get(name) for name in _STATE_FIELDS}
    for name in _TIME_FIELDS:
        if state[name] is not None:
            state[name] = state[name].timestamp()
    return state


def seconds_to_timestamps(values: list[float | None]) -> pa.Array:
    """Epoch seconds (None or 0 for unknown) as a UTC microsecond timestamp column."""
    micros = pc.cast(pc.round(pc.multiply(pa.array(values, pa.float64()), 1e6)), pa.int64())
    micros = pc.if_else(pc.equal(micros, 0), pa.scalar(None, pa.int64()), micros)
    return pc.cast(micros, TS)


def runs_table(states: list[dict[str, Any]], names: dict[str, tuple[int, str]]) -> pa.Table:
    """The runs table from run states (times in epoch seconds), built column by column."""
    columns: dict[str, Any] = {}
    for field in RUNS:
        if field.name == "run_seq":
            columns[field.name] = pa.array([names[s["run_id"]][0] for s in states], pa.int64())
        elif field.name == "run_name":
            columns[field.name] = pa.array([names[s["run_id"]][1] for s in states], pa.string())
        elif field.name in _TIME_FIELDS:
            columns[field.name] = seconds_to_timestamps([s[field.name] for s in states])
        else:
            columns[field.name] = pa.array([s[field.name] for s in states], field.type)
    return pa.table(columns, schema=RUNS)


def experiments_table(states: list[dict[str, Any]]) -> pa.Table:
    """One row per experiment: the latest description given, run count, first/last start;
    deleted runs are not counted (an experiment of only deleted runs is not listed)."""
    experiments: dict[str, dict[str, Any]] = {}
    for run in sorted((s for s in states if not s["deleted"]), key=lambda r: (r["start_time"] or 0.0, r["run_id"])):
        exp = experiments.setdefault(run["experiment"], {
            "experiment": run["experiment"], "description": None, "runs": 0,
            "first_start": run["start_time"], "last_start": None})
        exp["runs"] += 1
        exp["last_start"] = run["start_time"]
        if run["experiment_description"]:
            exp["description"] = run["experiment_description"]
    rows = [experiments[name] for name in sorted(experiments)]
    return pa.table({
        "experiment": pa.array([r["experiment"] for r in rows], pa.string()),
        "description": pa.array([r["description"] for r in rows], pa.string()),
        "runs": pa.array([r["runs"] for r in rows], pa.int64()),
        "first_start": seconds_to_timestamps([r["first_start"] for r in rows]),
        "last_start": seconds_to_timestamps([r["last_start"] for r in rows]),
    }, schema=EXPERIMENTS)


def empty_metric_points() -> pa.Table:
    return METRIC_POINTS.empty_table()
