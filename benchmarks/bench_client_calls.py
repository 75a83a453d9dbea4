"""Small calls to `mltrail server`: the remote client on urllib (a new connection a call)
against the client on httpx (one pool of keep-alive connections), in the same run.

    python benchmarks/bench_client_calls.py [-n 300] [--rounds 5]

A real `mltrail server` on a temporary folder, on this machine, over plain HTTP and over
TLS (the same app under uvicorn with a throwaway certificate from ``trustme``, trusted
through ``SSL_CERT_FILE`` by both clients). Each row: ``-n`` calls one after the other
from one thread through ``Server.call`` (what a job's background sender, the CLI and the
dashboard use); calls/s is the median of ``--rounds`` rounds, the two clients alternating
round by round; "client CPU" is the calling process's CPU time a call (median round). The
urllib client is remote/http.py as it was before issue 27 (``git show`` of the commit
below), loaded beside the current one. Loopback has no network latency: over a network,
each connection a call also costs the round trips of its TCP (and TLS) handshake.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dashboard import free_port, wait_until_up  # noqa: E402
from bench_server import serve  # noqa: E402

from mltrail.errors import InvalidInputError, NotFoundError  # noqa: E402
from mltrail.remote.http import Server  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
URLLIB_COMMIT = "29764e6f977634dabda053405d0219dc42381496"  # the last remote/http.py on urllib
CALLS = {
    "GET /api/v1/health": ("GET", "/api/v1/health", None),
    "GET /api/v1/whoami": ("GET", "/api/v1/whoami", None),
    "GET /api/v1/runs/{no such run}/id (404: an error answer)": ("GET", "/api/v1/runs/nosuchrun/id", None),
    "POST /api/v1/features/online, a small body (422: an error answer)":
        ("POST", "/api/v1/features/online", b'{"entity": {}}'),
}

SERVE_TLS = """
import sys, uvicorn, mltrail
from mltrail.server.app import create_app
folder, port, certfile, keyfile = sys.argv[1:]
uvicorn.run(create_app(mltrail.Store(folder), None), host="127.0.0.1", port=int(port), log_level="warning",
            http="httptools", ssl_certfile=certfile, ssl_keyfile=keyfile)
"""


def urllib_server() -> type:
    """The Server class of the urllib client, from git (its relative imports resolve in mltrail.remote)."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{URLLIB_COMMIT}:src/mltrail/remote/http.py"],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("mltrail.remote._http_urllib")
    module.__package__ = "mltrail.remote"
    exec(compile(source, f"{URLLIB_COMMIT[:7]}:src/mltrail/remote/http.py", "exec"), module.__dict__)
    return module.Server


def serve_tls(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    os.environ["SSL_CERT_FILE"] = str(tmp / "ca.pem")  # (both clients use the default trust store)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVE_TLS, str(tmp / "central-tls"), str(port),
                               str(tmp / "cert.pem"), str(tmp / "key.pem")])
    url = f"https://127.0.0.1:{port}"
    if not wait_until_up(f"{url}/api/v1/health"):
        raise SystemExit("the TLS server did not start")
    return server, url


def rate(server: Any, method: str, path: str, body: bytes | None, n: int) -> tuple[float, float]:
    """Calls/s, and the client's CPU seconds a call."""
    cpu, started = time.process_time(), time.perf_counter()
    for _ in range(n):
        try:
            server.call(method, path, body)
        except (NotFoundError, InvalidInputError):  # the answer of the error rows
            pass
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n


def rows(url: str, n: int, rounds: int) -> None:
    old = urllib_server()
    for name, (method, path, body) in CALLS.items():
        before, after = [], []
        new = Server(url)
        new.call("GET", "/api/v1/health")  # (the pool made, httpx's lazy imports done)
        for _ in range(rounds):
            before.append(rate(old(url), method, path, body, n))
            after.append(rate(new, method, path, body, n))
        new.close()
        (a, a_cpu), (b, b_cpu) = (sorted(r)[len(r) // 2] for r in (before, after))  # the median round
        print(f"| {url.split(':')[0]} | {name} | {a:,.0f} | {b:,.0f} | {b / a:.2f} | "
              f"{a_cpu * 1e3:.2f} | {b_cpu * 1e3:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=300, help="calls a round (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per client (default 5)")
    args = parser.parse_args()
    print(f"| | {args.n} calls, one thread (median of {args.rounds} rounds) | urllib calls/s | httpx calls/s | × "
          f"| urllib client CPU ms/call | httpx client CPU ms/call |")
    print("|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for start in (lambda: serve(Path(tmp) / "central"), lambda: serve_tls(Path(tmp))):
            process, url = start()
            try:
                rows(url, args.n, args.rounds)
            finally:
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
