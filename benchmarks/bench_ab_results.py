"""Time of exp.results() on a large experiment: the first analysis (compaction of the
whole log, the join, the statistics) and an analysis with nothing new.

    python benchmarks/bench_ab_results.py [--exposures 1000000] [--feedback 100000]

Logs the exposures (one per unit) and the conversions through the public API in a
temporary store, then times. Peak RSS is the process's, logging included.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mltrail

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ab_logging import SPEC  # noqa: E402  (the same experiment)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exposures", type=int, default=1_000_000)
    parser.add_argument("--feedback", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        exp = mltrail.Store(root).ab.create(SPEC).start()
        units = [f"u{i}" for i in range(args.exposures)]
        for unit, variant in zip(units, exp.assign_batch(units)):
            exp.log_exposure(unit, variant)
        for i in np.random.default_rng(1).choice(args.exposures, args.feedback, replace=False):
            exp.log_feedback(units[i], "conversion", 1.0)
        exp.log.flush()
        started = time.perf_counter()
        result = exp.results()
        first = time.perf_counter() - started
        started = time.perf_counter()
        exp.results()
        again = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{sum(result.units.values()):,} units, {args.feedback:,} conversions: first results() {first:.2f} s, "
          f"again with nothing new {again:.2f} s; peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
