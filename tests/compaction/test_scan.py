"""The no-op check behind every query: correct, and cheap on big stores."""

import os

import pytest

import mltrail
from mltrail.compaction import scan as scan_module
from tests.factories import quiet_run


@pytest.fixture
def trusting(monkeypatch):
    """Trust folder mtimes at once (normally only once they are 2 s old)."""
    monkeypatch.setattr(scan_module, "RACY_SECONDS", 0.0)


def _age_folders(store, seconds=10):
    """Make every runs folder look older, as on a store that sat still for a while."""
    for folder in store.layout.experiments.glob("*/runs"):
        info = folder.stat()
        os.utime(folder, ns=(info.st_atime_ns, info.st_mtime_ns - int(seconds * 1e9)))


def _stats_during(monkeypatch, action):
    calls = []
    real = scan_module.os.stat

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(scan_module.os, "stat", counting)
    action()
    monkeypatch.setattr(scan_module.os, "stat", real)
    return calls


def test_finished_runs_in_a_still_folder_are_not_statted(store, monkeypatch):
    for _ in range(20):
        with quiet_run(store, "big") as run:
            run.log_metric("m", 1.0)
    live = quiet_run(store, "big")
    live.flush()
    store.compact()
    _age_folders(store)
    store.compact()  # records the (now trustworthy) folder state
    calls = _stats_during(monkeypatch, store.compact)
    run_files = [c for c in calls if c.endswith(".jsonl")]
    assert run_files == [str(live.path)]  # only the run that can still grow
    live.log_metric("m", 2.0)
    live.flush()
    assert store.compact().metric_points == 1  # its append is seen
    live.end()


def test_new_run_in_a_trusted_folder_is_seen(store, trusting):
    with quiet_run(store, "e") as first:
        first.log_metric("m", 1.0)
    store.compact()
    store.compact()
    with quiet_run(store, "e") as second:
        second.log_metric("m", 2.0)
    assert set(store.search_runs()["run_id"]) == {first.id, second.id}


def test_replaced_file_in_a_trusted_folder_triggers_rebuild(store, trusting):
    """What a git checkout does: write a new file and rename it over the old one."""
    with quiet_run(store, "e") as run:
        for i in range(10):
            run.log_metric("m", float(i))
            run.flush()  # a line a point
    store.compact()
    _age_folders(store)
    store.compact()
    lines = run.path.read_bytes().split(b"\n")
    tmp = run.path.with_suffix(".tmp")
    tmp.write_bytes(b"\n".join(lines[:4]) + b"\n")  # the run as another branch saw it
    os.replace(tmp, run.path)
    result = store.compact()
    assert result.rebuilt
    assert len(store.metric_history()) < 10


def test_removed_experiment_folder_triggers_rebuild(store, trusting):
    for name in ("keep", "drop"):
        with quiet_run(store, name) as run:
            run.log_metric("m", 1.0)
    store.compact()
    store.compact()
    for path in store.layout.experiment_dir("drop").rglob("*.jsonl"):
        path.unlink()
    store.layout.experiment_dir("drop").joinpath("runs").rmdir()
    assert list(store.search_runs()["experiment"]) == ["keep"]


def test_recent_folders_are_not_trusted(store):
    with quiet_run(store, "e") as run:
        run.log_metric("m", 1.0)
    store.compact()
    store.compact()
    assert mltrail.compaction.manifest.load_manifest(store.layout.tables).folders == {}
