"""How fast the dashboard's Runs page shows a large store, in a real browser.

    python benchmarks/bench_dashboard.py              # 10,000 runs
    python benchmarks/bench_dashboard.py --runs 1000

Generates a store (each run: 10 params, 5 metrics x 20 steps), starts `mltrail ui` on a
free port, and times, in headless Debian chromium driven by Playwright, from navigation
until the Runs page shows its run count and table: in a new browser context (an empty
browser cache: Streamlit's front end loads its ~0.5 MB table component then), then a
reload (warm browser cache). A store of 50 runs is measured the same way first: the part
of the time that is Streamlit's own, whatever the store.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tracking import mltrail_create_runs  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, seconds: float = 120) -> bool:
    """Poll ``url`` until it answers (a service the benchmark started); False past ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def measure(runs: int, repeat: int) -> tuple[list[float], list[float]]:
    """Seconds until the Runs page shows its table: in new browser contexts (empty
    cache) and on reloads (warm cache), each a new Streamlit session."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        started = time.perf_counter()
        mltrail_create_runs(store, runs, 20)
        print(f"made {runs:,} runs in {time.perf_counter() - started:.1f} s", flush=True)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "ui",
                                   "--store", str(store), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{url}/_stcore/health")
            label = f"{runs} runs ·"
            cold, warm = [], []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
                for _ in range(repeat):
                    page = browser.new_page(viewport={"width": 1500, "height": 1000})
                    start = time.perf_counter()
                    page.goto(url)
                    page.get_by_text(label).wait_for(timeout=120_000)
                    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=120_000)
                    cold.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    page.reload()
                    page.get_by_text(label).wait_for(timeout=120_000)
                    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=120_000)
                    warm.append(time.perf_counter() - start)
                    page.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(30)
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--baseline-runs", type=int, default=50,
                        help="a small store measured the same way: what Streamlit itself costs")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for runs in (args.baseline_runs, args.runs):
        cold, warm = measure(runs, args.repeat)
        print(f"Runs page with {runs:,} runs: new browser {statistics.median(cold):.2f} s "
              f"(first, server caches cold: {cold[0]:.2f} s), reload {statistics.median(warm):.2f} s "
              f"(median of {args.repeat})", flush=True)


if __name__ == "__main__":
    main()
