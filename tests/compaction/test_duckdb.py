"""The derived tables are plain Parquet that DuckDB reads as they are: the metric history
hive-partitioned by experiment (`metrics/experiment=<name>/`), the small tables one file
each (issue 14; docs/design.md's path beyond one machine)."""

import duckdb
import pandas as pd

from mltrail.compaction.manifest import commit_manifest, load_manifest
from mltrail.storage.layout import partition_name
from tests.factories import quiet_run


def test_duckdb_reads_the_tables_and_gets_what_the_api_gives(store):
    for experiment in ("churn", "ranking model"):
        for r in range(3):
            with quiet_run(store, experiment, name=f"{experiment}-{r}") as run:
                run.log_params({"depth": r})
                for step in range(4):
                    run.log_metrics({"loss": 1 / (step + r + 1), "auc": 0.5 + step / 10}, step=step)
    history = store.metric_history()
    tables = store.layout.tables
    manifest = load_manifest(tables)
    assert all(rel.startswith("metrics/experiment=") for rel in manifest.tables["metrics"])

    con = duckdb.connect()
    points = con.execute(
        f"SELECT run_id, key, step, value, experiment FROM read_parquet('{tables}/metrics/**/*.parquet', "
        "hive_partitioning = true) ORDER BY run_id, key, step").df()
    expected = history.sort_values(["run_id", "key", "step"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(points.drop(columns="experiment"), expected[["run_id", "key", "step", "value"]],
                                  check_dtype=False)
    assert set(points["experiment"]) == {partition_name("churn"), partition_name("ranking model")}

    runs = store.search_runs(filter="metrics.loss < 0.2")
    (runs_file,) = manifest.tables["runs"]
    (latest_file,) = manifest.tables["latest_metrics"]
    found = con.execute(
        f"SELECT r.run_id FROM read_parquet('{tables / runs_file}') r "
        f"JOIN read_parquet('{tables / latest_file}') m ON r.run_id = m.run_id "
        "WHERE m.key = 'loss' AND m.value < 0.2 ORDER BY r.run_id").df()
    assert sorted(found["run_id"]) == sorted(runs["run_id"])


def test_tables_from_before_partitioning_are_rebuilt_once(store):
    """A store compacted by mltrail before issue 14 has `metrics/part-N.parquet`: the next
    compaction rebuilds the tables, so engines can read the history as a hive dataset."""
    with quiet_run(store, "churn") as run:
        run.log_metrics({"loss": 0.5, "auc": 0.7}, step=0)
    store.compact()
    tables = store.layout.tables
    manifest = load_manifest(tables, private=True)
    (part,) = manifest.tables["metrics"]
    (tables / part).rename(tables / "metrics" / "part-00000001.parquet")  # the old layout
    manifest.tables["metrics"] = ["metrics/part-00000001.parquet"]
    commit_manifest(tables, manifest)
    result = store.compact()
    assert result.rebuilt
    assert all(rel.startswith("metrics/experiment=") for rel in load_manifest(tables).tables["metrics"])
    assert not (tables / "metrics" / "part-00000001.parquet").exists()
    assert not store.compact().rebuilt
    count = duckdb.connect().execute(
        f"SELECT count(*) FROM read_parquet('{tables}/metrics/**/*.parquet', hive_partitioning = true)").fetchone()
    assert count == (2,)
