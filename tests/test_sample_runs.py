"""The committed sample store is real, readable, and listed by `mltrail runs`."""

import json
import shutil

import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from tests.factories import REPO


def test_sample_store_holds_real_runs(tmp_path):
    copy = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", copy, ignore=shutil.ignore_patterns(".cache"))
    store = mltrail.Store(copy)
    result = store.compact()
    assert result.lines_skipped == 0
    runs = store.search_runs()
    assert runs["experiment"].nunique() >= 2 and len(runs) >= 6
    assert "FAILED" in set(runs["status"])
    finished = runs[runs["status"] == "FINISHED"]
    assert finished["metrics.val/auc"].between(0.5, 1.0).all()
    history = store.metric_history(run_ids=list(finished["run_id"]), keys=["val/loss"])
    assert history.groupby("run_id").size().min() >= 5  # metrics per epoch, not one number
    best = store.get_run(finished.iloc[0]["run_id"])
    assert not best["params"].empty and set(best["params"]["group"]) == {"model", "data"}
    assert list(best["artifacts"]["path"]) == ["model.pkl"]
    assert best["datasets"].iloc[0]["rows"] == 2000
    listing = CliRunner().invoke(main, ["runs", "--json", "--store", str(copy)])
    assert listing.exit_code == 0 and len(json.loads(listing.output)) == len(runs)


@pytest.mark.slow
def test_sample_script_is_deterministic(tmp_path):
    """Same script, same events apart from IDs and times: run it twice and compare."""
    import subprocess
    import sys

    stores = []
    for name in ("one", "two"):
        root = tmp_path / name
        done = subprocess.run([sys.executable, str(REPO / "sample_runs" / "make_samples.py"),
                               "--store", str(root)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        stores.append(mltrail.Store(root))

    def content(store):
        runs = store.search_runs().sort_values(["experiment", "run_name"])
        facts = runs.drop(columns=["run_id", "start_time", "end_time"]).reset_index(drop=True)
        history = store.metric_history().merge(runs[["run_id", "run_name"]], on="run_id")
        points = history.drop(columns=["run_id", "timestamp"]).sort_values(
            ["run_name", "key", "step"]).reset_index(drop=True)
        artifacts = sorted((store.get_run(r)["artifacts"]["sha256"].tolist() for r in runs["run_id"]))
        return facts, points, artifacts

    first, second = content(stores[0]), content(stores[1])
    import pandas as pd

    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])
    assert first[2] == second[2]  # the pickled models too, byte for byte


@pytest.mark.slow
def test_sample_ab_experiment_results_print_on_the_cli(tmp_path):
    copy = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", copy, ignore=shutil.ignore_patterns(".cache"))
    result = CliRunner().invoke(main, ["ab", "results", "churn-offer-v2", "--json", "--store", str(copy)])
    assert result.exit_code == 0, result.output
    page = json.loads(result.output)
    assert not page["srm_alarm"] and page["crossover_units"] == 0
    assert sum(page["units"].values()) == 4_000
    # stopped with its decision; the data agree (true rates 13% against 10%)
    assert page["state"] == "stopped" and page["recommendation"].startswith("Stopped: treatment won")
    assert "treatment retained +" in page["recommendation"] and ", significant)" in page["recommendation"]
    table = CliRunner().invoke(main, ["ab", "results", "churn-offer-v2", "--store", str(copy)])
    assert "split OK" in table.output and "retained" in table.output


def test_sample_registry_holds_the_promoted_churn_model(tmp_path):
    copy = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", copy, ignore=shutil.ignore_patterns(".cache"))
    registry = mltrail.Store(copy).registry
    versions = registry.versions("churn")
    assert list(versions["run_name"]) == ["logreg-C1", "gb-lr0.2"]
    moves = registry.alias_history("churn", "production")
    assert list(moves["to_version"]) == [1, 2]  # set once, moved once: by the A/B promotion
    assert moves.iloc[-1]["experiment"] == "churn-offer-v2"
    assert hasattr(mltrail.load_model("models:/churn@production", mltrail.Store(copy)), "predict_proba")
    listing = CliRunner().invoke(main, ["ab", "list", "--store", str(copy)])
    assert listing.exit_code == 0 and "churn-offer-timing" in listing.output and "stopped" in listing.output


def test_sample_runs_record_the_training_set_the_feature_store_built(tmp_path):
    copy = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", copy, ignore=shutil.ignore_patterns(".cache"))
    store = mltrail.Store(copy)
    saved = store.features.datasets().set_index("dataset").loc["churn_training"]
    for name in ("logreg-C1", "gb-lr0.2", "billing-only"):
        datasets = store.get_run(name)["datasets"].set_index("name")
        assert datasets.loc["churn_training", "sha256"] == saved["sha256"]
    train = store.features.load_dataset("churn_training")
    entity = train.drop(columns=["support_calls", "late_payments"]).rename(columns={"label_time": "event_timestamp"})
    again = store.features.get_historical_features(
        entity, ["customer_activity:support_calls", "customer_activity:late_payments"], as_known_then=True)
    assert list(again["support_calls"]) == list(train["support_calls"])  # reproducible from the definitions
