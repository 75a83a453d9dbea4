"""``search_runs`` filters on the datasets a run used, with MLflow's ``datasets.name``,
``datasets.digest`` and ``datasets.context``: a run matches when one of its datasets does,
and a run that used none matches no comparison (only a NOT of one)."""

from __future__ import annotations

import pandas as pd
import pytest

import mltrail
from tests.factories import quiet_run


@pytest.fixture
def runs(store: mltrail.Store) -> dict[str, str]:
    """Three runs: two datasets (one with a context), one, none."""
    made = {}
    for name, inputs in (("both", [("train", "training"), ("test", None)]), ("one", [("train", "training")]),
                         ("none", [])):
        with quiet_run(store, "e", name=name) as run:
            for dataset, context in inputs:
                run.log_dataset(pd.DataFrame({"x": [1, 2, 3] if dataset == "train" else [4]}), name=dataset,
                                context=context)
        made[name] = run.id
    return made


def found(store: mltrail.Store, filter: str) -> list[str]:
    return sorted(store.search_runs(filter=filter)["run_name"])


@pytest.mark.parametrize(("filter", "expected"), [
    ("datasets.name = 'train'", ["both", "one"]),
    ("datasets.name = 'test'", ["both"]),
    ("datasets.name != 'train'", ["both"]),  # one of its datasets is not named train
    ("datasets.name IN ('test', 'x')", ["both"]),
    ("datasets.name NOT IN ('train')", ["both"]),
    ("datasets.name LIKE 't%'", ["both", "one"]),
    ("datasets.name NOT LIKE 'tr%'", ["both"]),
    ("datasets.name ILIKE 'TE_T'", ["both"]),
    ("datasets.context = 'training'", ["both", "one"]),
    ("datasets.context != 'training'", []),  # a dataset without a context matches no comparison
    ("NOT datasets.name = 'test'", ["none", "one"]),
    ("NOT datasets.name LIKE '%'", ["none"]),  # the runs that used no dataset
    ("dataset.name = 'test' OR attributes.run_name = 'none'", ["both", "none"]),
    ("datasets.`name` = 'train' AND datasets.context = 'training' AND attributes.run_name != 'both'", ["one"]),
])
def test_a_run_matches_when_one_of_its_datasets_does(store, runs, filter, expected):
    assert found(store, filter) == expected


def test_the_digest_of_a_dataset_mltrail_logged_is_its_sha256(store, runs):
    rows = store.get_run(runs["one"])["datasets"]
    sha256 = rows["sha256"].item()
    assert found(store, f"datasets.digest = '{sha256}'") == ["both", "one"]
    assert found(store, f"datasets.digest = '{sha256[:8]}'") == []


def test_a_store_whose_runs_used_no_dataset_finds_none(store):
    with quiet_run(store, "e", name="plain") as run:
        run.log_metric("loss", 0.5)
    assert found(store, "datasets.name = 'train'") == []
    assert found(store, "NOT datasets.name = 'train'") == ["plain"]


def test_the_dataset_columns_do_not_show_in_the_answer(store, runs):
    frame = store.search_runs(filter="datasets.name = 'train'")
    assert not [c for c in frame.columns if c.startswith("datasets.")]
    assert not [k for k in store.get_run(runs["both"])["run"] if k.startswith("datasets.")]


@pytest.mark.parametrize(("filter", "message"), [
    ("datasets.profile = 'x'", "datasets.profile is not searchable; a run's datasets are searched by datasets.name"),
    ("datasets.name > 'a'", "takes =, !=, LIKE, ILIKE, IN or NOT IN, not >"),
    ("datasets.name = 3", "must be compared with quoted text"),
    ("datasets.digest IN ('a', 3)", "must be compared with quoted text"),
    ("datasets.name IS NULL", "the runs that used no dataset: NOT datasets.name LIKE '%'"),
])
def test_a_dataset_comparison_mlflow_does_not_take_is_refused_saying_what_it_takes(store, runs, filter, message):
    with pytest.raises(mltrail.FilterSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        store.search_runs(filter=filter)
