"""Logging through `mltrail server`: a training loop's speed against a URL, and the points
per second that reach the server's disk, with one client and with several at once.

    python benchmarks/bench_server.py [--seconds 20] [--clients 1 8]

Each client is a process that calls `log_metric` in a loop for `--seconds` (its runs go to
a local spool and a background thread sends them), then ends its run; at exit it waits
for its last lines to reach the server. Points/s = all points logged / the time from the
clients' start until every client has exited (so until the server held every point),
checked against the server's folder. Then a warm filtered `search_runs` through the
server on `--search-runs` runs, and how long a logged point takes to show in it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dashboard import free_port  # noqa: E402
from bench_tracking import FILTER, mltrail_create_runs  # noqa: E402

import mltrail  # noqa: E402

CLIENT = """
import sys, time, mltrail
url, spool, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
run = mltrail.Store(url, spool=spool).start_run("bench", log_git=False, log_packages=False)
log = run.log_metric
calls, started = 0, time.perf_counter()
while time.perf_counter() - started < seconds:
    for i in range(10_000):
        log("loss", 1.0 / (calls + i + 1))
    calls += 10_000
elapsed = time.perf_counter() - started
run.end()
print(calls, calls / elapsed)
"""


def serve(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "server",
                               "--store", str(folder), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/api/v1/health", timeout=2).close()
            return server, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def clients(tmp: Path, clients: int, seconds: float) -> None:
    folder = tmp / f"central-{clients}"
    server, url = serve(folder)
    try:
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", CLIENT, url, str(tmp / f"spool-{clients}-{i}"), str(seconds)],
                                  stdout=subprocess.PIPE, text=True) for i in range(clients)]
        outputs = [p.communicate()[0].split() for p in procs]
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(30)
    logged = sum(int(o[0]) for o in outputs)
    arrived = len(mltrail.Store(folder).metric_history())
    rate = statistics.median(float(o[1]) for o in outputs)
    print(f"{clients} client(s), {seconds:.0f} s of logging: log_metric {rate:,.0f} calls/s a client; "
          f"{arrived:,} of {logged:,} points on the server's disk {elapsed:.1f} s after the start: "
          f"{arrived / elapsed:,.0f} points/s", flush=True)


def search(tmp: Path, runs: int) -> None:
    folder = tmp / "search"
    mltrail_create_runs(folder, runs, 1)
    server, url = serve(folder)
    try:
        remote = mltrail.Store(url, spool=tmp / "spool-search")
        found = len(remote.search_runs(experiment="bench", filter=FILTER))  # warms the server's caches
        times = []
        for _ in range(10):
            started = time.perf_counter()
            remote.search_runs(experiment="bench", filter=FILTER)
            times.append(time.perf_counter() - started)
        run = remote.start_run("visible", log_git=False, log_packages=False)
        run.log_metric("loss", 0.5)
        started = time.perf_counter()
        while not _shows_a_loss(remote):
            time.sleep(0.05)
        visible = time.perf_counter() - started
        run.end()
        remote.upload()  # its end, before the server stops
    finally:
        server.terminate()
        server.wait(30)
    print(f"search_runs through the server, {runs:,} runs ({found:,} match): {statistics.median(times) * 1000:.1f} ms "
          f"median of 10; a new run's point visible in search_runs after {visible:.2f} s", flush=True)


def _shows_a_loss(remote: object) -> bool:
    try:
        found = remote.search_runs(experiment="visible")  # type: ignore[attr-defined]
    except mltrail.NotFoundError:  # no run of it on the server yet
        return False
    return bool(len(found)) and "metrics.loss" in found and bool(found["metrics.loss"].notna().any())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--search-runs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.clients:
            clients(Path(tmp), count, args.seconds)
        search(Path(tmp), args.search_runs)


if __name__ == "__main__":
    main()
