"""MLflow 3 metric points name the dataset they were measured on, and an import keeps the
link: from an ``mlruns`` folder's lines (``timestamp value step name digest``, which MLflow
3 writes for every autologged metric) and from MLflow's client."""

from __future__ import annotations

from pathlib import Path

import pytest

import mltrail

from .mlruns import MlrunsBuilder

T0 = 1_700_000_100_000  # ms


def points_of(store: mltrail.Store, mlflow_run: str) -> list[tuple]:
    runs = store.search_runs(view="all")
    run_id = runs.loc[runs["tags.mlflow.run_id"] == mlflow_run, "run_id"].item()
    frame = store.metric_history([run_id])
    return sorted((r.key, int(r.timestamp.value // 1_000_000), r.value, r.step,
                   r.dataset_name if isinstance(r.dataset_name, str) else None,
                   r.dataset_digest if isinstance(r.dataset_digest, str) else None) for r in frame.itertuples())


@pytest.fixture
def mlruns(tmp_path: Path) -> MlrunsBuilder:
    builder = MlrunsBuilder(tmp_path / "mlruns")
    builder.experiment("17", "autolog")
    builder.run("17", "a" * 32, name="fit", params={"C": "1.0"}, metrics={
        "training_score": [(T0, 0.925, 0, "dataset", "c80d85f6")],
        "acc": [(T0 + 1, 0.9, 3, "wine quality", "c48e5fcd"),  # a name with a space, as MLflow writes it
                (T0 + 2, 0.8, 4, "dataset", "c80d85f6"), (T0 + 3, 0.7, 5)],  # and a point with none
    })
    builder.run("17", "b" * 32, name="plain", start_ms=T0 + 1000, metrics={"loss": [(T0 + 1000, 0.5, 0)]})
    return builder


FIT_POINTS = sorted([
    ("acc", T0 + 1, 0.9, 3, "wine quality", "c48e5fcd"), ("acc", T0 + 2, 0.8, 4, "dataset", "c80d85f6"),
    ("acc", T0 + 3, 0.7, 5, None, None), ("training_score", T0, 0.925, 0, "dataset", "c80d85f6"),
])


def test_mlflow_3_metric_lines_import_every_point_with_its_dataset(store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    summary = store.import_mlflow(mlruns.root)
    assert (summary.runs_new, [s for s in summary.skipped if s.what == "run"]) == (2, [])
    assert summary.points == 5
    assert points_of(store, "a" * 32) == FIT_POINTS
    assert points_of(store, "b" * 32) == [("loss", T0 + 1000, 0.5, 0, None, None)]


def test_importing_again_adds_no_point_and_a_new_linked_point_is_all_that_is_added(
        store: mltrail.Store, mlruns: MlrunsBuilder) -> None:
    store.import_mlflow(mlruns.root)
    again = store.import_mlflow(mlruns.root)
    assert (again.runs_unchanged, again.points) == (2, 0)
    # the same time, step and value on another dataset is another point, as in MLflow
    mlruns.append_points("17", "a" * 32, "acc", [(T0 + 1, 0.9, 3, "test", "0a1b2c3d")])
    third = store.import_mlflow(mlruns.root)
    assert (third.runs_updated, third.points) == (1, 1)
    assert points_of(store, "a" * 32) == sorted([*FIT_POINTS, ("acc", T0 + 1, 0.9, 3, "test", "0a1b2c3d")])


@pytest.mark.parametrize("line", [
    f"{T0} 0.5 1 dataset",  # four fields: a name without its digest
    f"{T0}\t0.5\t1\tdataset\tc80d85f6",  # fields apart by tabs: not MLflow's writing
    f"{T0} 0.5 1 {'x' * 501} c80d85f6",  # a name longer than MLflow's
])
def test_a_metric_line_mlflow_never_writes_still_skips_its_run_and_says_what_mlflow_writes(
        store: mltrail.Store, mlruns: MlrunsBuilder, line: str) -> None:
    bad = mlruns.run("17", "e" * 32, name="bad", metrics={"loss": [(T0, 0.5, 0)]})
    with open(bad / "metrics" / "loss", "a") as handle:
        handle.write(line + "\n")
    summary = store.import_mlflow(mlruns.root)
    [skipped] = [s for s in summary.skipped if s.what == "run"]
    assert skipped.where == f"{bad / 'metrics' / 'loss'}:2"
    assert ("timestamp value step dataset_name dataset_digest" in skipped.reason
            or "the limit is 500" in skipped.reason), skipped.reason
    assert summary.runs_new == 2


@pytest.mark.slow
def test_through_mlflow_s_client_a_point_keeps_the_dataset_mlflow_gives_it(
        tmp_path: Path, mlruns: MlrunsBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's client answers ``get_metric_history`` with its Metric entities, which carry
    the dataset. (MLflow's file store reads such a point's step as 0, and cannot read a
    name with a space at all: that run is left out of this one.)"""
    pytest.importorskip("mlflow")
    import warnings

    from mltrail.migration.mlflow_import import MlflowImport
    from mltrail.migration.mlflow_source import ClientSource

    mlruns.run("17", "c" * 32, name="clean", start_ms=T0 + 2000, params={"p": "1"}, artifacts={"a.txt": b"a"},
               metrics={"acc": [(T0 + 2001, 0.6, 7, "dataset", "c80d85f6"), (T0 + 2002, 0.5, 8)]})
    for run_id in ("a" * 32, "b" * 32):  # the name with a space: MLflow's own reader fails on it
        (mlruns.experiments["17"] / run_id / "meta.yaml").unlink()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = mltrail.Store(tmp_path / "client")
    with warnings.catch_warnings():  # MLflow's own deprecation warnings
        warnings.simplefilter("ignore")
        MlflowImport(store.tracking, store.registry, ClientSource(f"file:{mlruns.root}")).run()
    assert points_of(store, "c" * 32) == [("acc", T0 + 2001, 0.6, 0, "dataset", "c80d85f6"),
                                          ("acc", T0 + 2002, 0.5, 8, None, None)]


def test_the_mltrail_mlflow_module_keeps_the_dataset_a_point_was_measured_on(tmp_path: Path) -> None:
    """``mltrail.mlflow`` (for machines without MLflow) takes MLflow 3's ``dataset=`` too:
    anything with a name and a digest, as MLflow's datasets have."""
    from types import SimpleNamespace

    from mltrail import mlflow as shim

    shim.set_tracking_uri(tmp_path / "store")
    train = SimpleNamespace(name="train", digest="c80d85f6")
    with shim.start_run() as run:
        shim.log_metric("acc", 0.9, step=1, timestamp=T0, dataset=train)
        shim.log_metrics({"f1": 0.8}, step=1, timestamp=T0, dataset=train)
        shim.log_metric("loss", 0.2, step=1, timestamp=T0)
    frame = mltrail.Store(tmp_path / "store").metric_history([run.info.run_id])
    assert sorted(zip(frame["key"], frame["dataset_name"].fillna(""), frame["dataset_digest"].fillna(""))) == [
        ("acc", "train", "c80d85f6"), ("f1", "train", "c80d85f6"), ("loss", "", "")]


@pytest.mark.parametrize("text", [
    "1700000000000 0.5 0\n1700000000001 nan 1\n1700000000002 inf -2\n1700000000003 -inf 3\n",  # by column
    "1700000000000 0.5 0\n1700000000001 0.25\n",  # a line without a step (MLflow 1): line by line
    "1700000000000 0.5 0\n\n1700000000001 0.25 1\n",  # a blank line
    "1700000000000 0.5 0\r\n1700000000001 0.25 1\r\n",  # written on Windows
    "1700000000000 0.5 0\n1700000000001 0.25 1 eval d1g3st\n",  # a point on a dataset among plain ones
    "1700000000000 0.5 0",  # no newline at the end
])
def test_a_metric_file_read_by_column_or_line_by_line_gives_the_same_points(tmp_path: Path, text: str) -> None:
    from mltrail.migration import mlflow_source

    path = tmp_path / "loss"
    path.write_bytes(text.encode())
    by_line = []
    for line in text.splitlines():
        if line.strip():
            timestamp, value, step, dataset = mlflow_source._metric_line(line)
            by_line.append(mlflow_source.Point(timestamp, value, step, *dataset))
    read = mlflow_source._metric_file(path)
    assert [(p.timestamp_ms, str(p.value), p.step, p.dataset_name, p.dataset_digest) for p in read] == \
        [(p.timestamp_ms, str(p.value), p.step, p.dataset_name, p.dataset_digest) for p in by_line]
