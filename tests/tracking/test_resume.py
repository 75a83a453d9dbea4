"""store.start_run(run_id=ID) continues a run, as MLflow does: a training job restarted
after a crash or preemption (issue 14)."""

import os

import pytest

import mltrail
from mltrail.compaction import scan as scan_module
from tests.factories import quiet_run, spawn_python


def test_a_finished_run_resumes_its_steps_and_ends_again(store, monkeypatch):
    monkeypatch.setattr(scan_module, "RACY_SECONDS", 0.0)  # trust folder mtimes at once
    with quiet_run(store, "e", name="train") as run:
        run.log_params({"lr": 0.1})
        for _ in range(3):
            run.log_metric("loss", 1.0)
    store.compact()
    folder = run.path.parent
    info = folder.stat()  # an old folder whose every file ended: compaction stops listing it
    os.utime(folder, ns=(info.st_atime_ns, info.st_mtime_ns - 10**10))
    store.compact()
    resumed = store.start_run(run_id=run.id)
    assert (resumed.id, resumed.name) == (run.id, "train")
    assert store.search_runs().iloc[0]["status"] == "RUNNING"
    resumed.log_metric("loss", 0.5)  # step 3: the steps go on
    with pytest.raises(mltrail.ParamChangedError):
        resumed.log_param("lr", 0.2)  # a param keeps its value
    resumed.end()
    history = store.metric_history()
    assert history["step"].tolist() == [0, 1, 2, 3] and history["value"].tolist() == [1.0, 1.0, 1.0, 0.5]
    row = store.search_runs().iloc[0]
    assert row["status"] == "FINISHED" and row["metrics.loss"] == 0.5 and len(store.search_runs()) == 1


@pytest.mark.slow
def test_a_crashed_run_resumes_after_its_process_was_killed(store, tmp_path):
    proc = spawn_python(f"""
import time, mltrail
run = mltrail.Store({str(store.root)!r}).start_run("e", name="job", log_git=False, log_packages=False)
for step in range(5):
    run.log_metric("loss", 1.0 / (step + 1), step=step)
run.flush()
print(run.id, flush=True)
time.sleep(600)
""", tmp_path)
    run_id = proc.stdout.readline().strip()
    proc.kill()
    proc.communicate(timeout=30)
    with store.start_run(run_id=run_id) as run:
        run.log_metric("loss", 0.1)
    steps = store.metric_history(run_ids=[run_id])["step"].tolist()
    assert steps == [0, 1, 2, 3, 4, 5]
    assert mltrail.Store(store.root).search_runs().iloc[0]["status"] == "FINISHED"


def test_resuming_a_run_that_is_not_there_is_a_clear_error(store):
    with quiet_run(store, "e"):
        pass
    for ref in ("01M8NOPE", "../../x", ""):
        with pytest.raises(mltrail.NotFoundError, match="no run"):
            store.start_run(run_id=ref)
