"""A/B analysis at traffic scale: the first exp.results() on a big experiment, one with
nothing new, and one after more traffic, with the analysing process's peak memory.

    python benchmarks/bench_ab_analysis.py [--exposures 10000000] [--feedback 1000000]
        [--more 100000] [--baseline-src PATH]

The exposure and feedback segments are generated straight into the store's log folder
(by DuckDB, as a router's segments look: one JSON line an event), one exposure per unit,
a conversion for a random tenth of them. The analysis runs in a fresh child process, so
its peak RSS is its own. ``--baseline-src`` runs the same analysis with another mltrail's
``src`` folder (an older commit's worktree) on the same logs, side by side.
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

import duckdb

import mltrail

SPEC = {
    "key": "bench", "owner": "bench", "mde": 0.01, "baseline": 0.1,
    "hypothesis": {"null": "no change", "alternative": "a change"},
    "primary": {"name": "conversion", "kind": "binary"},
    "variants": [{"name": "a", "weight": 0.5, "control": True}, {"name": "b", "weight": 0.5}],
}
SEGMENT_LINES = 450_000  # ~64 MB: a router rolls its segments at MAX_SEGMENT_BYTES

CHILD = """
import json, resource, sys, time
import mltrail
exp = mltrail.Store(sys.argv[1]).ab.get("bench")
timings = {}
started = time.perf_counter()
first = exp.results()
timings["first"] = time.perf_counter() - started
rss_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
exp.results()
timings["again"] = time.perf_counter() - started
print(json.dumps({"timings": timings, "rss_first_mb": rss_first,
                  "units": sum(first.units.values()), "mean": float(first.table["mean"].iloc[0])}), flush=True)
sys.stdin.readline()  # the parent logs more traffic, then says go
started = time.perf_counter()
more = exp.results()
timings["more"] = time.perf_counter() - started
print(json.dumps({"timings": timings, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "units": sum(more.units.values())}), flush=True)
"""


def write_segments(folder: Path, experiment: str, start: float, first_unit: int, units: int,
                   feedback: int, name: str) -> None:
    """Exposure lines for units ``first_unit..`` (variant by parity), then conversions for
    ``feedback`` of them, as JSON-lines segments of SEGMENT_LINES."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    step = max(feedback and units // feedback, 1)
    for part, offset in enumerate(range(0, units, SEGMENT_LINES)):
        count = min(SEGMENT_LINES, units - offset)
        con.execute(f"""COPY (
            SELECT 1 AS v, 'exposure' AS type, {start} + (i * 0.001) AS ts, '{experiment}' AS experiment,
                   i AS seq, 'u' || (i + {first_unit}) AS unit,
                   CASE WHEN (i + {first_unit}) % 2 = 0 THEN 'a' ELSE 'b' END AS variant, 1 AS phase
            FROM range({offset}, {offset + count}) t(i)
            UNION ALL
            SELECT 1, 'feedback', {start} + (i * 0.001) + 5, '{experiment}', {units} + i, 'u' || (i + {first_unit}),
                   NULL, NULL
            FROM range({offset}, {offset + count}) t(i) WHERE i % {step} = 0 AND i / {step} < {feedback}
        ) TO '{folder / f"{name}-{part:04d}.jsonl"}' (FORMAT json)""")
    # feedback lines carry metric and value, not variant and phase: rewrite those columns' names
    for path in sorted(folder.glob(f"{name}-*.jsonl")):
        fixed = path.with_suffix(".tmp")
        with open(path, "rb") as src, open(fixed, "wb") as out:
            for line in src:
                if b'"type":"feedback"' in line:
                    line = line.replace(b',"variant":null,"phase":null', b',"metric":"conversion","value":1.0')
                out.write(line)
        os.replace(fixed, path)


def analyse(root: Path, src: str | None, more: int, log_folder: Path, start: float, exposures: int) -> dict:
    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), str(root)], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = json.loads(child.stdout.readline())
    # more traffic: half new units, half seen before, in a new segment
    write_segments(log_folder, "bench", start + exposures * 0.001 + 10, exposures - more // 2, more, 0, f"more-{time.time_ns()}")
    child.stdin.write("go\n")
    child.stdin.flush()
    last = json.loads(child.stdout.readline())
    child.wait(timeout=600)
    return {**first, **last}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exposures", type=int, default=10_000_000)
    parser.add_argument("--feedback", type=int, default=1_000_000)
    parser.add_argument("--more", type=int, default=100_000)
    parser.add_argument("--baseline-src", help="another mltrail's src folder, analysed on the same logs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        exp = mltrail.Store(root).ab.create(SPEC).start()
        log_folder = exp._registry.log_folder("bench")
        started = time.perf_counter()
        write_segments(log_folder, "bench", exp.phase.started, 0, args.exposures, args.feedback, "seg")
        size = sum(p.stat().st_size for p in log_folder.glob("*.jsonl"))
        print(f"generated {args.exposures:,} exposures and {args.feedback:,} feedback lines "
              f"({size / 1e9:.2f} GB of segments) in {time.perf_counter() - started:.0f} s", flush=True)
        runs = [("mltrail (DuckDB)", None)] + ([("baseline", args.baseline_src)] if args.baseline_src else [])
        for label, src in runs:
            for cache in (root / ".cache" / "ab").glob("*"):
                subprocess.run(["rm", "-rf", str(cache)], check=True)  # each starts from the logs alone
            for extra in log_folder.glob("more-*.jsonl"):
                extra.unlink()
            result = analyse(root, src, args.more, log_folder, exp.phase.started, args.exposures)
            t = result["timings"]
            print(f"{label}: first results() {t['first']:.1f} s (peak RSS {result['rss_first_mb']:,.0f} MB), "
                  f"nothing new {t['again']:.2f} s, after {args.more:,} more exposures {t['more']:.2f} s "
                  f"(peak RSS {result['rss_mb']:,.0f} MB); {result['units']:,} units", flush=True)


if __name__ == "__main__":
    main()
