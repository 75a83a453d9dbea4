"""A search's RunData built from its dictionaries is MLflow's own object, or is made by
MLflow's constructor when it would not be."""

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunData, RunTag

from mltrail.mlflow_store import entities


def test_the_installed_mlflow_takes_the_direct_build() -> None:
    # CI runs the lowest and the newest MLflow the package allows: both keep RunData's fields
    entities.run_data_builder.cache_clear()
    assert entities.run_data_builder() is entities.from_dicts


def test_a_searched_run_s_data_equals_the_one_mlflow_s_constructor_makes(client: MlflowClient) -> None:
    experiment = client.create_experiment("e")
    run_id = client.create_run(experiment, tags={"team": "vision"}).info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", 0.5, 1000, 0), Metric("loss", 0.25, 2000, 1),
                                      Metric("acc", 0.75, 2000, 1)],
                     params=[Param("lr", "0.1"), Param("depth", "3")])
    client.set_terminated(run_id)
    [found] = client.search_runs([experiment])
    data = found.data
    rebuilt = RunData(metrics=data._metric_objs, params=[Param(k, v) for k, v in data.params.items()],
                      tags=[RunTag(k, v) for k, v in data.tags.items()])
    assert vars(data) == vars(rebuilt)
    assert data.metrics == {"loss": 0.25, "acc": 0.75}
    assert data.params == {"lr": "0.1", "depth": "3"}
    assert data.tags["team"] == "vision"
    assert data.to_proto() == client.get_run(run_id).data.to_proto()


class _OtherRunData(RunData):
    """An MLflow that keeps its params as objects: setting the dictionaries would be wrong."""

    def __init__(self, metrics=None, params=None, tags=None):
        super().__init__(metrics, params, tags)
        self._param_objs = list(params or [])


def test_an_mlflow_that_keeps_other_fields_gets_its_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entities, "RunData", _OtherRunData)
    entities.run_data_builder.cache_clear()
    try:
        assert not entities.same_object(entities.from_dicts)
        assert entities.run_data_builder() is entities.by_constructor
        built = entities.run_data([Metric("m", 1.0, 0, 0)], {"m": 1.0}, {"p": "1"}, {"t": "v"})
        assert type(built) is _OtherRunData and [p.key for p in built._param_objs] == ["p"]
    finally:
        monkeypatch.undo()
        entities.run_data_builder.cache_clear()


def test_an_mlflow_whose_run_data_refuses_the_fields_gets_its_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    class Sealed(RunData):
        """A RunData whose fields only its constructor may set."""

        def __setattr__(self, name, value):
            if not getattr(self, "_opened", False):
                raise AttributeError(f"{name} is set by the constructor only")
            object.__setattr__(self, name, value)

        def __init__(self, metrics=None, params=None, tags=None):
            object.__setattr__(self, "_opened", True)
            super().__init__(metrics, params, tags)

    monkeypatch.setattr(entities, "RunData", Sealed)
    assert not entities.same_object(entities.from_dicts)


def test_each_searched_run_of_a_mixed_experiment_reads_as_get_run_reads_it(client: MlflowClient) -> None:
    # runs with other params, no params, no metrics, a metric logged at several steps, a
    # deleted run: the search builds their data a page at a time, get_run one run at a time
    experiment = client.create_experiment("mixed")
    made = []
    for i, (params, metrics) in enumerate([({"a": "1"}, [("loss", 0.5, 0), ("loss", 0.25, 3)]),
                                           ({"b": "x y", "a": "2"}, []),
                                           ({}, [("acc", float("nan"), 0), ("acc", float("inf"), 1)]),
                                           ({}, [])]):
        run_id = client.create_run(experiment, run_name=f"r{i}", tags={"k": str(i)} if i % 2 else {}).info.run_id
        client.log_batch(run_id, metrics=[Metric(k, v, 1000 + s, s) for k, v, s in metrics],
                         params=[Param(k, v) for k, v in params.items()])
        client.set_terminated(run_id)
        made.append(run_id)
    client.delete_run(made[3])
    found = {run.info.run_id: run for run in client.search_runs([experiment], run_view_type=3)}
    assert sorted(found) == sorted(made)
    for run_id in made:
        searched, got = found[run_id].data, client.get_run(run_id).data
        assert (searched.params, searched.tags) == (got.params, got.tags)
        assert str(searched.metrics) == str(got.metrics)  # (NaN is not equal to itself)
        assert [(m.key, str(m.value), m.step, m.timestamp) for m in searched._metric_objs] == \
            [(m.key, str(m.value), m.step, m.timestamp) for m in got._metric_objs]
    assert found[made[0]].data.metrics == {"loss": 0.25}
    assert found[made[1]].data.params == {"b": "x y", "a": "2"} and found[made[1]].data.metrics == {}
