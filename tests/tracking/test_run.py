import math
import subprocess

import pandas as pd
import pytest

import mltrail
from mltrail import InvalidKeyError, InvalidMetricValueError, ParamChangedError, RunStateError
from tests.factories import quiet_run, wait_for


def _lines(run) -> int:
    return run.path.read_bytes().count(b"\n") if run.path.exists() else 0


def test_the_issue_example_round_trips(store, tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"pickled model")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    with store.start_run(experiment="churn_model_mlops", experiment_description="churn model study",
                         name="model-A", description="baseline", tags={"team": "growth"}) as run:
        run.log_params({"C": 1.0, "penalty": "l2"}, group="logistic_param")
        run.log_param("seed", 42)
        run.log_metric("f1", 0.81, step=1)
        run.log_metrics({"loss": 0.3, "acc": 0.9}, step=1)
        run.log_metric("f1", 0.85, step=2, best=True)
        run.set_tag("stage", "baseline")
        run.log_artifact(tmp_path / "model.pkl")
        run.log_dataset(tmp_path / "data" / "train.csv", name="train")
    assert (run.name, run.status) == ("model-A", "FINISHED")
    result = store.compact()
    assert result.events_read > 0 and result.lines_skipped == 0
    df = store.search_runs(experiment="churn_model_mlops",
                           filter="metrics.f1 > 0.8 and params.C = '1.0'",
                           order_by=["metrics.f1 DESC"])
    assert list(df.columns[:6]) == ["run_id", "experiment", "run_name", "status", "start_time", "end_time"]
    row = df.iloc[0]
    assert row["run_id"] == run.id and row["metrics.f1"] == 0.85 and row["params.penalty"] == "l2"
    assert row["tags.team"] == "growth" and row["tags.stage"] == "baseline"
    assert row["params.seed"] == "42"
    details = store.get_run(run.id)
    groups = dict(zip(details["params"]["key"], details["params"]["group"]))
    assert groups["C"] == "logistic_param" and pd.isna(groups["seed"])
    art = details["artifacts"].iloc[0]
    assert art["path"] == "model.pkl" and art["size"] == len(b"pickled model")
    assert store.artifact_path(run.id, "model.pkl").read_bytes() == b"pickled model"
    ds = details["datasets"].iloc[0]
    assert (ds["name"], ds["rows"], list(ds["columns"])) == ("train", 3, ["a", "b"])
    f1 = details["metrics"].set_index("key").loc["f1"]
    assert f1["best_value"] == 0.85 and f1["count"] == 2
    hist = store.metric_history(run_ids=[run.id])
    assert sorted(zip(hist["key"], hist["step"], hist["value"])) == [
        ("acc", 1, 0.9), ("f1", 1, 0.81), ("f1", 2, 0.85), ("loss", 1, 0.3)]
    assert store.experiments().iloc[0]["description"] == "churn model study"


def test_default_names_and_suffixes(store):
    names = []
    for requested in (None, None, "model-A", "model-A", None):
        with quiet_run(store, "exp", name=requested) as run:
            names.append((run.number, run.name))
    assert names == [(1, "exp_1"), (2, "exp_2"), (3, "model-A"), (4, "model-A_2"), (5, "exp_5")]
    df = store.search_runs(order_by=["attributes.start_time ASC"])
    assert list(df["run_name"]) == [n for _, n in names]


def test_failed_run_records_error_and_reraises(store):
    with pytest.raises(ZeroDivisionError):
        with quiet_run(store) as run:
            run.log_metric("x", 1.0)
            1 / 0
    assert run.status == "FAILED"
    info = store.get_run(run.id)["run"]
    assert info["status"] == "FAILED" and "ZeroDivisionError" in info["error"]


def test_keyboard_interrupt_marks_killed(store):
    with pytest.raises(KeyboardInterrupt):
        with quiet_run(store) as run:
            raise KeyboardInterrupt
    assert store.get_run(run.id)["run"]["status"] == "KILLED"


def test_param_cannot_silently_change(store):
    with quiet_run(store) as run:
        run.log_param("lr", 0.1)
        run.log_param("lr", 0.1)  # same value: fine, and not written twice
        run.flush()
        before = _lines(run)
        with pytest.raises(ParamChangedError, match="'lr' is already '0.1'"):
            run.log_params({"new": 1, "lr": 0.2})
        run.flush()
        assert _lines(run) == before
    params = store.get_run(run.id)["params"]
    assert list(params["key"]) == ["lr"]  # "new" was not written either


@pytest.mark.parametrize("value", ["0.5", None, True, [1.0], object()])
def test_non_numeric_metric_is_rejected_and_nothing_written(store, value):
    with quiet_run(store) as run:
        run.flush()
        size = run.path.stat().st_size
        with pytest.raises(InvalidMetricValueError) as err:
            run.log_metric("acc", value)
        assert err.value.key == "acc"
        run.flush()
        assert run.path.stat().st_size == size


@pytest.mark.parametrize("key", ["", "..", "a/./b", "x" * 251])
def test_bad_keys_are_rejected_everywhere(store, key):
    with quiet_run(store) as run:
        for call in (lambda: run.log_metric(key, 1.0), lambda: run.log_param(key, 1),
                     lambda: run.set_tag(key, "v"), lambda: run.log_metrics({"ok": 1.0, key: 2.0})):
            with pytest.raises(InvalidKeyError):
                call()
    assert "metrics.ok" not in store.search_runs().columns  # log_metrics checked all first


def test_nan_and_infinities_round_trip(store):
    with quiet_run(store) as run:
        for step, value in enumerate([math.nan, math.inf, -math.inf, 1.5]):
            run.log_metric("m", value, step=step)
    hist = store.metric_history(run_ids=[run.id])
    values = list(hist["value"])
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 1.5]


def test_a_metric_logged_only_as_nan_keeps_its_column(store):
    with quiet_run(store) as run:
        run.log_metric("loss", math.nan)
    row = store.search_runs().iloc[0]
    assert "metrics.loss" in row.index and math.isnan(row["metrics.loss"])


def test_unicode_everywhere(store):
    with quiet_run(store, "流失模型研究", name="模型-α", description="描述") as run:
        run.log_param("优化器", "亚当")
        run.log_metric("准确率", 0.9)
        run.set_tag("团队", "增长")
    df = store.search_runs(experiment="流失模型研究", filter="params.优化器 = '亚当'")
    assert list(df["run_name"]) == ["模型-α"]
    assert df.iloc[0]["metrics.准确率"] == 0.9 and df.iloc[0]["tags.团队"] == "增长"


def test_log_metric_does_not_write_until_flush(store):
    run = quiet_run(store)
    run.flush()
    size = run.path.stat().st_size
    for i in range(1000):
        run.log_metric("loss", 1.0 / (i + 1))
    assert run.path.stat().st_size == size  # buffered: no write per call
    run.flush()
    assert run.path.stat().st_size > size
    run.end()


def test_buffer_flushes_itself_by_size(store, monkeypatch):
    monkeypatch.setenv("MLTRAIL_FLUSH_EVENTS", "100")
    run = quiet_run(store)
    size = run.path.stat().st_size
    for i in range(150):
        run.log_metric("loss", float(i))
    assert run.path.stat().st_size > size
    run.end()


def test_background_flush_by_time_and_heartbeat(store, monkeypatch):
    monkeypatch.setenv("MLTRAIL_FLUSH_SECONDS", "0.05")
    monkeypatch.setenv("MLTRAIL_HEARTBEAT_SECONDS", "0.1")
    run = quiet_run(store)
    size = run.path.stat().st_size
    run.log_metric("loss", 1.0)
    wait_for(lambda: run.path.stat().st_size > size, timeout=10, what="the background flusher to write")
    wait_for(lambda: b"heartbeat" in run.path.read_bytes(), timeout=10, what="a heartbeat")
    run.end()


def test_logging_after_end_is_an_error(store):
    with quiet_run(store) as run:
        pass
    with pytest.raises(RunStateError):
        run.log_metric("x", 1.0)
    with pytest.raises(RunStateError):
        run.log_param("x", 1)


def test_auto_step_counts_from_zero_per_key(store):
    with quiet_run(store) as run:
        for v in (3.0, 2.0, 1.0):
            run.log_metric("loss", v)
        run.log_metric("acc", 0.5)
    hist = store.metric_history(run_ids=[run.id])
    assert list(hist[hist.key == "loss"]["step"]) == [0, 1, 2]
    assert list(hist[hist.key == "acc"]["step"]) == [0]
    assert store.search_runs().iloc[0]["metrics.loss"] == 1.0


def test_latest_value_is_the_highest_step_not_the_last_logged(store):
    with quiet_run(store) as run:
        run.log_metric("loss", 0.1, step=10)
        run.log_metric("loss", 0.9, step=2)
    assert store.search_runs().iloc[0]["metrics.loss"] == 0.1


def test_artifact_folder_and_large_artifacts(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_GIT_ARTIFACT_MAX", "10")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("small")
    (folder / "sub" / "b.txt").write_text("larger than ten bytes")
    with quiet_run(store) as run:
        assert run.log_artifact(folder) == ["plots/a.txt", "plots/sub/b.txt"]
    arts = store.get_run(run.id)["artifacts"].set_index("path")
    assert bool(arts.loc["plots/a.txt", "in_git"]) and not bool(arts.loc["plots/sub/b.txt", "in_git"])
    assert "blobs-large" in str(store.artifact_path(run.id, "plots/sub/b.txt"))
    assert "/blobs-large/" in (store.root / ".gitignore").read_text()


def test_artifact_and_dataset_times_are_when_they_were_logged(store, tmp_path):
    import pandas as pd

    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    before = pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=1)
    with quiet_run(store) as run:
        run.log_artifact(data, name="train.csv")
        run.log_dataset(data, name="train")
    details = store.get_run(run.id)
    after = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=1)
    for table in (details["artifacts"], details["datasets"]):  # not January 1970
        assert before <= table["timestamp"].iloc[0] <= after


def test_module_level_api_uses_the_default_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_DIR", str(tmp_path / "env_store"))
    with pytest.raises(RunStateError, match="no active run"):
        mltrail.log_metric("x", 1.0)
    with mltrail.start_run("fluent", log_git=False, log_packages=False) as run:
        mltrail.log_param("a", 1)
        mltrail.log_metric("x", 2.0)
        mltrail.set_tag("t", "v")
        assert mltrail.active_run() is run
    assert mltrail.active_run() is None
    df = mltrail.search_runs(filter="params.a = 1 and metrics.x = 2")
    assert list(df["run_id"]) == [run.id]
    assert (tmp_path / "env_store" / "experiments").is_dir()


def test_default_store_folder_is_in_the_working_directory(tmp_path):
    assert mltrail.Store().root == tmp_path / "mltrail_runs"


def test_capture_records_git_and_environment(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)
    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x")
    (repo / "train.py").write_text("print(1)\n")
    git("add", "train.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "train")
    (repo / "train.py").write_text("print(2)\n")
    import os
    os.chdir(repo)
    store = mltrail.Store(repo / "runs")
    with store.start_run("cap") as run:
        pass
    info = store.get_run(run.id)["run"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert info["git_commit"] == head and info["git_branch"] == "main" and info["git_dirty"]
    assert "print(2)" in store.blob(info["git_diff_sha256"]).decode()
    assert info["python"] and info["host"] and info["command"]
    import orjson
    packages = orjson.loads(store.blob(info["packages_sha256"]))
    assert "pyarrow" in packages
    monkeypatch.setenv("MLTRAIL_DIFF_MAX_BYTES", "20")
    with store.start_run("cap") as capped:
        pass
    capped_info = store.get_run(capped.id)["run"]
    assert capped_info["git_diff_truncated"] and len(store.blob(capped_info["git_diff_sha256"])) == 20
    with store.start_run("cap", log_git=False, log_command=False, log_system=False,
                         log_packages=False) as bare:
        pass
    bare_info = store.get_run(bare.id)["run"]
    assert pd.isna(bare_info["git_commit"]) and pd.isna(bare_info["python"]) and pd.isna(bare_info["command"])
