"""Exposure logging throughput from one process (target: at least 200,000 events/s).

    python benchmarks/bench_ab_logging.py [--events N]

Times log_exposure calls for N events, including the final flush and fsync.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import mltrail

SPEC = {
    "key": "bench", "owner": "bench", "mde": 0.01, "baseline": 0.1,
    "hypothesis": {"null": "no change", "alternative": "a change"},
    "primary": {"name": "conversion", "kind": "binary"},
    "variants": [{"name": "a", "weight": 0.5, "control": True}, {"name": "b", "weight": 0.5}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rates = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            exp = mltrail.Store(tmp).ab.create(SPEC).start()
            units = [f"user-{i}" for i in range(10_000)]
            log = exp.log
            start = time.perf_counter()
            for i in range(args.events):
                log.log_exposure(units[i % 10_000], "a" if i & 1 else "b")
            log.flush()
            rates.append(args.events / (time.perf_counter() - start))
    print(f"log_exposure: {statistics.median(rates):,.0f} events/s (median of {args.repeat}, "
          f"{args.events:,} events each, flush and fsync included)")


if __name__ == "__main__":
    main()
