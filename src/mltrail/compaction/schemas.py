"""The schemas of the derived Parquet tables, and conversions of their rows."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

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
])
ARTIFACTS = pa.schema([
    ("run_id", pa.string()), ("path", pa.string()), ("sha256", pa.string()), ("size", pa.int64()),
    ("in_git", pa.bool_()), ("source", pa.string()), ("timestamp", TS),
])
DATASETS = pa.schema([
    ("run_id", pa.string()), ("name", pa.string()), ("path", pa.string()), ("sha256", pa.string()),
    ("size", pa.int64()), ("rows", pa.int64()), ("columns", pa.list_(pa.string())),
    ("context", pa.string()), ("timestamp", TS),
])
TABLE_SCHEMAS = {"runs": RUNS, "experiments": EXPERIMENTS, "params": PARAMS, "tags": TAGS,
                 "latest_metrics": LATEST_METRICS, "metrics": METRIC_POINTS,
                 "artifacts": ARTIFACTS, "datasets": DATASETS}

_TIME_FIELDS = ("start_time", "end_time", "last_seen")
_STATE_FIELDS = [name for name in RUNS.names if name not in ("run_seq", "run_name")]


def new_run_state(run_id: str, rel: str) -> dict[str, Any]:
    """A run seen for the first time; its experiment defaults to its folder's name."""
    state: dict[str, Any] = dict.fromkeys(_STATE_FIELDS)
    folder = rel.split("/")[1] if rel.count("/") >= 2 else "unknown"
    state.update(run_id=run_id, experiment=folder, status="RUNNING", file=rel,
                 last_seen=0.0)
    return state


def run_state_from_row(row: dict[str, Any]) -> dict[str, Any]:
    state = {name: row.get(name) for name in _STATE_FIELDS}
    for name in _TIME_FIELDS:
        if state[name] is not None:
            state[name] = state[name].timestamp()
    return state


def _as_time(seconds: float | None) -> datetime | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def run_row(state: dict[str, Any], run_seq: int, run_name: str) -> dict[str, Any]:
    row = dict(state, run_seq=run_seq, run_name=run_name)
    for name in _TIME_FIELDS:
        row[name] = _as_time(state[name] or None)
    return row


def experiment_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per experiment: the latest description given, run count, first/last start."""
    experiments: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: (r["start_time"] or datetime.min.replace(tzinfo=timezone.utc), r["run_id"])):
        exp = experiments.setdefault(run["experiment"], {
            "experiment": run["experiment"], "description": None, "runs": 0,
            "first_start": run["start_time"], "last_start": None})
        exp["runs"] += 1
        exp["last_start"] = run["start_time"]
        if run["experiment_description"]:
            exp["description"] = run["experiment_description"]
    return [experiments[name] for name in sorted(experiments)]


def empty_metric_points() -> pa.Table:
    return METRIC_POINTS.empty_table()
