"""MLflow's client on ``mltrail:``: a metric point measured on a dataset (MLflow 3's
``dataset_name``/``dataset_digest``) comes back from ``get_metric_history`` as MLflow keeps
it, and ``search_runs`` filters on a run's datasets with MLflow's ``datasets.*`` keys."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient
from mlflow.data import from_pandas
from mlflow.entities import Metric

import mltrail

T0 = 1_790_000_000_000


def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"x": [float(i) for i in range(rows)], "y": [i % 2 for i in range(rows)]})


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple]:
    return [(m.key, m.value, m.step, m.timestamp, m.dataset_name, m.dataset_digest)
            for m in client.get_metric_history(run_id, key)]


def test_a_point_s_dataset_comes_back_from_get_metric_history_both_ways_in(client: MlflowClient, tmp_path) -> None:
    train = from_pandas(frame(4), name="wine quality")
    mlflow.set_experiment("datasets")
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.9, step=3, timestamp=T0, dataset=train)  # the fluent API: log_batch
        mlflow.log_metric("acc", 0.8, step=4, timestamp=T0 + 1)
    run_id = run.info.run_id
    client.log_metric(run_id, "loss", 0.5, timestamp=T0 + 2, step=1)  # the client: log_metric, one point
    client.log_batch(run_id, metrics=[Metric("loss", 0.4, T0 + 3, 2, dataset_name="test", dataset_digest="0a1b2c3d")])
    assert history(client, run_id, "acc") == [("acc", 0.9, 3, T0, "wine quality", train.digest),
                                              ("acc", 0.8, 4, T0 + 1, None, None)]
    assert history(client, run_id, "loss") == [("loss", 0.5, 1, T0 + 2, None, None),
                                               ("loss", 0.4, 2, T0 + 3, "test", "0a1b2c3d")]
    points = mltrail.Store(tmp_path / "runs").metric_history([run_id])  # mltrail's reader sees the same
    assert sorted(zip(points["key"], points["step"], points["dataset_name"].fillna(""))) == [
        ("acc", 3, "wine quality"), ("acc", 4, ""), ("loss", 1, ""), ("loss", 2, "test")]


def test_a_dataset_name_no_line_can_hold_is_refused_as_invalid_and_nothing_is_logged(client: MlflowClient) -> None:
    run_id = client.create_run(client.create_experiment("long")).info.run_id
    points = [Metric("acc", 0.5, T0, 0), Metric("acc", 0.6, T0, 1, dataset_name="x" * 501, dataset_digest="d")]
    with pytest.raises(mlflow.exceptions.MlflowException, match="the limit is 500") as raised:
        client.log_batch(run_id, metrics=points)
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_metric_history(run_id, "acc") == []


def test_search_runs_filters_on_a_run_s_datasets_with_mlflow_s_keys(client: MlflowClient) -> None:
    experiment = mlflow.set_experiment("datasets").experiment_id
    train, test = from_pandas(frame(4), name="train"), from_pandas(frame(3), name="test")
    ids = {}
    for name, inputs in (("both", [(train, "training"), (test, "evaluation")]), ("train-only", [(train, None)]),
                         ("none", [])):
        with mlflow.start_run(run_name=name) as run:
            for dataset, context in inputs:
                mlflow.log_input(dataset, context=context)
        ids[run.info.run_id] = name

    def names(filter_string: str) -> list[str]:
        found = client.search_runs([experiment], filter_string)
        assert sorted(r.info.run_id for r in found) == sorted(mlflow.search_runs(
            [experiment], filter_string)["run_id"])  # the fluent API's DataFrame agrees
        return sorted(ids[r.info.run_id] for r in found)

    assert names("datasets.name = 'train'") == ["both", "train-only"]
    assert names(f"datasets.digest = '{test.digest}'") == ["both"]
    assert names("datasets.context = 'training'") == ["both"]
    assert names("datasets.name != 'train'") == ["both"]  # one of its datasets is not named so
    assert names("datasets.name IN ('test', 'other')") == ["both"]
    assert names("datasets.name NOT IN ('train')") == ["both"]
    assert names("datasets.name LIKE 'tr%'") == ["both", "train-only"]
    assert names("datasets.context ILIKE 'EVAL%'") == ["both"]
    assert names("dataset.name = 'test' and attributes.run_name = 'both'") == ["both"]
    # a bare attribute sends the filter through MLflow's own parser first
    assert names("status = 'FINISHED' and datasets.name = 'test'") == ["both"]
    with pytest.raises(mlflow.exceptions.MlflowException, match="profile"):
        client.search_runs([experiment], "datasets.profile = 'x'")


@pytest.mark.slow
def test_through_the_server_s_rest_api_a_point_keeps_its_dataset_and_filters_find_it(tmp_path: Path) -> None:
    from tests.factories import serving_store

    with serving_store(tmp_path / "store") as url:
        mlflow.set_tracking_uri(url)
        experiment = mlflow.set_experiment("served").experiment_id
        train = from_pandas(frame(4), name="train")
        with mlflow.start_run() as run:
            mlflow.log_input(train, context="training")
            mlflow.log_metric("acc", 0.9, step=3, timestamp=T0, dataset=train)
            mlflow.log_metric("acc", 0.8, step=4, timestamp=T0 + 1)
        client = MlflowClient(url)
        assert history(client, run.info.run_id, "acc") == [("acc", 0.9, 3, T0, "train", train.digest),
                                                           ("acc", 0.8, 4, T0 + 1, None, None)]
        found = client.search_runs([experiment],
                                   f"datasets.digest = '{train.digest}' and datasets.context = 'training'")
        assert [r.info.run_id for r in found] == [run.info.run_id]
        assert client.search_runs([experiment], "datasets.name = 'test'") == []
