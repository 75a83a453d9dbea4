"""Importing an ``mlruns`` folder again: a run whose files are as the last import saw them
(the stat snapshot kept in the store's cache, ``runs.json``) is neither read nor compared,
and every kind of change MLflow (or a person) makes to a run is still seen: the store then
holds what a clean import of the changed folder gives."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mltrail
from mltrail.migration import mlflow_source

from .mlruns import MlrunsBuilder, write_yaml
from .test_mlflow_import import T0, imported_id

CACHE = Path(".cache") / "mlflow-import" / "runs.json"


@pytest.fixture
def mlruns(tmp_path: Path) -> MlrunsBuilder:
    builder = MlrunsBuilder(tmp_path / "mlruns")
    builder.experiment("17", "churn", tags={"team": "growth"})
    builder.run("17", "a" * 32, name="baseline", params={"lr": "0.1", "model/depth": "3"}, tags={"stage": "dev"},
                metrics={"loss": [(T0 + 10, 1.0, 0), (T0 + 20, 0.5, 1)]},
                artifacts={"model/model.pkl": b"weights", "notes.txt": b"hello"})
    builder.run("17", "b" * 32, name="child", start_ms=T0 + 1000, tags={"mlflow.parentRunId": "a" * 32},
                metrics={"loss": [(T0 + 1100, 0.9, 0)]})
    builder.run("17", "c" * 32, name="live", start_ms=T0 + 2000, end_ms=None, status="RUNNING",
                metrics={"loss": [(T0 + 2100, 0.8, 0)]})
    builder.run("17", "d" * 32, name="elsewhere", start_ms=T0 + 3000, artifact_uri="s3://bucket/d")
    builder.dataset("17", "a" * 32, "f" * 32, "train", "training", ["x", "y"], 3, "data/train.csv")
    return builder


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stat data is trusted at once (files written by a test are seconds old at most, and an
    import does not trust a file changed in the last RACY_SECONDS): each change a test makes
    then comes after a pause longer than the file system's mtime granularity."""
    monkeypatch.setattr(mlflow_source, "RACY_SECONDS", 0.0)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files of run folders an import reads."""
    seen: list[str] = []
    for name in ("_yaml", "_text"):  # (every small file of a run is read through one of them)
        original = getattr(mlflow_source, name)

        def spy(path: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            seen.append(str(path))
            return _original(path, *args, **kwargs)

        monkeypatch.setattr(mlflow_source, name, spy)
    return seen


def in_runs(paths: list[str], mlruns: MlrunsBuilder) -> list[str]:
    runs = [str(mlruns.experiments["17"] / (letter * 32)) for letter in "abcd"]
    return [path for path in paths if path.startswith(tuple(runs))]


def view(store: mltrail.Store) -> dict[str, Any]:
    """What a user sees of each imported run, by its MLflow ID."""
    frame = store.search_runs(view="all")
    runs = {}
    for _, row in frame.iterrows():
        run = store.get_run(row["run_id"])
        history = store.metric_history([row["run_id"]])
        runs[row["tags.mlflow.run_id"]] = {
            # (a run MLflow has running reads as crashed here once its last event is old: that
            # depends on when it was last written, not on what)
            "status": run["run"]["status"].replace("CRASHED", "RUNNING"), "end": run["run"]["end_time"], "name": run["run"]["run_name"],
            "params": sorted(zip(run["params"]["key"], run["params"]["value"], strict=True)), "tags": run["tags"],
            "artifacts": sorted(zip(run["artifacts"]["path"], run["artifacts"]["sha256"], strict=True)),
            "datasets": sorted(zip(run["datasets"]["name"], run["datasets"]["sha256"], strict=True)),
            "points": sorted(zip(history["key"], history["step"], history["value"].astype(str), strict=True)),
        }
    return runs


def test_an_unchanged_run_is_not_read_again_and_the_import_says_the_same(
        store: mltrail.Store, mlruns: MlrunsBuilder, trusted: None, reads: list[str]) -> None:
    first = store.import_mlflow(mlruns.root)
    assert in_runs(reads, mlruns)  # (the spies see what an import reads)
    files = {p: p.read_bytes() for p in (store.root / "experiments").rglob("*.jsonl")}
    reads.clear()
    again = store.import_mlflow(mlruns.root)
    assert in_runs(reads, mlruns) == []
    assert (again.runs_new, again.runs_updated, again.runs_unchanged, again.points) == (0, 0, 4, 0)
    assert again.notes == first.notes and again.skipped == first.skipped  # (d's artifacts on s3: said each time)
    assert any("s3://bucket/d" in note for note in again.notes)
    assert {p: p.read_bytes() for p in (store.root / "experiments").rglob("*.jsonl")} == files


def test_a_run_changed_within_the_last_seconds_is_read_again(
        store: mltrail.Store, mlruns: MlrunsBuilder, reads: list[str]) -> None:
    store.import_mlflow(mlruns.root)  # every file was written just now: none of their stat is trusted
    reads.clear()
    assert store.import_mlflow(mlruns.root).runs_unchanged == 4
    experiment = mlruns.experiments["17"]
    assert {Path(p).relative_to(experiment).parts[0] for p in in_runs(reads, mlruns)} == {c * 32 for c in "abcd"}
    assert not (store.root / CACHE).exists() or "a" * 32 not in (store.root / CACHE).read_text()


def _copy_keeping_mtime(mlruns: MlrunsBuilder) -> None:
    """An artifact replaced by a file of the same size whose mtime is the old one's
    (``cp -p``, ``shutil.copy2``): only its ctime tells."""
    target = mlruns.experiments["17"] / ("a" * 32) / "artifacts" / "notes.txt"
    other = target.parent.parent / "other.txt"
    other.write_bytes(b"HELLO")
    os.utime(other, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns))
    shutil.copy2(other, target)
    other.unlink()


def _end_live_run(mlruns: MlrunsBuilder) -> None:
    mlruns.run("17", "c" * 32, name="live", start_ms=T0 + 2000, end_ms=T0 + 2400, status="KILLED")


def _change_dataset(mlruns: MlrunsBuilder) -> None:
    path = mlruns.experiments["17"] / "datasets" / ("f" * 32) / "meta.yaml"
    meta = mlflow_source._yaml(path)
    write_yaml(path, {**meta, "digest": "0123abcd"})


CHANGES: dict[str, Callable[[MlrunsBuilder], None]] = {
    "points appended": lambda b: b.append_points("17", "a" * 32, "loss", [(T0 + 30, 0.25, 2)]),
    "a new metric": lambda b: b.append_points("17", "b" * 32, "acc", [(T0 + 1200, 0.7, 0)]),
    "a tag rewritten, same length": lambda b: (b.experiments["17"] / ("a" * 32) / "tags" / "stage").write_text("qa!"),
    "a tag added": lambda b: (b.experiments["17"] / ("a" * 32) / "tags" / "owner").write_text("ana"),
    "a tag removed": lambda b: (b.experiments["17"] / ("a" * 32) / "tags" / "stage").unlink(),
    "a nested param added": lambda b: (b.experiments["17"] / ("a" * 32) / "params" / "model" / "width").write_text("8"),
    "the run ended": _end_live_run,
    "an artifact added": lambda b: (b.experiments["17"] / ("b" * 32) / "artifacts").mkdir() or (
        b.experiments["17"] / ("b" * 32) / "artifacts" / "plot.png").write_bytes(b"png"),
    "an artifact replaced, mtime kept": _copy_keeping_mtime,
    "an experiment tag added": lambda b: (b.experiments["17"] / "tags" / "quarter").write_text("q3"),
}


@pytest.mark.slow
@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_is_seen_and_gives_what_a_clean_import_gives(
        tmp_path: Path, store: mltrail.Store, mlruns: MlrunsBuilder, trusted: None, change: str) -> None:
    store.import_mlflow(mlruns.root)
    time.sleep(0.05)  # past the mtime granularity of the file system (a few ms)
    CHANGES[change](mlruns)
    summary = store.import_mlflow(mlruns.root)
    assert summary.runs_updated >= 1, summary.text()
    clean = mltrail.Store(tmp_path / "clean")
    clean.import_mlflow(mlruns.root)
    assert view(store) == view(clean)
    assert store.import_mlflow(mlruns.root).runs_unchanged == 4


def test_a_file_outside_the_run_folder_that_the_run_reads_is_watched_too(
        store: mltrail.Store, mlruns: MlrunsBuilder, trusted: None, reads: list[str]) -> None:
    store.import_mlflow(mlruns.root)
    time.sleep(0.05)
    _change_dataset(mlruns)  # (MLflow never rewrites a dataset: a digest names its content; a person can)
    reads.clear()
    assert store.import_mlflow(mlruns.root).runs_updated == 1
    assert {Path(p).relative_to(mlruns.experiments["17"]).parts[0] for p in in_runs(reads, mlruns)} == {"a" * 32}
    datasets = store.get_run(imported_id(store, "a" * 32))["datasets"]
    assert sorted(json.loads(text)["digest"] for text in datasets["mlflow"]) == ["0123abcd", "ffffffff"]


def test_a_run_file_gone_from_the_store_or_appended_to_is_not_taken_as_unchanged(
        store: mltrail.Store, mlruns: MlrunsBuilder, trusted: None, reads: list[str]) -> None:
    store.import_mlflow(mlruns.root)
    live = imported_id(store, "c" * 32)
    store.tracking.run_file(live).unlink()
    summary = store.import_mlflow(mlruns.root)
    assert (summary.runs_new, summary.runs_unchanged) == (1, 3)
    assert store.metric_history([live])["value"].tolist() == [0.8]
    with store.start_run(run_id=live) as run:  # resumed here: the import reads the run to compare
        run.log_metric("loss", 0.5, step=7)
    reads.clear()
    summary = store.import_mlflow(mlruns.root)  # (ended here, running in MLflow: resumed, as before)
    assert (summary.runs_updated, summary.runs_unchanged) == (1, 3)
    assert {Path(p).relative_to(mlruns.experiments["17"]).parts[0] for p in in_runs(reads, mlruns)} == {"c" * 32}
    assert sorted(store.metric_history([live])["value"]) == [0.5, 0.8]


def test_the_cache_lost_costs_one_read_of_each_run_and_nothing_else(
        store: mltrail.Store, mlruns: MlrunsBuilder, trusted: None, reads: list[str]) -> None:
    store.import_mlflow(mlruns.root)
    files = {p: p.read_bytes() for p in (store.root / "experiments").rglob("*.jsonl")}
    (store.root / CACHE).write_text("{not json")  # damaged, or deleted: derived data
    reads.clear()
    assert store.import_mlflow(mlruns.root).runs_unchanged == 4
    assert in_runs(reads, mlruns)
    assert {p: p.read_bytes() for p in (store.root / "experiments").rglob("*.jsonl")} == files
    reads.clear()
    assert store.import_mlflow(mlruns.root).runs_unchanged == 4 and in_runs(reads, mlruns) == []


def test_a_run_deleted_from_the_folder_is_forgotten_and_one_moved_back_is_read(
        store: mltrail.Store, mlruns: MlrunsBuilder, trusted: None, reads: list[str]) -> None:
    import orjson

    store.import_mlflow(mlruns.root)
    folder = mlruns.experiments["17"] / ("d" * 32)
    aside = mlruns.root.parent / "aside"
    folder.rename(aside)
    assert store.import_mlflow(mlruns.root).runs_unchanged == 3
    assert str(folder) not in orjson.loads((store.root / CACHE).read_bytes())
    aside.rename(folder)
    reads.clear()
    assert store.import_mlflow(mlruns.root).runs_unchanged == 4
    assert in_runs(reads, mlruns)


def test_a_relative_path_and_an_absolute_one_name_the_same_runs(
        store: mltrail.Store, mlruns: MlrunsBuilder, trusted: None, reads: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store.import_mlflow(mlruns.root)
    monkeypatch.chdir(mlruns.root.parent)
    reads.clear()
    assert store.import_mlflow("mlruns").runs_unchanged == 4
    assert in_runs(reads, mlruns) == []


def test_a_new_run_file_that_cannot_be_written_skips_its_run_and_the_rest_import(
        store: mltrail.Store, mlruns: MlrunsBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrail.migration import mlflow_import

    original = mlflow_import.stage

    def failing(path: Path, data: bytes) -> Any:
        if b"baseline" in data:
            raise OSError(28, "No space left on device", str(path))
        return original(path, data)

    monkeypatch.setattr(mlflow_import, "stage", failing)
    summary = store.import_mlflow(mlruns.root)
    assert summary.runs_new == 3
    assert [s.where for s in summary.skipped] == [str(mlruns.experiments["17"] / ("a" * 32))]
    assert "No space left on device" in summary.skipped[0].reason
    monkeypatch.setattr(mlflow_import, "stage", original)
    assert store.import_mlflow(mlruns.root).runs_new == 1  # next time, it comes
    assert isinstance(store.search_runs(), pd.DataFrame) and len(store.search_runs()) == 4


def test_new_run_files_whose_sync_fails_are_not_named_and_come_next_time(
        store: mltrail.Store, mlruns: MlrunsBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fails the sync of a batch of new run files: none of them is named (their bytes
    may not be on disk), each of their runs is skipped saying why, and the next import
    brings them."""
    from mltrail.storage import atomic

    def failing(paths: list[Path], *devices: object) -> None:
        raise OSError(5, "Input/output error", str(paths[0]))

    monkeypatch.setattr(atomic, "sync_files", failing)
    summary = store.import_mlflow(mlruns.root)
    assert summary.runs_new == 0 and len(summary.skipped) == 4
    assert all("Input/output error" in s.reason for s in summary.skipped)
    assert not list((store.root / "experiments").rglob("*.jsonl"))
    assert not list((store.root / "experiments").rglob("*.tmp"))  # nothing half-written left
    monkeypatch.undo()
    assert store.import_mlflow(mlruns.root).runs_new == 4


@pytest.mark.parametrize("damage", [
    b"[1, 2, 3]",  # not a mapping
    b'{"x": {"run": {}}}',  # a record of nothing
    None,  # one record with a field of the wrong type: that run alone is read again
    "lax",  # ... one a lax check would coerce ("deleted": "yes" read as true hid the run)
])
def test_a_damaged_cache_is_dropped_in_part_or_whole_and_the_import_goes_on(
        store: mltrail.Store, mlruns: MlrunsBuilder, trusted: None, reads: list[str], damage: bytes | str | None) -> None:
    import orjson

    store.import_mlflow(mlruns.root)
    files = {p: p.read_bytes() for p in (store.root / "experiments").rglob("*.jsonl")}
    cache = store.root / CACHE
    if not isinstance(damage, bytes):
        records = orjson.loads(cache.read_bytes())
        record = records[str(mlruns.experiments["17"] / ("a" * 32))]
        if damage is None:
            record["file"] = [7, "not", "a", "stat"]
        else:
            record["run"].update(deleted="yes", start_ms=str(record["run"]["start_ms"]))
        damage = orjson.dumps(records)
    cache.write_bytes(damage)
    reads.clear()
    assert store.import_mlflow(mlruns.root).runs_unchanged == 4
    assert {p: p.read_bytes() for p in (store.root / "experiments").rglob("*.jsonl")} == files
    read = {Path(p).relative_to(mlruns.experiments["17"]).parts[0] for p in in_runs(reads, mlruns)}
    assert read == ({"a" * 32} if damage.startswith(b'{"') and len(damage) > 100 else {c * 32 for c in "abcd"})
    reads.clear()
    assert store.import_mlflow(mlruns.root).runs_unchanged == 4 and in_runs(reads, mlruns) == []


def test_odd_run_folders_import_and_import_again_without_a_read(
        tmp_path: Path, store: mltrail.Store, trusted: None, reads: list[str]) -> None:
    """A run of nothing but its meta.yaml, one whose artifact_uri is not text, and one whose
    folder holds a file named in bytes that are not UTF-8 (the cache, JSON, cannot keep that
    name: that run is read each time; the import used to crash writing the cache)."""
    builder = MlrunsBuilder(tmp_path / "odd")
    builder.experiment("1", "odd")
    builder.experiment("2", "empty")
    builder.run("1", "a" * 32)  # no name, no params, tags or metrics
    builder.run("1", "b" * 32, name="uri", artifact_uri=5, artifacts={"a.txt": b"here"})  # type: ignore[arg-type]
    folder = builder.run("1", "c" * 32, name="bytes", params={"lr": "0.1"})
    with open(os.fsencode(folder) + b"/notes-\xff", "wb") as handle:
        handle.write(b"not MLflow's")
    first = store.import_mlflow(builder.root)
    assert first.runs_new == 3, first.text()
    assert store.get_run(imported_id(store, "b" * 32))["artifacts"]["path"].tolist() == ["a.txt"]
    reads.clear()
    again = store.import_mlflow(builder.root)
    assert again.runs_unchanged == 3
    experiment = builder.experiments["1"]
    runs_read = {Path(p).relative_to(experiment).parts[0] for p in reads if Path(p).is_relative_to(experiment)}
    assert runs_read - {"meta.yaml"} == {"c" * 32}
