"""MLflow's ``RunData`` for a page of search results, built from the dictionaries the
search already holds.

MLflow's constructor takes lists of ``Param`` and ``RunTag`` objects and turns them back
into dictionaries: for a page of 10,000 runs of ten params that is 100,000 objects made to
be thrown away, ~55 ms of a ~0.3 s search. :func:`run_data` sets the dictionaries directly,
but only if doing so gives exactly the object MLflow's constructor gives: that is checked
once a process on a sample (same class, same fields, same values). An MLflow that stores
its data otherwise fails the check, and every ``RunData`` is then made by its constructor.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from mlflow.entities import Metric, Param, RunData, RunTag

RunDataBuilder = Callable[[list[Metric], dict[str, float], dict[str, str], dict[str, str]], RunData]


def by_constructor(metrics: list[Metric], values: dict[str, float], params: dict[str, str],
                   tags: dict[str, str]) -> RunData:
    """MLflow's own way: its constructor, from entity lists (``values`` is not needed)."""
    return RunData(metrics=metrics, params=[Param(k, v) for k, v in params.items()],
                   tags=[RunTag(k, v) for k, v in tags.items()])


def from_dicts(metrics: list[Metric], values: dict[str, float], params: dict[str, str],
               tags: dict[str, str]) -> RunData:
    """The fields MLflow's constructor would set, set directly. ``values`` is each metric
    key's value, the last of ``metrics`` for that key (what the constructor keeps)."""
    data = RunData.__new__(RunData)
    data._metric_objs = metrics
    data._metrics = values
    data._params = params
    data._tags = tags
    return data


def same_object(builder: RunDataBuilder) -> bool:
    """Whether ``builder`` makes what MLflow's constructor makes, on a sample with a repeated
    metric key, params and tags."""
    metrics = [Metric("loss", 0.5, 1, 0), Metric("loss", 0.25, 2, 1), Metric("acc", 0.75, 2, 1)]
    values = {"loss": 0.25, "acc": 0.75}
    params, tags = {"lr": "0.1", "depth": "3"}, {"mlflow.runName": "a", "team": "b"}
    try:
        built = builder(metrics, dict(values), dict(params), dict(tags))
    except (AttributeError, TypeError):  # a RunData with slots or frozen fields: its constructor it is
        return False
    expected = by_constructor(metrics, values, params, tags)
    return type(built) is type(expected) and vars(built) == vars(expected)


@cache
def run_data_builder() -> RunDataBuilder:
    """:func:`from_dicts` where it makes MLflow's own object, else MLflow's constructor."""
    return from_dicts if same_object(from_dicts) else by_constructor


def run_data(metrics: list[Metric], values: dict[str, float], params: dict[str, str],
             tags: dict[str, str]) -> RunData:
    """One run's ``RunData``: ``metrics`` the latest of each key, ``values`` their values by key."""
    return run_data_builder()(metrics, values, params, tags)
