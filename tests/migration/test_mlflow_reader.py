"""Runs of a big mlruns folder are read by reader processes ahead of the importer
(:mod:`mltrail.migration.mlflow_reader`): the store they leave is byte for byte the one a
read in the importer's own process leaves, bad runs are skipped alike, and a reader that
cannot start or dies costs speed, never a run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import mltrail
from mltrail.migration import mlflow_reader, mlflow_source

from .mlruns import MlrunsBuilder
from .test_mlflow_import import T0

RUNS = 70  # three chunks: both readers, and a chunk each twice


@pytest.fixture
def mlruns(tmp_path: Path) -> MlrunsBuilder:
    builder = MlrunsBuilder(tmp_path / "mlruns")
    builder.experiment("5", "sweep", tags={"team": "growth"})
    for i in range(RUNS):
        builder.run("5", f"{i:032x}", name=f"trial-{i}", start_ms=T0 + i, params={"lr": str(i / 100), "depth": "3"},
                    tags={"mlflow.parentRunId": f"{0:032x}"} if i else {},
                    metrics={"loss": [(T0 + i + s, 1 / (s + 1), s) for s in range(5)]},
                    artifacts={"notes.txt": f"trial {i}".encode()})
    builder.append_points("5", f"{7:032x}", "loss", [("not-a-time", 0.5, 9)])  # run 7 cannot be read
    # run 3: more points than one line holds, values that are not numbers, points on datasets
    builder.append_points("5", f"{3:032x}", "acc", [(T0 + s, s % 7 / 7, s) for s in range(20_000)]
                          + [(T0, "nan", 1), (T0 + 1, "inf", 2), (T0 + 2, "-inf", 3)]
                          + [(T0 + 3, 0.5, 4, "train", "d1g3st"), (T0 + 4, 0.6, 4, "eval", "e2g3st")])
    builder.append_points("5", f"{11:032x}", "k" * 251, [(T0, 0.5, 0)])  # run 11: a key mltrail refuses
    (builder.experiments["5"] / f"{9:032x}" / "tags" / "leak").symlink_to("/etc/hostname")  # a link out: refused
    return builder


def imported(tmp_path: Path, name: str, source: Path) -> tuple[mltrail.Store, mltrail.migration.mlflow_import.ImportSummary]:
    store = mltrail.Store(tmp_path / name)
    return store, store.import_mlflow(source)


def files(store: mltrail.Store) -> dict[str, bytes]:
    return {str(p.relative_to(store.root)): p.read_bytes() for p in (store.root / "experiments").rglob("*.jsonl")}


@pytest.mark.slow
@pytest.mark.parametrize("readers", ["started", "cannot start", "die at once"])
def test_reader_processes_leave_the_store_a_read_here_leaves(
        tmp_path: Path, mlruns: MlrunsBuilder, monkeypatch: pytest.MonkeyPatch, readers: str) -> None:
    here, by_itself = imported(tmp_path, "here", mlruns.root)  # (70 runs: under PARALLEL_FROM)
    monkeypatch.setattr(mlflow_reader, "PARALLEL_FROM", 0)
    monkeypatch.setattr(mlflow_reader.os, "cpu_count", lambda: 2)  # (readers even on one core)
    if readers == "cannot start":
        monkeypatch.setattr(mlflow_reader, "COMMAND", [str(tmp_path / "no-such-python")])
    elif readers == "die at once":
        monkeypatch.setattr(mlflow_reader, "COMMAND", [sys.executable, "-c", "pass"])
    started: list[object] = []
    original = mlflow_reader._Reader.__init__
    monkeypatch.setattr(mlflow_reader._Reader, "__init__", lambda self: started.append(self) or original(self))
    read_here: list[object] = []
    read_runs = mlflow_reader.read_runs
    monkeypatch.setattr(mlflow_reader, "read_runs", lambda jobs: read_here.extend(jobs) or read_runs(jobs))
    there, with_readers = imported(tmp_path, "there", mlruns.root)
    assert len(started) == 2
    assert len(read_here) == (0 if readers == "started" else RUNS)  # (a failed reader's runs: read here)
    assert files(there) == files(here)
    assert (with_readers.runs_new, with_readers.points) == (by_itself.runs_new, by_itself.points) == \
        (RUNS - 2, 340 + 20_005)
    assert [(s.what, s.where, s.reason) for s in with_readers.skipped] == \
        [(s.what, s.where, s.reason) for s in by_itself.skipped]
    assert {s.where.rsplit("/", 1)[-1] for s in with_readers.skipped if s.what in ("run", "file")} >= \
        {"loss:6", "leak", f"{11:032x}"}
    assert any("251 characters long" in s.reason for s in with_readers.skipped)


@pytest.mark.slow
def test_readers_take_the_importer_s_trust_of_recent_files(
        tmp_path: Path, mlruns: MlrunsBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader reads RACY_SECONDS as the importer has it (here changed by a test): the runs
    it read get a snapshot, and an import again reads none of them."""
    monkeypatch.setattr(mlflow_reader, "PARALLEL_FROM", 0)
    monkeypatch.setattr(mlflow_reader.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(mlflow_source, "RACY_SECONDS", 0.0)
    store, _ = imported(tmp_path, "store", mlruns.root)
    from mltrail.migration import mlflow_import

    to_read: list[int] = []  # (what the importer asks anyone, a reader or itself, to read)
    read_ahead = mlflow_import.read_ahead
    monkeypatch.setattr(mlflow_import, "read_ahead",
                        lambda source, runs, *rest: to_read.append(len(runs)) or read_ahead(source, runs, *rest))
    assert store.import_mlflow(mlruns.root).runs_unchanged == RUNS - 2
    assert to_read == [2]  # runs 7 and 11, skipped (never known): with 2 s of distrust the readers would give all 70


@pytest.mark.slow
def test_readers_of_an_import_killed_outright_end_with_it(tmp_path: Path, mlruns: MlrunsBuilder) -> None:
    import os
    import signal
    import subprocess

    import psutil

    code = ("import os, sys, time, mltrail\n"
            "from mltrail.migration import mlflow_reader\n"
            "mlflow_reader.PARALLEL_FROM = 0\n"
            "mlflow_reader.os.cpu_count = lambda: 2\n"
            "taken = mlflow_reader._results\n"
            "def slowly(reader, chunk):  # (said while the readers live: they end with read_ahead)\n"
            "    print('chunk', flush=True)\n"
            "    time.sleep(0.5)\n"
            "    return taken(reader, chunk)\n"
            "mlflow_reader._results = slowly\n"
            "mltrail.Store(sys.argv[1]).import_mlflow(sys.argv[2])\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "killed"), str(mlruns.root)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    readers: list[psutil.Process] = []
    for line in child.stdout:
        readers = [p for p in psutil.Process(child.pid).children() if "mlflow_reader" in " ".join(p.cmdline())]
        if line.strip() == "chunk" and len(readers) == 2:  # (the progress bar's lines told too late:
            # a run's line comes once its file is durable, in batches of 64, after the readers may be gone)
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait()
    child.stdout.close()
    assert len(readers) == 2
    gone, alive = psutil.wait_procs(readers, timeout=15)  # their stdin closes with the importer: they end
    assert alive == []


@pytest.mark.slow
def test_an_import_again_by_readers_appends_what_one_here_appends(
        tmp_path: Path, mlruns: MlrunsBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs the store has are read with their points (the importer compares them with its
    file); runs new to it come with their lines built by the reader."""
    monkeypatch.setattr(mlflow_source, "RACY_SECONDS", 0.0)
    here, _ = imported(tmp_path, "here", mlruns.root)
    monkeypatch.setattr(mlflow_reader, "PARALLEL_FROM", 0)
    monkeypatch.setattr(mlflow_reader.os, "cpu_count", lambda: 2)
    there, _ = imported(tmp_path, "there", mlruns.root)
    for i in (2, 3, 40):
        mlruns.append_points("5", f"{i:032x}", "loss", [(T0 + 100 + s, 0.25, 10 + s) for s in range(3)])
    mlruns.run("5", f"{99:032x}", name="late", start_ms=T0 + 99, metrics={"loss": [(T0 + 99, 0.5, 0)]})
    monkeypatch.setattr(mlflow_reader, "PARALLEL_FROM", 10**9)
    again_here = here.import_mlflow(mlruns.root)
    monkeypatch.setattr(mlflow_reader, "PARALLEL_FROM", 0)
    again_there = there.import_mlflow(mlruns.root)
    assert (again_there.runs_new, again_there.runs_updated, again_there.points) == \
        (again_here.runs_new, again_here.runs_updated, again_here.points) == (1, 3, 10)
    assert files(there) == files(here)
