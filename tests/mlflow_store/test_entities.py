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
