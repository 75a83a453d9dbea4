"""How long `import mltrail` takes, and how much memory, for a script that only logs.

    python benchmarks/bench_import.py [-n 10]

Each figure is the median over ``-n`` fresh child processes (the interpreter's start
included, as a user's short job pays it): wall time of the child, and its peak RSS
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` read after each child exits, in a
fresh parent per child so that one child's peak does not mask the next). Rows: a bare
interpreter, pydantic alone (what the event schemas cannot do without), ``import mltrail``, and ``import mltrail`` plus one run
with a few params and metrics logged to a temporary folder. Issue 27's target for the
last row is ≤ 0.3 s and ≤ 60 MB on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap

CASES = {
    "python -c pass (the interpreter alone)": "pass",
    # the floor under `import mltrail`: the writer validates every event with pydantic
    "import pydantic (the event schemas' library)": "from pydantic import BaseModel, TypeAdapter",
    "import mltrail": "import mltrail",
    "import mltrail + one run logged": textwrap.dedent("""
        import sys, mltrail
        store = mltrail.Store(sys.argv[1])
        with store.start_run("bench", log_git=False, log_packages=False) as run:
            run.log_params({"lr": 0.01, "depth": 6, "model": "gbm"})
            for step in range(10):
                run.log_metrics({"loss": 1 / (step + 1), "acc": step / 10}, step=step)
    """),
}

# a parent per child: ru_maxrss of RUSAGE_CHILDREN is the largest child so far, so one
# parent measures exactly one child
MEASURE = textwrap.dedent("""
    import json, resource, subprocess, sys, time
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]], check=True)
    wall = time.perf_counter() - start
    print(json.dumps({"wall": wall, "rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
""")


def measure(code: str, folder: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", MEASURE, code, folder], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=10, help="fresh processes per row (default 10)")
    args = parser.parse_args()
    print(f"| case (median of {args.n} fresh processes) | wall time | peak RSS |")
    print("|---|---:|---:|")
    for label, code in CASES.items():
        walls, peaks = [], []
        for _ in range(args.n):
            with tempfile.TemporaryDirectory() as folder:
                figures = measure(code, f"{folder}/store")
            walls.append(figures["wall"])
            peaks.append(figures["rss_kb"] / 1024)
        print(f"| {label} | {statistics.median(walls):.3f} s | {statistics.median(peaks):.1f} MB |",
              flush=True)


if __name__ == "__main__":
    main()
