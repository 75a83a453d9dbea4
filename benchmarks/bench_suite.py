"""How long the test suite takes the README's way: the whole suite and the fast subset.

    python benchmarks/bench_suite.py [--workers 2] [--dist loadgroup] [--only fast|full] [--log PREFIX]

Each row runs ``python -m pytest -q -p no:cacheprovider -n WORKERS`` (the README's
command; ``-m "not slow"`` for the fast subset) in a child process from the repository's
root and times it by the wall clock, start of the child to its exit, collection and the
workers' start included. A row also says how many tests passed, failed and were skipped
(pytest's last line) and the machine's load average before the run, since the suite's
time depends on what else the machine runs. Issue 27's targets on the 2-core machine: the
whole suite in at most 8 minutes, the fast subset in at most 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUBSETS = {"full": [], "fast": ["-m", "not slow"]}
TARGETS = {"full": 8 * 60, "fast": 60}


def run_suite(subset: str, workers: str, dist: str, log: Path | None = None) -> tuple[float, str, int]:
    """(wall seconds, pytest's summary line, exit code) of one run of ``subset``; pytest's
    output goes to ``log`` if given, and its failures to stderr."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", workers,
               "--dist", dist, *SUBSETS[subset]]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if log is not None:
        log.write_text(done.stdout + done.stderr)
    for line in done.stdout.splitlines():
        if line.startswith(("FAILED", "ERROR")) or "wrote outside tmp_path" in line:
            print(line, file=sys.stderr)
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    return seconds, (lines[-1].strip("= ") if lines else done.stdout[-300:]), done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="2", help="pytest-xdist's -n (a number or auto)")
    parser.add_argument("--dist", default="loadgroup", help="pytest-xdist's --dist (load, loadfile...)")
    parser.add_argument("--only", choices=sorted(SUBSETS), help="time one subset only")
    parser.add_argument("--log", type=Path, help="keep pytest's output: LOG-fast.txt, LOG-full.txt")
    args = parser.parse_args()
    rows = []
    for subset in [args.only] if args.only else ["fast", "full"]:
        load = os.getloadavg()[0]
        log = args.log.with_name(f"{args.log.name}-{subset}.txt") if args.log else None
        seconds, summary, code = run_suite(subset, args.workers, args.dist, log)
        rows.append((subset, seconds, TARGETS[subset], load, summary, code))
        print(f"{subset}: {seconds:.0f} s ({summary}), exit {code}", file=sys.stderr, flush=True)
    print(f"\n{os.cpu_count()} CPUs; -n {args.workers} --dist {args.dist}\n")
    print("| suite | wall time | target | load average before | pytest says |")
    print("|---|---:|---:|---:|---|")
    for subset, seconds, target, load, summary, code in rows:
        name = "`-m \"not slow\"` (fast)" if subset == "fast" else "whole suite"
        flag = "" if code == 0 else f" (exit {code})"
        print(f"| {name} | {seconds:.0f} s | ≤ {target} s | {load:.1f} | {summary}{flag} |")


if __name__ == "__main__":
    main()
