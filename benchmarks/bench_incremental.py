"""Incremental compaction with one live run in a store of many finished runs: what the
dashboard's Live page pays on every refresh (issue 14's targets: <= 50 ms with 10,000
finished runs, <= 200 ms with 100,000).

    python benchmarks/bench_incremental.py [--runs 10000] [--rounds 10]

Makes the finished runs (10 params, 5 metrics x 20 steps each) through the public API,
compacts once, then a live run (started 2.5 s before: a training job, past the 2 s in
which a changed folder is listed again) logs a step and flushes before each timed
compaction.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tracking import mltrail_create_runs  # noqa: E402

import mltrail  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        started = time.perf_counter()
        mltrail_create_runs(root, args.runs, 20)
        made = time.perf_counter() - started
        store = mltrail.Store(root)
        started = time.perf_counter()
        store.compact()
        first = time.perf_counter() - started
        live = store.start_run("bench", name="live", log_git=False, log_packages=False)
        live.log_metric("loss", 1.0)
        live.flush()
        store.compact()
        # a runs folder changed in the last 2 s is listed again (compaction.scan's
        # RACY_SECONDS): a live run trains for longer than that, so time the steady state
        time.sleep(2.5)
        store.compact()
        timings = []
        for step in range(args.rounds):
            live.log_metrics({"loss": 1 / (step + 1), "acc": step / args.rounds}, step=step)
            live.flush()
            started = time.perf_counter()
            store.compact()
            timings.append(time.perf_counter() - started)
        live.end()
        print(f"{args.runs:,} finished runs (made in {made:.1f} s; first compaction {first:.2f} s); "
              f"incremental compaction with one live run: median {statistics.median(timings) * 1000:.0f} ms "
              f"over {args.rounds} rounds (min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f})")


if __name__ == "__main__":
    main()
