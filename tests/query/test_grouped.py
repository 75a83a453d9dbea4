"""Grouped curves (Store.grouped_history): per group of runs, the mean at each x with a
band, equal to what a direct pandas computation over metric_history gives."""

from __future__ import annotations

import dataclasses
import math
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

import mltrail
from mltrail.compaction import buckets
from mltrail.compaction import compact as compact_module
from mltrail.compaction.manifest import commit_manifest, load_manifest
from mltrail.dashboard.views import smooth
from mltrail.errors import InvalidInputError
from mltrail.query.grouped import grouped_history
from tests.factories import quiet_run

SEEDS = 50  # runs a group
GROUPS = {"lr=0.1": 0.1, "lr=0.03": 0.03, "lr=0.01": 0.01, "lr=0.003": 0.003}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[mltrail.Store, dict[str, str]]:
    """200 runs in 4 groups; runs log different numbers of steps, and run 7 a NaN."""
    store = mltrail.Store(tmp_path_factory.mktemp("grouped") / "store")
    rng = np.random.default_rng(7)
    groups = {}
    t0 = 1_790_000_000.0
    for i in range(SEEDS * len(GROUPS)):
        label, lr = list(GROUPS.items())[i % len(GROUPS)]
        with quiet_run(store, "sweep", name=f"seed-{i}") as run:
            run.log_params({"lr": lr, "seed": i})
            for step in range(20 + i % 5):  # (some runs are ahead of others)
                loss = float(np.exp(-lr * 30 * step) + rng.normal(0, 0.02))
                run.log_metric("loss", math.nan if (i, step) == (7, 3) else loss, step=step,
                               timestamp=t0 + i + step * 2.0)
                run.log_metric("acc", 1 - loss, step=step, timestamp=t0 + i + step * 2.0)
        groups[run.id] = label
    return store, groups


def direct(store: mltrail.Store, groups: dict[str, str], key: str, weight: float = 0.0) -> pd.DataFrame:
    """The group statistics by pandas, from every point (none averaged beforehand)."""
    history = store.metric_history(list(groups), [key])
    history = history[np.isfinite(history["value"])]
    history = smooth(history, weight).assign(group=lambda d: d["run_id"].map(groups))
    return (history.groupby(["group", "step"])["value"].agg(["mean", "std", "min", "max", "size"])
            .reset_index().sort_values(["group", "step"]).reset_index(drop=True))


def ours(store: mltrail.Store, groups: dict[str, str], key: str, **options: object) -> pd.DataFrame:
    return store.grouped_history(groups, [key], **options).sort_values(["group", "x"]).reset_index(drop=True)


def test_each_group_is_its_runs_mean_with_a_band_as_pandas_computes_it(sweep) -> None:
    store, groups = sweep
    expected = direct(store, groups, "loss")
    std = ours(store, groups, "loss")
    assert set(std["group"]) == set(GROUPS) and len(std) == len(expected)
    assert list(std["x"]) == list(expected["step"].astype(float))
    np.testing.assert_allclose(std["mean"], expected["mean"])
    np.testing.assert_allclose(std["high"] - std["mean"], expected["std"].fillna(0.0))
    np.testing.assert_allclose(std["mean"] - std["low"], expected["std"].fillna(0.0))
    assert list(std["runs"]) == list(expected["size"])
    minmax = ours(store, groups, "loss", band="minmax")
    np.testing.assert_allclose(minmax["low"], expected["min"])
    np.testing.assert_allclose(minmax["high"], expected["max"])
    ci = ours(store, groups, "loss", band="ci")
    half = stats.t.ppf(0.975, expected["size"] - 1) * expected["std"] / np.sqrt(expected["size"])
    np.testing.assert_allclose(ci["high"] - ci["mean"], half)


def test_a_nan_is_left_out_of_its_group_not_spread_over_it(sweep) -> None:
    store, groups = sweep
    frame = ours(store, groups, "loss")
    nan_group = groups[next(r for r, i in zip(groups, range(len(groups))) if i == 7)]
    at_3 = frame[(frame["group"] == nan_group) & (frame["x"] == 3)].iloc[0]
    assert at_3["runs"] == SEEDS - 1 and np.isfinite(at_3["mean"])


def test_smoothing_is_each_run_s_before_the_runs_are_aggregated(sweep) -> None:
    store, groups = sweep
    expected = direct(store, groups, "acc", weight=0.8)
    smoothed = ours(store, groups, "acc", smoothing=0.8)
    np.testing.assert_allclose(smoothed["mean"], expected["mean"])
    np.testing.assert_allclose(smoothed["high"] - smoothed["mean"], expected["std"].fillna(0.0))


def test_many_steps_come_back_as_at_most_points_buckets_of_each_run_s_mean(store) -> None:
    groups = {}
    for i in range(6):
        with quiet_run(store, "long", name=f"r{i}") as run:
            for step in range(1000):
                run.log_metric("loss", float(i + step), step=step)
        groups[run.id] = "even" if i % 2 == 0 else "odd"
    frame = ours(store, groups, "loss", points=100)
    # buckets of 2**k steps aligned at 0, the fewest that keep 1,000 steps in 100: 16 steps
    assert len(frame) == 2 * 63  # steps 0-15 a bucket, 16-31 the next, ..., 992-999
    history = store.metric_history(list(groups), ["loss"]).assign(
        group=lambda d: d["run_id"].map(groups), bucket=lambda d: d["step"] // 16)
    per_run = history.groupby(["group", "run_id", "bucket"])[["step", "value"]].mean().reset_index()
    expected = per_run.groupby(["group", "bucket"])[["step", "value"]].mean().reset_index()
    np.testing.assert_allclose(frame["x"], expected["step"])
    np.testing.assert_allclose(frame["mean"], expected["value"])
    assert len(ours(store, groups, "loss", points=5_000)) == 2 * 1000  # no more buckets than steps


def by_points(store: mltrail.Store, groups: dict[str, str], keys: list[str], **options: object) -> pd.DataFrame:
    """The same call computed from the points, not from compaction's bucket sums."""
    manifest = load_manifest(store.tracking.layout.tables)
    without = dataclasses.replace(manifest, tables={name: files for name, files in manifest.tables.items()
                                                    if name != buckets.FOLDER})
    return grouped_history(store.tracking.layout.tables, without, groups, keys, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("without_some", [False, True])
def test_bucket_sums_give_the_frame_the_points_give(store, monkeypatch, without_some) -> None:
    """Runs whose points arrive over many compactions (each part summed at its own level;
    or some parts' sums lost, their points read instead), parts merged, steps negative and
    at int64's ends, non-finite values: the sums give what the points give, for every band,
    smoothing and number of buckets."""
    monkeypatch.setattr(compact_module, "MAX_METRIC_PARTS", 3)  # merges after a few refreshes
    rng = np.random.default_rng(11)
    live = [quiet_run(store, "sums", name=f"live-{i}") for i in range(4)]
    groups = {run.id: f"g{i % 2}" for i, run in enumerate(live)}
    for refresh in range(6):
        for i, run in enumerate(live):
            first = refresh * 700 - 300 * i
            steps = np.sort(rng.choice(np.arange(first, first + 700), size=120, replace=False))
            for step in steps.tolist():
                value = float(rng.normal()) if rng.random() > 0.02 else float(rng.choice([math.nan, math.inf]))
                run.log_metric("loss", value, step=step)
                run.log_metric("acc", float(rng.random()), step=step // 3)
            run.flush()
        store.compact()
    with quiet_run(store, "sums", name="far apart") as run:  # a span int64 itself cannot hold
        for step in (-(2**63), -5, 0, 7, 2**62, 2**63 - 1):
            run.log_metric("loss", float(step % 13), step=step)
    groups[run.id] = "g0"
    store.compact()
    tables = store.tracking.layout.tables
    manifest = load_manifest(tables)
    levels = {level for rel in manifest.tables[buckets.FOLDER]
              for level in pq.read_table(tables / rel, columns=["level"])["level"].to_pylist()}
    assert len(levels) >= 3  # parts of one refresh, merged parts, the far-apart run's
    assert len(manifest.tables[buckets.FOLDER]) == len(manifest.tables["metrics"])
    if without_some:  # (as if lost: those parts' points are read instead)
        manifest.tables[buckets.FOLDER] = manifest.tables[buckets.FOLDER][::2]
        commit_manifest(tables, manifest)  # (nothing new to compact: it stays so)
    for options in ({}, {"band": "minmax"}, {"band": "ci", "smoothing": 0.6}, {"points": 7}, {"points": 1},
                    {"points": 1024}):
        sums = store.grouped_history(groups, ["loss", "acc"], **options)  # type: ignore[arg-type]
        assert len(sums) > 0
        pd.testing.assert_frame_equal(sums, by_points(store, groups, ["loss", "acc"], **options), rtol=1e-9)
    for run in live:
        run.end()


def test_a_store_compacted_before_the_sums_were_kept_gets_them_at_its_next_compaction(sweep, tmp_path,
                                                                                   monkeypatch) -> None:
    source, groups = sweep
    root = tmp_path / "old"
    shutil.copytree(source.root, root)
    mltrail.Store(root).compact()  # (whichever tests ran before, on this worker or not)
    tables = root / ".cache" / "tables"
    manifest = load_manifest(tables)
    del manifest.tables[buckets.FOLDER]  # as a store compacted by an earlier version lists them
    commit_manifest(tables, manifest)
    shutil.rmtree(tables / buckets.FOLDER, ignore_errors=True)
    store = mltrail.Store(root)
    result = store.compact()  # nothing new to read, but sums to write
    assert result.tables_written == [buckets.FOLDER]
    assert len(load_manifest(tables).tables[buckets.FOLDER]) == len(load_manifest(tables).tables["metrics"])
    pd.testing.assert_frame_equal(store.grouped_history(groups, ["loss"]), by_points(store, groups, ["loss"]))
    assert store.compact().tables_written == []


def test_x_by_time_is_seconds_since_each_run_s_first_point(sweep) -> None:
    store, groups = sweep
    frame = ours(store, groups, "loss", x="time", points=5_000)
    by_step = ours(store, groups, "loss")  # every run logs a step each 2 s from its first
    np.testing.assert_allclose(frame["x"], by_step["x"] * 2.0)
    np.testing.assert_allclose(frame["mean"], by_step["mean"])


def test_groups_keep_the_order_given_and_a_run_without_the_metric_adds_nothing(sweep, store) -> None:
    big, groups = sweep
    frame = big.grouped_history(groups, ["loss", "acc"])
    assert list(dict.fromkeys(frame["key"])) == ["acc", "loss"]
    assert list(dict.fromkeys(frame["group"])) == list(GROUPS)
    # (equal to rounding: DuckDB's parallel sums may add in another order)
    pd.testing.assert_frame_equal(big.grouped_history({**groups, "0" * 26: "nobody"}, ["loss"]),
                                  big.grouped_history(groups, ["loss"]))
    with quiet_run(store, "nothing logged"):
        pass
    for empty in (store.grouped_history(groups, ["loss"]), big.grouped_history({}, ["loss"]),
                  big.grouped_history(groups, ["no-such-metric"]), big.grouped_history(groups, [])):
        assert empty.empty and list(empty.columns) == ["key", "group", "x", "mean", "low", "high", "runs"]


@pytest.mark.parametrize("options,message", [
    ({"x": "epoch"}, "x must be one of step, time, not 'epoch'"),
    ({"band": "iqr"}, "band must be one of std, minmax, ci, not 'iqr'"),
    ({"smoothing": 1.0}, r"smoothing must be in \[0, 1\), not 1.0"),
    ({"points": 0}, "points must be from 1 to 5,000, not 0"),
])
def test_bad_options_say_what_is_allowed(store, options, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        store.grouped_history({"r": "g"}, ["loss"], **options)


@pytest.mark.slow
def test_through_a_server_the_same_frame_and_the_same_refusals(sweep, tmp_path) -> None:
    from tests.factories import serving_store

    store, groups = sweep
    with serving_store(store.root) as url:
        remote = mltrail.Store(url, spool=tmp_path / "spool")
        try:
            for options in ({}, {"band": "ci", "smoothing": 0.5}, {"x": "time", "points": 10}):
                pd.testing.assert_frame_equal(remote.grouped_history(groups, ["loss", "acc"], **options),
                                              store.grouped_history(groups, ["loss", "acc"], **options))
            with pytest.raises(InvalidInputError, match="band"):
                remote.grouped_history(groups, ["loss"], band="iqr")  # type: ignore[arg-type]
        finally:
            remote.close(wait=5)
