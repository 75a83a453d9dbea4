"""A large model logged through `mltrail server`: time to arrival and peak memory of both sides.

    python benchmarks/bench_large_artifact.py [--size-mb 2048] [--max-body-mb 64] [--download]

A file of ``--size-mb`` random bytes is logged with ``run.log_artifact`` by a client
process against a real ``mltrail server`` subprocess (``--max-body`` as given). The client
copies the file into its spool (hashing it), its uploader sends it in parts; the run's
``close()`` returns once every line, the artifact's too, is on the server, which it takes
only after the blob was checked and moved into blobs-large/. Reported: the local copy's
time, the time from the end of ``log_artifact`` to ``close()`` (upload, the server's whole
blob check and the run's last lines), the throughput, and the peak RSS of each process
(the client's and the server's high-water mark, VmHWM, read while psutil samples RSS every
50 ms as a second opinion on systems without /proc). The server's file is hashed again here
and compared with the sha256 of the file that was logged. ``--download`` then fetches it
back through a second client (streamed to disk) and reports the same.

Needs about four times ``--size-mb`` of free disk under the temporary folder (source,
spool copy, server, download).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dashboard import free_port, wait_until_up  # noqa: E402

import mltrail  # noqa: E402
from mltrail.storage.blobs import file_sha256  # noqa: E402

CLIENT = """
import sys, time, mltrail
url, spool, source = sys.argv[1], sys.argv[2], sys.argv[3]
store = mltrail.Store(url, spool=spool)
run = store.start_run("bench", log_git=False, log_packages=False, log_system=False)
started = time.perf_counter()
run.log_artifact(source)
logged = time.perf_counter()
run.end()
left = store.close(wait=24 * 3600)
arrived = time.perf_counter()
print(run.id, logged - started, arrived - logged, left)
"""

READER = """
import sys, time, mltrail
url, spool, run_id, name = sys.argv[1:5]
started = time.perf_counter()
path = mltrail.Store(url, spool=spool).artifact_path(run_id, name)
print(path, time.perf_counter() - started)
"""


def peak_rss(pid: int) -> int | None:
    """The process's resident-memory high-water mark in bytes (Linux's VmHWM), if known."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Sampler(threading.Thread):
    """Polls a process's RSS (psutil) and its VmHWM until stopped; the highest of each."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.sampled = 0
        self.hwm = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                self.sampled = max(self.sampled, self.process.memory_info().rss)
                self.hwm = max(self.hwm, peak_rss(self.process.pid) or 0)
            except psutil.NoSuchProcess:
                return


def make_file(path: Path, size: int) -> str:
    """``size`` random bytes, written 8 MiB at a time; their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 8 << 20))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--max-body-mb", type=int, default=64)
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--tmp", default=None, help="where to write (default: the system's temporary folder)")
    args = parser.parse_args()
    size = args.size_mb << 20
    tmp = Path(tempfile.mkdtemp(prefix="mltrail-bench-large-", dir=args.tmp))
    free = shutil.disk_usage(tmp).free
    if free < 4.2 * size:
        raise SystemExit(f"{mb(free)} free under {tmp}: {mb(4.2 * size)} needed for {mb(size)}; use --size-mb")
    try:
        source = tmp / "model.bin"
        started = time.perf_counter()
        sha256 = make_file(source, size)
        print(f"made {mb(size)} of random bytes in {time.perf_counter() - started:.1f} s", flush=True)
        folder = tmp / "central"
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "server", "--store",
                                   str(folder), "--port", str(port), "--max-body", str(args.max_body_mb << 20)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            if not wait_until_up(f"{url}/api/v1/health"):
                raise SystemExit(f"the server did not start: {server.stderr.read() if server.stderr else ''}")
            server_idle = psutil.Process(server.pid).memory_info().rss
            server_watch = Sampler(server.pid)
            server_watch.start()
            client = subprocess.Popen([sys.executable, "-c", CLIENT, url, str(tmp / "spool"), str(source)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            client_watch = Sampler(client.pid)
            client_watch.start()
            out, err = client.communicate()
            client_watch.stop.set()
            if client.returncode:
                raise SystemExit(f"the client failed: {err[-2000:]}")
            run_id, copy_s, arrive_s, left = out.split()
            server_hwm = peak_rss(server.pid) or server_watch.hwm
            server_watch.stop.set()
            print(f"mltrail server --max-body {args.max_body_mb} MiB, artifact of {mb(size)}:", flush=True)
            print(f"  log_artifact (copy into the spool, hashed): {float(copy_s):.1f} s", flush=True)
            print(f"  then until close() returned (all on the server, {left} left): {float(arrive_s):.1f} s, "
                  f"{size / 2**20 / float(arrive_s):,.0f} MiB/s", flush=True)
            print(f"  peak RSS: client {mb(client_watch.hwm)} (sampled {mb(client_watch.sampled)}), server "
                  f"{mb(server_hwm)} (sampled {mb(server_watch.sampled)}; {mb(server_idle)} before the upload)",
                  flush=True)
            on_server = mltrail.Store(folder).artifact_path(run_id, "model.bin")
            got, got_size = file_sha256(on_server)
            print(f"  on the server: {on_server.relative_to(folder)}, {got_size:,} bytes, sha256 "
                  f"{'matches' if got == sha256 else 'DIFFERS'}", flush=True)
            if got != sha256:
                raise SystemExit("the server's copy differs from the file that was logged")
            if args.download:
                reader = subprocess.Popen([sys.executable, "-c", READER, url, str(tmp / "reader"), run_id, "model.bin"],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                reader_watch = Sampler(reader.pid)
                reader_watch.start()
                out, err = reader.communicate()
                reader_watch.stop.set()
                if reader.returncode:
                    raise SystemExit(f"the reader failed: {err[-2000:]}")
                path, seconds = out.split()
                fetched = file_sha256(Path(path))[0]
                print(f"  download (artifact_path, streamed): {float(seconds):.1f} s, peak RSS {mb(reader_watch.hwm)}, "
                      f"sha256 {'matches' if fetched == sha256 else 'DIFFERS'}", flush=True)
        finally:
            server.terminate()
            server.wait(60)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
