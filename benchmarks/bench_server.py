"""Logging through `mltrail server`: a training loop's speed against a URL, and the points
per second that reach the server's disk, with one client and with several at once.

    python benchmarks/bench_server.py [--seconds 20] [--clients 1 8]

Each client is a process that calls `log_metric` in a loop for `--seconds` (its runs go to
a local spool and a background thread sends them), then ends its run; at exit it waits
for its last lines to reach the server. Points/s = all points logged / the time from the
clients' start until every client has exited (so until the server held every point),
checked against the server's folder. Then a warm filtered `search_runs` through the
server on `--search-runs` runs, and how long a logged point takes to show in it.

Beside it, the same one-client workload against MLflow's tracking server (`mlflow server`
with a sqlite backend), which a client feeds with `log_batch` calls of 1,000 points,
MLflow's fastest way in; each call returns once its points are committed. MLflow runs in
the Python given by `--mlflow-python` (it pins an older pyarrow than mltrail allows, so
it usually lives in its own virtual environment).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dashboard import free_port, wait_until_up  # noqa: E402
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


MLFLOW_CLIENT = """
import sys, time
from mlflow import MlflowClient
from mlflow.entities import Metric
url, seconds = sys.argv[1], float(sys.argv[2])
client = MlflowClient(url)
run_id = client.create_run(client.create_experiment("bench")).info.run_id
points, started = 0, time.perf_counter()
while time.perf_counter() - started < seconds:
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (points + i + 1), now, points + i) for i in range(1000)])
    points += 1000
elapsed = time.perf_counter() - started
client.set_terminated(run_id)
print(points, points / elapsed, len(client.get_metric_history(run_id, "loss")))
"""


def mlflow_server(tmp: Path, python: str, seconds: float) -> float | None:
    """Points/s one client's log_batch calls put into `mlflow server` (sqlite)."""
    port = free_port()
    server = subprocess.Popen([python, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                               "--default-artifact-root", (tmp / "mlflow-artifacts").as_uri(), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_up(f"{url}/health"):
            print("mlflow server did not start", flush=True)
            return None
        done = subprocess.run([python, "-c", MLFLOW_CLIENT, url, str(seconds)], capture_output=True, text=True)
        if done.returncode:
            print(f"the MLflow client failed: {done.stderr[-500:]}", flush=True)
            return None
        points, rate, stored = done.stdout.split()[-3:]  # (MLflow may print notices first)
    finally:
        server.terminate()
        server.wait(30)
    print(f"MLflow server (sqlite), 1 client, log_batch of 1,000, {seconds:.0f} s: {int(stored):,} of "
          f"{int(points):,} points stored, {float(rate):,.0f} points/s", flush=True)
    return float(rate)


def serve(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "server",
                               "--store", str(folder), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    if not wait_until_up(f"{url}/api/v1/health"):
        raise SystemExit("the server did not start")
    return server, url


def clients(tmp: Path, clients: int, seconds: float) -> float:
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
    return arrived / elapsed


def search(tmp: Path, runs: int) -> None:
    folder = tmp / "search"
    mltrail_create_runs(folder, runs, 1)
    server, url = serve(folder)
    try:
        remote = mltrail.Store(url, spool=tmp / "spool-search")
        found = len(remote.search_runs(experiment="bench", filter=FILTER))  # warms the server's caches
        times = _timed(lambda: remote.search_runs(experiment="bench", filter=FILTER))
        run = remote.start_run("visible", log_git=False, log_packages=False)
        run.log_metric("loss", 0.5)
        started = time.perf_counter()
        while not _shows_a_loss(remote):
            time.sleep(0.05)
        visible = time.perf_counter() - started
        run.end()
        remote.upload()  # its end, before the server stops
        # the same search by a user of a store with users (a grant to read the experiment;
        # 20 other experiments they may not see), so each call checks the token and levels
        local = mltrail.Store(folder)
        token = local.access.add_user("reader")
        local.access.grant("experiment", "bench", "reader", "read")
        for i in range(20):
            local.access.add_user(f"other-{i}")
            local.access.grant("experiment", f"private-{i}", f"other-{i}", "manage")
        reader = mltrail.Store(url, token=token, spool=tmp / "spool-reader")
        assert len(reader.search_runs(experiment="bench", filter=FILTER)) == found
        as_user = _timed(lambda: reader.search_runs(experiment="bench", filter=FILTER))
        reader.close(wait=0)
    finally:
        server.terminate()
        server.wait(30)
    print(f"search_runs through the server, {runs:,} runs ({found:,} match): {statistics.median(times) * 1000:.1f} ms "
          f"median of 10 (as a user of a store with 22 users: {statistics.median(as_user) * 1000:.1f} ms); "
          f"a new run's point visible in search_runs after {visible:.2f} s", flush=True)


def _timed(call: object, repeat: int = 10) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return times


LIVE_JOB = """
import sys, time, mltrail
with mltrail.Store(sys.argv[1], spool=sys.argv[2]).start_run("live", name="remote-job", log_git=False,
                                                           log_packages=False) as run:
    started = time.time()
    while time.time() - started < float(sys.argv[3]):
        run.log_metric("clock", time.time())  # the page shows when it was logged
        time.sleep(0.1)
"""


def live_page(tmp: Path, seconds: float) -> None:
    """How long after a remote job logs a value the Live page (`mltrail ui --store URL`,
    refreshing every 1 s) shows it, in Debian's chromium through Playwright."""
    import re
    import shutil

    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if not chromium:
        print("the Live page: skipped (needs chromium and playwright)", flush=True)
        return
    server, url = serve(tmp / "live")
    ui_port = free_port()
    job = subprocess.Popen([sys.executable, "-c", LIVE_JOB, url, str(tmp / "spool-live"), str(seconds + 60)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ui = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "ui", "--store", url,
                           "--port", str(ui_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env={**os.environ, "MLTRAIL_SPOOL": str(tmp / "spool-ui")})
    lags: list[float] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            wait_until_up(f"http://127.0.0.1:{ui_port}/_stcore/health")
            page.goto(f"http://127.0.0.1:{ui_port}/live")
            page.get_by_text("remote-job").first.wait_for(state="attached", timeout=60_000)
            slider = page.get_by_role("slider").first
            slider.focus()
            page.keyboard.press("ArrowLeft")  # refresh every 1 s instead of 2
            page.wait_for_timeout(3000)
            shown = 0.0
            started = time.time()
            while time.time() - started < seconds:
                text = " ".join(page.locator('[role="gridcell"]').all_text_contents())
                values = [float(v) for v in re.findall(r"\b1[0-9]{9}\.[0-9]+", text)]
                if values and max(values) > shown:
                    shown = max(values)
                    lags.append(time.time() - shown)
                page.wait_for_timeout(50)
            browser.close()
    finally:
        for proc in (job, ui, server):
            proc.terminate()
            proc.wait(30)
    if not lags:
        print("the Live page never showed the remote job's values", flush=True)
        return
    print(f"the Live page (refresh 1 s) showed a remote job's newest value {statistics.median(lags):.2f} s "
          f"after it was logged (median of {len(lags)} refreshes; at most {max(lags):.2f} s)", flush=True)


def _shows_a_loss(remote: object) -> bool:
    try:
        found = remote.search_runs(experiment="visible")  # type: ignore[attr-defined]
    except mltrail.NotFoundError:  # no run of it on the server yet
        return False
    return bool(len(found)) and "metrics.loss" in found and bool(found["metrics.loss"].notna().any())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--search-runs", type=int, default=10_000)
    parser.add_argument("--mlflow-python", default=None,
                        help="a Python with mlflow installed (default: this one, if it imports mlflow)")
    args = parser.parse_args()
    python = args.mlflow_python or (sys.executable if _imports_mlflow() else None)
    with tempfile.TemporaryDirectory() as tmp:
        rates = {count: clients(Path(tmp), count, args.seconds) for count in args.clients}
        if python:
            theirs = mlflow_server(Path(tmp), python, args.seconds)
            if theirs and 1 in rates:
                print(f"one client into the server's storage: mltrail {rates[1]:,.0f} points/s, MLflow {theirs:,.0f}: "
                      f"{rates[1] / theirs:,.0f}x", flush=True)
        search(Path(tmp), args.search_runs)
        live_page(Path(tmp), args.seconds)


def _imports_mlflow() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
