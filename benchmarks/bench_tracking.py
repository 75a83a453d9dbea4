"""Tracking speed: mltrail against MLflow's file store, side by side in one run.

    python benchmarks/bench_tracking.py            # mltrail only, or both if mlflow imports
    python benchmarks/bench_tracking.py --quick    # smaller workloads, for a smoke test

MLflow is never a dependency of mltrail; install it in the same environment to get
the comparison (``pip install mlflow``). Each figure is the median of ``--repeat``
timings; the machine this runs on is shared, so compare ratios from one run.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import mltrail

PARAMS = {f"p{i}": i * 0.5 for i in range(10)}
METRIC_KEYS = ["loss", "acc", "f1", "auc", "lr"]
FILTER = "metrics.acc > 0.5 and params.p3 = '1.5' and tags.group LIKE 'g1%'"


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- mltrail ------------------------------------------------------------------------------


def mltrail_log_metric(root: Path, calls: int, system_metrics: bool = False) -> float:
    store = mltrail.Store(root)
    run = store.start_run("bench", log_packages=False, log_system_metrics=system_metrics)
    log = run.log_metric
    start = time.perf_counter()
    for i in range(calls):
        log("loss", 1.0 / (i + 1), i)
    run.flush()  # included: the calls are not done until they are on disk
    elapsed = time.perf_counter() - start
    run.end()
    return calls / elapsed


def mltrail_create_runs(root: Path, runs: int, steps: int, offset: int = 0) -> None:
    store = mltrail.Store(root)
    for r in range(offset, offset + runs):
        with store.start_run("bench", tags={"group": f"g{r % 20}"}, log_packages=False) as run:
            run.log_params({**PARAMS, "p3": PARAMS["p3"] if r % 2 else r})
            for step in range(steps):
                run.log_metrics({k: (r % 100) / 100 + step / 1000 for k in METRIC_KEYS}, step)


def noisy_values(runs: int, points: int) -> list[list[float]]:
    """Each run's metric values: noisy full-precision floats, as a training loss is
    (regular values such as i * 0.001 would compress far better than real ones in git)."""
    noise = random.Random(7)
    return [[math.exp(-i / 5000) + 0.05 * noise.random() for i in range(points)] for _ in range(runs)]


def mltrail_points(root: Path, runs: int, points: int) -> None:
    """Many metric points fast, through the public API, for the compaction benchmark."""
    store = mltrail.Store(root)
    for values in noisy_values(runs, points):
        with store.start_run("points", log_git=False, log_packages=False) as run:
            for i, value in enumerate(values):
                run.log_metric(METRIC_KEYS[i % 5], value, i // 5)


def values_alone_bytes(runs: int, points: int) -> int:
    """The values of mltrail_points alone, as their shortest text, compressed as git
    compresses (zlib, best): a floor for any text format that keeps every value exact."""
    text = ",".join(repr(v) for values in noisy_values(runs, points) for v in values)
    return len(zlib.compress(text.encode(), 9))


def git_packed_bytes(store: Path) -> int:
    """The store committed to a new git repository, packed by `git gc`: its pack's size."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=store, check=True,
                       capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "runs")
    git("gc", "-q")
    return sum(p.stat().st_size for p in (store / ".git" / "objects" / "pack").glob("*.pack"))


# -- MLflow file store -----------------------------------------------------------------


def mlflow_setup(root: Path):
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # deprecated in 2026: opt back in to measure it
    warnings.filterwarnings("ignore")
    import mlflow

    mlflow.set_tracking_uri(root.as_uri())
    mlflow.set_experiment("bench")
    return mlflow


def mlflow_log_metric(mlflow, calls: int) -> float:
    with mlflow.start_run():
        start = time.perf_counter()
        for i in range(calls):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        return calls / (time.perf_counter() - start)


def mlflow_create_runs(mlflow, runs: int, steps: int) -> None:
    for r in range(runs):
        with mlflow.start_run(tags={"group": f"g{r % 20}"}):
            mlflow.log_params({**PARAMS, "p3": PARAMS["p3"] if r % 2 else r})
            for step in range(steps):
                mlflow.log_metrics({k: (r % 100) / 100 + step / 1000 for k in METRIC_KEYS}, step=step)


def mlflow_search(mlflow) -> int:
    return len(mlflow.search_runs(experiment_names=["bench"], filter_string=FILTER,
                                  max_results=100_000))


# -- the report --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (a smoke test)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow even if installed")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    calls, runs, steps = 1_000_000 // scale, 1_000 // scale, 20
    search_runs_n, points_runs, points_each = 10_000 // scale, 100, 10_000 // scale
    try:
        if args.no_mlflow:
            raise ImportError
        import mlflow  # noqa: F401

        have_mlflow = True
    except ImportError:
        have_mlflow = False
    rows: list[tuple[str, str, str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        print(f"mltrail {mltrail.__version__}; python {sys.version.split()[0]}; "
              f"{os.cpu_count()} cores", flush=True)

        # 1. log_metric calls per second, one thread
        rates = [mltrail_log_metric(tmp_path / f"lm{i}", calls) for i in range(args.repeat)]
        ours = statistics.median(rates)
        theirs = None
        if have_mlflow:
            ml = mlflow_setup(tmp_path / "mlruns")
            theirs = statistics.median(mlflow_log_metric(ml, 2_000 // scale) for _ in range(args.repeat))
        rows.append(("log_metric calls/s (one thread)", f"{ours:,.0f}",
                     f"{theirs:,.0f}" if theirs else "-", f"{ours / theirs:,.0f}x" if theirs else "-"))

        # 1b. the same with system metrics sampled every 0.1 s (100x MLflow's default
        # period: an upper bound of what sampling costs the loop), alternating with off
        os.environ["MLTRAIL_SYSTEM_METRICS_SECONDS"] = "0.1"
        paired = [(mltrail_log_metric(tmp_path / f"off{i}", calls),
                   mltrail_log_metric(tmp_path / f"on{i}", calls, system_metrics=True)) for i in range(args.repeat)]
        del os.environ["MLTRAIL_SYSTEM_METRICS_SECONDS"]
        off, on = statistics.median(p[0] for p in paired), statistics.median(p[1] for p in paired)
        rows.append(("log_metric calls/s with system metrics sampled every 0.1 s (without, same run)",
                     f"{on:,.0f} ({off:,.0f})", "-", f"{on / off:.2f} of without"))

        # 2. create, flush and close runs: 10 params, 5 metrics x 20 steps each
        counter = iter(range(1000))
        ours = median_time(lambda: mltrail_create_runs(tmp_path / f"cr{next(counter)}", runs, steps),
                           args.repeat)
        theirs = None
        if have_mlflow:
            theirs = median_time(lambda: mlflow_create_runs(ml, runs, steps), 1)
        rows.append((f"create {runs:,} runs (10 params, 5 metrics x 20 steps)", f"{ours:.2f} s",
                     f"{theirs:.2f} s" if theirs else "-", f"{theirs / ours:,.0f}x" if theirs else "-"))

        # 3. search_runs with a filter, warm, no-op compaction included
        big = tmp_path / "search"
        mltrail_create_runs(big, search_runs_n, 1)
        store = mltrail.Store(big)
        store.compact()
        found = len(store.search_runs(experiment="bench", filter=FILTER))  # warms the cache
        ours = median_time(lambda: store.search_runs(experiment="bench", filter=FILTER),
                           max(args.repeat, 5))
        theirs = None
        if have_mlflow:  # over the 1,000 (or fewer) runs MLflow created above: a smaller store
            theirs = median_time(lambda: mlflow_search(ml), args.repeat)
        rows.append((f"search_runs with a filter, warm ({search_runs_n:,} runs mltrail, "
                     f"{runs if have_mlflow else 0:,} MLflow; {found} match)",
                     f"{ours * 1000:.1f} ms", f"{theirs * 1000:.0f} ms" if theirs else "-",
                     f"{theirs / ours:,.0f}x" if theirs else "-"))

        # 4. full compaction of many metric points
        pts = tmp_path / "points"
        mltrail_points(pts, points_runs, points_each)
        total = points_runs * points_each
        store = mltrail.Store(pts)
        seconds = median_time(lambda: store.compact(rebuild=True), args.repeat)
        rows.append((f"full compaction of {total:,} metric points", f"{total / seconds:,.0f} points/s",
                     "-", "-"))

        # 5. bytes per metric point: the event files, git's packed objects, the Parquet
        jsonl = sum(p.stat().st_size for p in pts.glob("experiments/*/runs/*.jsonl"))
        parquet = sum(p.stat().st_size for p in (pts / ".cache" / "tables" / "metrics").rglob("*.parquet"))
        rows.append(("bytes per metric point (5 metrics a step), JSONL / Parquet",
                     f"{jsonl / total:.1f} / {parquet / total:.1f}", "-", "-"))
        one_key = sum(p.stat().st_size for p in (tmp_path / "lm0").glob("experiments/*/runs/*.jsonl"))
        rows.append(("bytes per metric point, one metric per call (log_metric in a loop)",
                     f"{one_key / calls:.1f}", "-", "-"))
        rows.append(("bytes per metric point in git's packed objects (git gc)",
                     f"{git_packed_bytes(pts) / total:.1f}", "-", "-"))
        rows.append(("  the values alone as text, zlib as git packs them (a floor)",
                     f"{values_alone_bytes(points_runs, points_each) / total:.1f}", "-", "-"))

    width = max(len(r[0]) for r in rows)
    print(f"\n{'workload':<{width}}  {'mltrail':>20}  {'MLflow file store':>18}  {'ratio':>7}")
    for name, ours_s, theirs_s, ratio in rows:
        print(f"{name:<{width}}  {ours_s:>20}  {theirs_s:>18}  {ratio:>7}")
    if not have_mlflow:
        print("\n(MLflow is not installed here: `pip install mlflow` for the side-by-side figures)")


if __name__ == "__main__":
    main()
