"""Load on the A/B router against the same load straight at one model service, one run.

    apt-get install wrk          # the load generator (C, so it leaves the cores to the servers)
    python benchmarks/bench_router.py [--seconds 15] [--connections 64] [--paced-rate 1000]

Starts two `mltrail serve model` processes (the sample store's churn models: logistic
regressions with C=1 for control and C=0.1 for treatment, equally costly, so that the
router is the only difference from the direct load; ``--treatment-run gb-lr0.2`` puts a
gradient-boosting model, ~2x the CPU a prediction, behind treatment) and `mltrail serve router` on
loopback, then runs wrk with POSTs of distinct unit ids, each phase bounded in time:

- flat out: 64 connections each sending its next request as soon as the last is
  answered; once at the router, once directly at the control's model service. Gives
  requests/s. Saturated, latency is mostly queueing (p50 ~ connections / throughput), so
  the two p50s differ by the throughput gap, not by what the router adds to a request;
- paced: the same 64 connections, each pausing between requests so that both targets are
  offered about ``--paced-rate`` requests/s, below either's capacity: the difference of
  the p50s is the router's overhead on a request.

Then it stops the router with SIGTERM and checks that the exposures in the results equal
the router's successful responses (wrk does not count requests in flight when it stops,
so up to one per connection more is expected).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEATURES = {"tenure_months": 0.3, "monthly_charges": 1.2, "total_charges": -0.4, "support_calls": 2.1,
            "contract_months": -1.0, "late_payments": 0.8, "data_usage_gb": 0.1, "num_products": -0.2}
LUA = """
PACE_MS = PACE_MS or 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)  -- each wrk thread has its own Lua state: ids must not repeat across them
end
counter = 0
request = function()
  counter = counter + 1
  local body = string.format(BODY, "u-" .. PACE_MS .. "-" .. tid .. "-" .. counter)  -- unique across runs
  return wrk.format("POST", PATH, {["Content-Type"] = "application/json"}, body)
end
delay = function()
  if PACE_MS == 0 then return 0 end
  return math.random(0, 2 * PACE_MS)  -- uniform around PACE_MS: connections do not move in step
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %.1f %.1f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    code = f"import sys\nfrom mltrail.cli import main\nsys.argv = {['mltrail', *args]!r}\nmain()\n"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)


def wait(url: str) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def load(url: str, path: str, body: str, seconds: int, connections: int, tmp: Path,
         pace_ms: int = 0) -> dict[str, float]:
    """Run wrk; ``body`` is JSON, with %s where the unit id goes (Lua's string.format);
    ``pace_ms`` is each connection's mean pause between an answer and its next request."""
    script = tmp / f"post{abs(hash(path))}-{pace_ms}.lua"
    lua_body = body.replace('"', '\\"')
    script.write_text(f'BODY = "{lua_body}"\nPATH = "{path}"\nPACE_MS = {pace_ms}\n' + LUA)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
                          url], capture_output=True, text=True, timeout=seconds + 60).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+)", out)
    if not match:
        raise SystemExit(f"wrk said: {out}")
    requests, errors, status_errors, duration_us, p50_us, p99_us = (float(g) for g in match.groups())
    return {"requests": requests, "errors": errors, "rps": requests / (duration_us / 1e6),
            "p50_ms": p50_us / 1000, "p99_ms": p99_us / 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="of each of the four wrk runs")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--treatment-run", default="logreg-C0.1", help="the sample run serving treatment")
    parser.add_argument("--paced-rate", type=int, default=1000, help="requests/s offered in the paced phase")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    import mltrail

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        root = tmp / "store"
        shutil.copytree(REPO / "sample_runs", root, ignore=shutil.ignore_patterns(".cache"))
        store = mltrail.Store(root)
        ports = {"control": free_port(), "treatment": free_port(), "router": free_port()}
        runs = {"control": "logreg-C1", "treatment": args.treatment_run}
        procs = [start(["serve", "model", "--store", str(root), "--run", runs[v], "--port", str(ports[v])])
                 for v in runs]
        variants = [{"name": "control", "weight": 0.5, "control": True, "url": f"http://127.0.0.1:{ports['control']}"},
                    {"name": "treatment", "weight": 0.5, "url": f"http://127.0.0.1:{ports['treatment']}"}]
        store.ab.create({"key": "load", "owner": "bench", "baseline": 0.1, "mde": 0.02,
                         "hypothesis": {"null": "same", "alternative": "different"},
                         "primary": {"name": "conversion", "kind": "binary"}, "variants": variants}).start()
        router = start(["serve", "router", "--store", str(root), "--port", str(ports["router"])])
        try:
            for port in ports.values():
                wait(f"http://127.0.0.1:{port}/healthz")
            features = json.dumps(FEATURES)
            targets = {"direct": (f"http://127.0.0.1:{ports['control']}", "/predict",
                                  '{"features":' + features + '}'),  # (a model service takes no unit id)
                       "router": (f"http://127.0.0.1:{ports['router']}", "/experiments/load/predict",
                                  '{"unit_id":"%s","features":' + features + '}')}
            pace_ms = round(1000 * args.connections / args.paced_rate)
            rows = {}
            for phase, pace in (("flat out", 0), ("paced", pace_ms)):
                for name, (url, path, body) in targets.items():
                    rows[phase, name] = load(url, path, body, args.seconds, args.connections, tmp, pace)
        finally:
            router.send_signal(signal.SIGTERM)
            router.wait(60)
            for proc in procs:
                proc.terminate()
                proc.wait(30)
        exposures = sum(mltrail.Store(root).ab.get("load").results().units.values())
    successes = int(sum(row["requests"] - row["errors"] for (_, name), row in rows.items() if name == "router"))
    print(f"{args.connections} connections, {args.seconds} s a row")
    print(f"{'':20} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for (phase, name), row in rows.items():
        print(f"{phase + ', ' + name:20} {row['requests']:9,.0f} {row['errors']:7,.0f} {row['rps']:8,.0f} "
              f"{row['p50_ms']:7.2f} {row['p99_ms']:7.2f}")
    for phase in ("flat out", "paced"):
        print(f"router overhead at p50, {phase}: "
              f"{rows[phase, 'router']['p50_ms'] - rows[phase, 'direct']['p50_ms']:.2f} ms")
    print(f"exposures after compaction {exposures:,} vs successful router responses {successes:,} "
          f"(wrk does not count the up to {args.connections} requests a run has in flight when it stops)")
    flat, paced = rows["flat out", "router"], rows["paced", "router"]
    checks = [("router requests, flat out >= 20,000", flat["requests"] >= 20_000),
              ("router req/s, flat out >= 1,500", flat["rps"] >= 1_500),
              ("router p50 overhead, paced < 2 ms", paced["p50_ms"] - rows["paced", "direct"]["p50_ms"] < 2),
              ("router p99, paced < 50 ms", paced["p99_ms"] < 50),
              ("router p99, flat out < 50 ms", flat["p99_ms"] < 50),
              ("no errors", not any(row["errors"] for row in rows.values())),
              ("exposures >= answered, <= answered + in flight",
               successes <= exposures <= successes + 2 * args.connections)]
    for name, met in checks:
        print(f"{'met' if met else 'NOT MET':8} {name}")


if __name__ == "__main__":
    main()
