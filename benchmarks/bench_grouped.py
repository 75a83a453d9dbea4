"""Grouped curves of many runs: ``Store.grouped_history`` on runs x steps points in a few
groups, and the Runs page grouping them in a real browser (Debian's chromium, driven by
Playwright): how long until the chart is drawn, and how many bytes the page received.

    python benchmarks/bench_grouped.py [--runs 1000] [--steps 10000] [--groups 5] [--no-browser]

The store is written through the tracking API (one metric, ``loss``, a point a step) and
compacted before anything is timed; the page is opened at
``/?experiment=bench&group_by=params.lr`` (the Runs page) on a fresh ``mltrail ui`` whose Runs page was
opened once before (ungrouped), three times, with each band (the aggregation is never cached):
the median is the figure.
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
from pathlib import Path

import numpy as np

import mltrail

LRS = [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001, 0.00003]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def build(root: Path, runs: int, steps: int, groups: int) -> mltrail.Store:
    store = mltrail.Store(root)
    x = np.arange(steps)
    for i in range(runs):
        lr = LRS[i % groups]
        with store.start_run("bench", name=f"seed-{i}", log_git=False, log_packages=False, log_system=False,
                             log_command=False) as run:
            run.log_params({"lr": lr, "seed": i})
            values = np.exp(-x * lr / 10) + np.random.default_rng(i).normal(0, 0.02, steps)
            for step, value in zip(x.tolist(), values.tolist()):
                run.log_metric("loss", value, step=step)
    store.compact()
    return store


def timed(call):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BANDS = ("std", "minmax", "ci")  # one page load each: each band a new aggregation, none cached


def in_browser(root: Path) -> tuple[list[float], list[int]]:
    """Seconds from asking for the Runs page, grouped, to its grouped chart drawn; and the
    bytes the page's websocket received meanwhile (what Streamlit sends: the table, the chart).
    One full page load a band: each asks the store for a new aggregation."""
    import httpx
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "ui", "--store", str(root), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/_stcore/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            received = [0]

            def on_socket(ws):  # type: ignore[no-untyped-def]
                ws.on("framereceived", lambda payload: received.__setitem__(0, received[0] + len(payload)))

            page.on("websocket", on_socket)
            # the dashboard as a user finds it: its code and styles in the browser's cache, the Runs
            # page visited once (the server's first run of a page imports its modules: ~3 s more)
            page.goto(f"{url}/?experiment=bench")
            page.locator('[data-testid="stDataFrame"]').first.wait_for(state="attached", timeout=120_000)
            seconds, sizes = [], []
            for band in BANDS:
                page.wait_for_timeout(2_000)  # the last page's work done
                received[0] = 0
                started = time.perf_counter()
                page.goto(f"{url}/?experiment=bench&group_by=params.lr" + (f"&band={band}" if band != "std" else ""))
                page.locator('[data-testid="stVegaLiteChart"] g.mark-area path').first.wait_for(
                    state="attached", timeout=120_000)
                seconds.append(time.perf_counter() - started)
                sizes.append(received[0])
            browser.close()
        return seconds, sizes
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=5, choices=range(1, len(LRS) + 1))
    parser.add_argument("--no-browser", action="store_true", help="Time the store's aggregation only.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        made, store = timed(lambda: build(root, args.runs, args.steps, args.groups))
        print(f"store: {args.runs:,} runs x {args.steps:,} steps in {args.groups} groups, logged and compacted "
              f"in {made:.0f} s")
        runs = store.search_runs("bench")
        groups = dict(zip(runs["run_id"], "lr=" + runs["params.lr"].astype(str)))
        first, frame = timed(lambda: store.grouped_history(groups, ["loss"]))
        warm = min(timed(lambda: store.grouped_history(groups, ["loss"]))[0] for _ in range(3))
        smoothed = min(timed(lambda: store.grouped_history(groups, ["loss"], smoothing=0.9))[0] for _ in range(3))
        history, points = timed(lambda: len(store.metric_history(list(groups), ["loss"])))
        print(f"| grouped_history, {points:,} points into {len(frame):,} rows (first / warm, best of 3) | "
              f"{first:.2f} s / {warm:.2f} s |")
        print(f"| ... with each run smoothed first (warm) | {smoothed:.2f} s |")
        print(f"| metric_history of the same points, for comparison (every point to pandas) | {history:.2f} s |")
        if not args.no_browser:
            seconds, sizes = in_browser(root)
            each = ", ".join(f"{band} {s:.2f} s" for band, s in zip(BANDS, seconds))
            print(f"| the Runs page grouped by lr: asked for to chart drawn, in chromium (median of 3: {each}) "
                  f"| {statistics.median(seconds):.2f} s |")
            print(f"| bytes the page received meanwhile (the most of 3) | {max(sizes) / 1e6:.2f} MB |")


if __name__ == "__main__":
    main()
