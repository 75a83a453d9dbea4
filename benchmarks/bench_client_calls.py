"""Small calls to `mltrail server`: the remote client on urllib (a new connection a call)
against the client on httpx (one pool of keep-alive connections), in the same run.

    python benchmarks/bench_client_calls.py [-n 2000] [--rounds 3]

A real `mltrail server` on a temporary folder, on this machine. Each row: ``-n`` calls one
after the other from one thread, through ``Server.call`` (what the job's background
sender, the CLI and the dashboard use), the median calls/s of ``--rounds`` rounds, the two
clients alternating round by round. The urllib client is the module as it was before
issue 27 (``git show`` of the commit below), loaded beside the current one.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import serve  # noqa: E402

from mltrail.remote.http import Server  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
URLLIB_COMMIT = "29764e6f977634dabda053405d0219dc42381496"  # the last remote/http.py on urllib
CALLS = {
    "GET /api/v1/health": ("GET", "/api/v1/health", None),
    "GET /api/v1/whoami": ("GET", "/api/v1/whoami", None),
    "POST /api/v1/features/online (404, an error answer)": ("POST", "/api/v1/features/online", b"{}"),
}


def urllib_server() -> type:
    """The Server class of the urllib client, from git (its relative imports resolve in mltrail.remote)."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{URLLIB_COMMIT}:src/mltrail/remote/http.py"],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("mltrail.remote._http_urllib")
    module.__package__ = "mltrail.remote"
    exec(compile(source, f"{URLLIB_COMMIT[:7]}:src/mltrail/remote/http.py", "exec"), module.__dict__)
    return module.Server


def rate(server: Any, method: str, path: str, body: bytes | None, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        try:
            server.call(method, path, body)
        except Exception as exc:  # noqa: BLE001 - an error answer is the workload of one row
            if type(exc).__name__ != "NotFoundError":
                raise
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="calls a round (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per client (default 3)")
    args = parser.parse_args()
    old = urllib_server()
    with tempfile.TemporaryDirectory() as tmp:
        process, url = serve(Path(tmp) / "central")
        try:
            print(f"| {args.n} calls, one thread (median of {args.rounds}) | urllib calls/s | httpx calls/s | × |")
            print("|---|---:|---:|---:|")
            for name, (method, path, body) in CALLS.items():
                before, after = [], []
                new = Server(url)
                for _ in range(args.rounds):
                    before.append(rate(old(url), method, path, body, args.n))
                    after.append(rate(new, method, path, body, args.n))
                new.close()
                a, b = statistics.median(before), statistics.median(after)
                print(f"| {name} | {a:,.0f} | {b:,.0f} | {b / a:.2f} |")
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
