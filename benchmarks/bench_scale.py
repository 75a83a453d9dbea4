"""The index at scale: a store of many finished runs (10 params, 5 metrics x 20 steps
each), as issue 14 sets its targets at 100,000 runs.

    python benchmarks/bench_scale.py [--runs 100000] [--rounds 10]

Measures, on one store made through the public API:
1. the first compaction of every run, in a child process: its time and peak memory
   (the child's maximum resident set);
2. a warm filtered ``search_runs`` (the no-op compaction check included): the median;
3. incremental compaction with one live run: a training job (started 2.5 s before: past
   the 2 s in which a changed folder is listed again) logs a step and flushes before
   each timed compaction, which is what the dashboard's Live page pays on every refresh.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tracking import FILTER, median_time, mltrail_create_runs  # noqa: E402

import mltrail  # noqa: E402

COMPACT = "import sys, time, mltrail; t = time.perf_counter(); mltrail.Store(sys.argv[1]).compact(); " \
          "print(time.perf_counter() - t)"


def first_compaction(root: Path) -> tuple[float, float]:
    """Seconds and peak resident MB of a first compaction, alone in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    seconds = float(subprocess.run([sys.executable, "-c", COMPACT, str(root)], check=True,
                                   capture_output=True, text=True).stdout)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kb <= before:
        raise SystemExit("the child's peak memory was hidden by an earlier, larger child")
    return seconds, peak_kb / 1024


def incremental(store: mltrail.Store, rounds: int) -> list[float]:
    live = store.start_run("bench", name="live", log_git=False, log_packages=False)
    live.log_metric("loss", 1.0)
    live.flush()
    store.compact()
    # a runs folder changed in the last 2 s is listed again (compaction.scan's
    # RACY_SECONDS): a live run trains for longer than that, so time the steady state
    time.sleep(2.5)
    store.compact()
    timings = []
    for step in range(rounds):
        live.log_metrics({"loss": 1 / (step + 1), "acc": step / rounds}, step=step)
        live.flush()
        started = time.perf_counter()
        store.compact()
        timings.append(time.perf_counter() - started)
    live.end()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        started = time.perf_counter()
        mltrail_create_runs(root, args.runs, 20)
        made = time.perf_counter() - started
        os.sync()  # time the compaction, not the write-back of the runs just made
        seconds, peak_mb = first_compaction(root)
        store = mltrail.Store(root)
        store.compact()  # this process's first look: parses the manifest once
        found = len(store.search_runs(experiment="bench", filter=FILTER))
        search_ms = median_time(lambda: store.search_runs(experiment="bench", filter=FILTER), args.rounds) * 1000
        timings = incremental(store, args.rounds)
    print(f"{args.runs:,} finished runs, {args.runs * 100:,} metric points (made in {made:.1f} s)")
    print(f"  first compaction:                  {seconds:.1f} s, peak memory {peak_mb:,.0f} MB")
    print(f"  warm filtered search_runs:         {search_ms:.1f} ms median of {args.rounds} ({found:,} runs match)")
    print(f"  incremental compaction, live run:  {statistics.median(timings) * 1000:.0f} ms median of "
          f"{args.rounds} (min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f})")


if __name__ == "__main__":
    main()
