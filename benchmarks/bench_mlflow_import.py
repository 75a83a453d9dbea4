"""Importing an MLflow ``mlruns`` folder: the first import, one with nothing new, one after
more points, and then a filtered ``search_runs`` on the imported store beside MLflow's own
``mlflow.search_runs`` on the source.

    python benchmarks/bench_mlflow_import.py [--runs 1000] [--params 10] [--metrics 5] [--steps 20]
        [--handwritten] [--artifact-kb 0]

``--artifact-kb N`` gives each run an artifact of N KB of random bytes, and times an
import again beside one without the stamps of earlier imports (every artifact read again).

The source is written by MLflow itself (``MlflowClient.log_batch``, its file store; needs
``mlflow-skinny``, in the test extra), or with ``--handwritten`` straight into MLflow's file
layout (no MLflow needed; the same files). MLflow runs in a child process, with
``MLFLOW_ALLOW_FILE_STORE`` (3.x) set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import mltrail
from mltrail.compaction.scan import RACY_SECONDS

T0 = 1_790_000_000_000
FILTER = "metrics.m0 < 0.5 and params.p1 = '3'"

MAKE_WITH_MLFLOW = """
import sys
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
import os, tempfile
root, runs, params, metrics, steps, t0, artifact_kb = sys.argv[1], *map(int, sys.argv[2:8])
client = MlflowClient("file:" + root)
scratch = tempfile.mkdtemp()
exp = client.create_experiment("bench")
for i in range(runs):
    run = client.create_run(exp, start_time=t0 + i * 1000, run_name=f"run-{i}", tags={"team": "growth"})
    points = [Metric(f"m{k}", (i * 31 + k * 7 + s) % 100 / 100, t0 + i * 1000 + s, s)
              for k in range(metrics) for s in range(steps)]
    client.log_batch(run.info.run_id, metrics=points, params=[Param(f"p{j}", str((i + j) % 7)) for j in range(params)])
    if artifact_kb:
        with open(os.path.join(scratch, "model.bin"), "wb") as handle:
            handle.write(os.urandom(artifact_kb * 1024))
        client.log_artifact(run.info.run_id, os.path.join(scratch, "model.bin"))
    client.set_terminated(run.info.run_id, "FINISHED", end_time=t0 + i * 1000 + 500)
"""

MLFLOW_SEARCH = """
import json, sys, time
import mlflow
mlflow.set_tracking_uri("file:" + sys.argv[1])
timings = []
for _ in range(3):
    started = time.perf_counter()
    frame = mlflow.search_runs(experiment_names=["bench"], filter_string=sys.argv[2])
    timings.append(time.perf_counter() - started)
print(json.dumps({"seconds": min(timings), "rows": len(frame)}))
"""


def mlflow_env() -> dict[str, str]:
    return {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "PYTHONWARNINGS": "ignore", "GIT_PYTHON_REFRESH": "quiet"}


def make_by_hand(root: Path, runs: int, params: int, metrics: int, steps: int, artifact_kb: int) -> None:
    """MLflow's file layout, written directly: meta.yaml, params/, tags/, metrics/ lines."""
    exp = root / "1"
    exp.mkdir(parents=True)
    (exp / "meta.yaml").write_text(f"experiment_id: '1'\nname: bench\nlifecycle_stage: active\n"
                                   f"artifact_location: file://{exp}\ncreation_time: {T0}\n")
    for i in range(runs):
        run_id = f"{i:032x}"
        folder = exp / run_id
        for sub in ("params", "metrics", "tags", "artifacts"):
            (folder / sub).mkdir(parents=True)
        (folder / "meta.yaml").write_text(
            f"run_id: '{run_id}'\nrun_uuid: '{run_id}'\nexperiment_id: '1'\nrun_name: run-{i}\nstatus: 3\n"
            f"start_time: {T0 + i * 1000}\nend_time: {T0 + i * 1000 + 500}\nlifecycle_stage: active\n"
            f"user_id: bench\nartifact_uri: file://{folder}/artifacts\n")
        for j in range(params):
            (folder / "params" / f"p{j}").write_text(str((i + j) % 7))
        (folder / "tags" / "team").write_text("growth")
        if artifact_kb:
            (folder / "artifacts" / "model.bin").write_bytes(os.urandom(artifact_kb * 1024))
        (folder / "tags" / "mlflow.runName").write_text(f"run-{i}")
        for k in range(metrics):
            lines = "".join(f"{T0 + i * 1000 + s} {(i * 31 + k * 7 + s) % 100 / 100} {s}\n" for s in range(steps))
            (folder / "metrics" / f"m{k}").write_text(lines)


def read_every_file(root: Path) -> int:
    """Every file under ``root`` opened and read once, nothing parsed: what any import of it
    must do at least, as a yardstick of this machine measured in the same run."""
    count = 0
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            count += read_every_file(Path(entry.path))
        else:
            with open(entry.path, "rb") as handle:
                handle.read()
            count += 1
    return count


def timed(call):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--params", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--handwritten", action="store_true", help="Write MLflow's files directly, without MLflow.")
    parser.add_argument("--artifact-kb", type=int, default=0, help="An artifact of this many KB in each run.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mlruns, dest = Path(tmp) / "mlruns", Path(tmp) / "store"
        started = time.perf_counter()
        if args.handwritten:
            make_by_hand(mlruns, args.runs, args.params, args.metrics, args.steps, args.artifact_kb)
        else:
            subprocess.run([sys.executable, "-c", textwrap.dedent(MAKE_WITH_MLFLOW), str(mlruns), str(args.runs),
                            str(args.params), str(args.metrics), str(args.steps), str(T0), str(args.artifact_kb)],
                           env=mlflow_env(), check=True)
        print(f"source: {args.runs:,} runs x ({args.params} params, {args.metrics} metrics x {args.steps} steps), "
              f"written {'by hand' if args.handwritten else 'by MLflow'} in {time.perf_counter() - started:.1f} s")
        # an import does not trust the stat of a file changed in the last RACY_SECONDS (it may change
        # again unseen within its mtime's granularity): the runs of a source still being written are
        # read again by the next import. Here the source is done, as a store handed over is.
        time.sleep(RACY_SECONDS)
        # the source's own writing flushed to disk first: a folder handed over was written long
        # before, and its write-back (180,001 new files at 10,000 runs) would slow the import's
        # file creation here by seconds, from run to run differently
        os.sync()
        floor, files = timed(lambda: read_every_file(mlruns))
        store = mltrail.Store(dest)
        first, summary = timed(lambda: store.import_mlflow(mlruns))
        assert summary.runs_new == args.runs and summary.points == args.runs * args.metrics * args.steps, summary.text()
        again, summary = timed(lambda: store.import_mlflow(mlruns))
        assert summary.runs_unchanged == args.runs and summary.points == 0
        unstamped = None
        if args.artifact_kb:
            (dest / ".cache" / "mlflow-import" / "stamps.json").unlink()
            unstamped, summary = timed(lambda: store.import_mlflow(mlruns))
            assert summary.runs_unchanged == args.runs
        experiment = next(p for p in mlruns.iterdir() if (p / "meta.yaml").is_file() and p.name != "0")
        for folder in sorted(p for p in experiment.iterdir() if (p / "metrics").is_dir())[:10]:
            with open(folder / "metrics" / "m0", "a") as handle:
                handle.write("".join(f"{T0 + 9_000_000 + s} 0.01 {args.steps + s}\n" for s in range(20)))
        more, summary = timed(lambda: store.import_mlflow(mlruns))
        assert summary.runs_updated == 10 and summary.points == 200, summary.text()
        compact, _ = timed(store.compact)
        search = min(timed(lambda: store.search_runs("bench", FILTER))[0] for _ in range(3))
        rows = len(store.search_runs("bench", FILTER))
        theirs = None
        if not args.handwritten:
            done = subprocess.run([sys.executable, "-c", textwrap.dedent(MLFLOW_SEARCH), str(mlruns), FILTER],
                                  env=mlflow_env(), check=True, capture_output=True, text=True)
            theirs = json.loads(done.stdout)
            assert theirs["rows"] == rows, (theirs, rows)
        ours_files = list((dest / "experiments").rglob("*.jsonl"))
        source_files = [p for p in mlruns.rglob("*") if p.is_file() and "artifacts" not in p.relative_to(mlruns).parts]
        size = sum(p.stat().st_size for p in ours_files)
        source_size = sum(p.stat().st_size for p in source_files)
    print(f"| reading each of the source's {files:,} files once, nothing parsed or written (the floor) | {floor:.2f} s |")
    print(f"| first import of {args.runs:,} runs | {first:.2f} s ({first / floor:.1f}x the floor) |")
    print(f"| import again, nothing new | {again:.2f} s |")
    if unstamped is not None:
        print(f"| ... without the stamps of the first (each {args.artifact_kb:,} KB artifact read again) | {unstamped:.2f} s |")
    print(f"| import again, 10 runs with 20 new points each | {more:.2f} s |")
    print(f"| then compaction | {compact:.2f} s |")
    print(f"| filtered search_runs after it (warm, best of 3; {rows} runs) | {search * 1000:.1f} ms |")
    if theirs is not None:
        print(f"| mlflow.search_runs, same filter, on the mlruns folder (best of 3) | {theirs['seconds'] * 1000:.1f} ms "
              f"({theirs['seconds'] / search:.0f}x) |")
    print(f"| event files vs the mlruns folder, artifacts apart | {len(ours_files):,} files, {size / 1e6:.1f} MB vs "
          f"{len(source_files):,} files, {source_size / 1e6:.1f} MB |")


if __name__ == "__main__":
    main()
