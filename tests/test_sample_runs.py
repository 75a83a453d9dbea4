"""The committed sample store is real, readable, and listed by `mltrail runs`."""

import json
import shutil

from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from tests.conftest import REPO


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
