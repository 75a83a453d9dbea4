"""Old event files read exactly as before, and dense (schema 2) metric lines give the
same tables as one-point (schema 1) lines.

`data/sample_runs_tables.json` holds, for every table of the committed `sample_runs/`
(schema 1 files), its row count and the sha256 of its rows as CSV, computed by the code
before schema 2 (commit 4c0b31d, with `tests/compaction/test_schema_versions.py`'s
`table_digests`)."""

import hashlib
import json
import shutil
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mltrail
from mltrail.compaction.manifest import load_manifest
from tests.factories import REPO

GOLDEN = Path(__file__).parent / "data" / "sample_runs_tables.json"


def table_digests(store: mltrail.Store, point_times: bool = True) -> dict[str, list]:
    store.compact(rebuild=True)
    manifest = load_manifest(store.layout.tables)
    digests = {}
    for name, files in sorted(manifest.tables.items()):
        # partitioning=None: pyarrow before 26 added the hive folder (experiment=...) as a column
        frame = pa.concat_tables([pq.read_table(store.layout.tables / f, partitioning=None) for f in files]).to_pandas()
        # what later versions added, and no run of the sample has: left out of the digest
        if name == "run_edits":
            assert frame.empty
            continue
        if name == "metric_buckets":  # the metric history summed for charts: its own digest holds it
            continue
        if name == "runs":
            assert not frame.pop("deleted").any() and frame.pop("deleted_time").isna().all()
        if name == "datasets":  # what MLflow's client logs of a dataset (tables format 3)
            assert frame.pop("mlflow").isna().all()
        if name == "metrics":  # the dataset a point was measured on (tables format 4)
            assert frame.pop("dataset_name").isna().all() and frame.pop("dataset_digest").isna().all()
        if not point_times and name in ("metrics", "latest_metrics"):
            frame = frame.drop(columns="timestamp")  # compared apart: to the millisecond
        frame = frame.sort_values(list(frame.columns[:3])).reset_index(drop=True)
        digests[name] = [len(frame), hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()]
    return digests


def copy_of_sample(tmp_path: Path) -> mltrail.Store:
    copy = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", copy, ignore=shutil.ignore_patterns(".cache"))
    return mltrail.Store(copy)


@pytest.mark.slow
def test_schema_1_files_read_exactly_as_before(tmp_path):
    assert table_digests(copy_of_sample(tmp_path)) == json.loads(GOLDEN.read_text())


def to_schema_2(path: Path) -> None:
    """Rewrite a run file's one-point metric lines as dense lines, a line per run of
    consecutive points, each point keeping its seq and its time to the millisecond."""
    out, points = [], []

    def close():
        if points:
            keys = list(dict.fromkeys(p["key"] for p in points))
            line = {"v": 2, "type": "metrics", "ts": points[0]["ts"], "run": points[0]["run"],
                    "seq": points[0]["seq"], "keys": keys, "k": [keys.index(p["key"]) for p in points],
                    "steps": [p["step"] for p in points], "values": [p.get("value") for p in points],
                    "dts": [round((p["ts"] - points[0]["ts"]) * 1000) for p in points]}
            best = [i for i, p in enumerate(points) if p.get("best")]
            special = [(i, p["nonfinite"]) for i, p in enumerate(points) if p.get("nonfinite")]
            if best:
                line["best_at"] = best
            if special:
                line["special_at"], line["special"] = [i for i, _ in special], [s for _, s in special]
            out.append(orjson.dumps(line))
            points.clear()

    for raw in path.read_bytes().splitlines():
        event = orjson.loads(raw)
        consecutive = not points or event.get("seq") == points[-1]["seq"] + 1
        if event["type"] == "metric" and consecutive:
            points.append(event)
            continue
        close()
        if event["type"] == "metric":
            points.append(event)
        else:
            out.append(raw)
    close()
    path.write_bytes(b"\n".join(out) + b"\n")


@pytest.mark.slow
def test_dense_lines_give_the_tables_one_point_lines_give(tmp_path):
    one_point = copy_of_sample(tmp_path / "a")
    dense = copy_of_sample(tmp_path / "b")
    files = sorted(dense.layout.experiments.glob("*/runs/*.jsonl"))
    before = sum(f.stat().st_size for f in files)
    for path in files:
        to_schema_2(path)
    after = sum(f.stat().st_size for f in files)
    assert after < before / 2  # the same points in less than half the bytes
    assert table_digests(dense, point_times=False) == table_digests(one_point, point_times=False)
    order = ["run_id", "key", "step", "value"]
    a = one_point.metric_history().sort_values(order).reset_index(drop=True)
    b = dense.metric_history().sort_values(order).reset_index(drop=True)
    assert (a["timestamp"] - b["timestamp"]).abs().max() <= pd.Timedelta("1ms")  # times kept to the ms


def test_clean_dense_lines_are_read_columnar(store):
    """Every line written by the API, NaN, inf and best points included, takes the fast
    path (a check that was null on a line without NaN sent all of them line by line)."""
    with store.start_run("e", log_git=False, log_packages=False) as run:
        for step in range(100):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 100}, step=step)
        run.log_metric("loss", float("nan"), step=100)
        run.log_metric("acc", float("inf"), step=100, best=True)
    result = store.compact(rebuild=True)
    assert result.lines_read_one_by_one == 0 and result.metric_points == 202 and not result.bad_lines
    history = store.metric_history().set_index(["key", "step"])
    assert pd.isna(history.loc[("loss", 100), "value"]) and history.loc[("acc", 100), "value"] == float("inf")
    assert bool(history.loc[("acc", 100), "best"]) and not history["best"].drop(("acc", 100)).any()
