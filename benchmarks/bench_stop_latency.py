"""How long a remote job takes to end once someone asks it to stop: from the request
(``store.request_stop``, what ``mltrail stop`` and the dashboard's button call) to the
job's process having exited, its run KILLED on the server.

    python benchmarks/bench_stop_latency.py [--stops 20]

A real ``mltrail server`` process on a fresh folder; for each stop, a real job process
logs through it (``mltrail.Store(URL)``, default settings) in a loop that checks
``run.stop_requested`` every 10 ms, as a training loop would. Once the server holds the
run, the stop is requested and the clock runs until the job's process has exited (its
last lines sent). The job's own start-up is not counted. Prints p50, p95 and the worst
over ``--stops`` stops, and checks every run ended KILLED on the server.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dashboard import free_port, wait_until_up  # noqa: E402

import mltrail  # noqa: E402
from mltrail.errors import NotFoundError  # noqa: E402

JOB = """
import sys, time, mltrail
store = mltrail.Store(sys.argv[1], spool=sys.argv[2])
with store.start_run("stops", log_git=False, log_packages=False) as run:
    print(run.id, flush=True)
    step = 0
    while not run.stop_requested:
        run.log_metric("loss", 1 / (step + 1), step=step)
        step += 1
        time.sleep(0.01)
"""


def one_stop(url: str, spool: Path) -> float:
    job = subprocess.Popen([sys.executable, "-c", JOB, url, str(spool)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    run_id = job.stdout.readline().strip()
    store = mltrail.Store(url)
    deadline = time.monotonic() + 60
    while True:  # the stop needs the run on the server, RUNNING
        try:
            if store.get_run(run_id)["run"]["status"] == "RUNNING":
                break
        except NotFoundError:
            pass
        if time.monotonic() > deadline or job.poll() is not None:
            raise SystemExit(f"the job's run never reached the server: {job.communicate()[1]}")
        time.sleep(0.05)
    started = time.perf_counter()
    store.request_stop(run_id, "benchmark")
    job.wait(timeout=120)
    elapsed = time.perf_counter() - started
    _, err = job.communicate()
    if job.returncode != 0:
        raise SystemExit(f"the job failed: {err}")
    status = store.get_run(run_id)["run"]["status"]
    if status != "KILLED":
        raise SystemExit(f"run {run_id} ended {status}, not KILLED")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stops", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "server",
                                   "--store", f"{tmp}/central", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not wait_until_up(f"{url}/api/v1/health"):
                raise SystemExit("the server did not start")
            times = [one_stop(url, Path(tmp) / "spool") for _ in range(args.stops)]
        finally:
            server.terminate()
            server.wait(timeout=30)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    print(f"stop request -> job exited, {len(times)} stops: p50 {statistics.median(times):.2f} s, "
          f"p95 {p95:.2f} s, worst {times[-1]:.2f} s")


if __name__ == "__main__":
    main()
