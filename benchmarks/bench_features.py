"""The feature store at scale: point-in-time join, materialization, online lookups.

    python benchmarks/bench_features.py [--entity-rows 1000000] [--view-rows 10000000]

A view of ``--view-rows`` rows (100,000 drivers, 30 days of event times, created times
up to an hour later, 10 float features) in Parquet, and an entity dataframe of
``--entity-rows`` rows at random drivers and times. Each measured step runs in its own
process so that its peak RSS is its own:

- the point-in-time join (``get_historical_features``, 10 features, ttl 1 day);
- materialization of the whole view into the online store (source rows per second);
- online lookups: single keys (p50 of 2,000) and batches of 1,000 keys (keys per second).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

FEATURES = [f"f{i}" for i in range(10)]


def child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line; add its peak RSS."""
    wrapper = textwrap.dedent(code) + textwrap.dedent("""
        import json, resource, sys
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
    """)
    done = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


MAKE = """
import sys
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
folder, view_rows, entity_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(7)
start = np.datetime64("2026-01-01T00:00:00", "ns").astype("int64")
month = 30 * 86_400 * 10**9
event = start + rng.integers(0, month, view_rows)
columns = {"driver_id": rng.integers(0, 100_000, view_rows),
           "event_ts": pa.array(event, pa.timestamp("ns", tz="UTC")),
           "created_ts": pa.array(event + rng.integers(0, 3_600 * 10**9, view_rows), pa.timestamp("ns", tz="UTC"))}
for i in range(10):
    columns[f"f{i}"] = rng.random(view_rows)
pq.write_table(pa.table(columns), f"{folder}/view.parquet", row_group_size=1_000_000)
entity = pd.DataFrame({"driver_id": rng.integers(0, 100_000, entity_rows),
                       "event_timestamp": pd.to_datetime(start + rng.integers(0, month, entity_rows), utc=True)})
entity.to_parquet(f"{folder}/entity.parquet")
import mltrail
fs = mltrail.Store(f"{folder}/store").features
fs.apply_entity("driver", join_keys=["driver_id"])
fs.apply_view("driver_stats", entity="driver", source=f"{folder}/view.parquet", timestamp_field="event_ts",
              created_timestamp_field="created_ts", ttl="1d", features={f"f{i}": "float" for i in range(10)})
result = {}
"""

JOIN = """
import sys, time
import pandas as pd, mltrail
folder = sys.argv[1]
entity = pd.read_parquet(f"{folder}/entity.parquet")
fs = mltrail.Store(f"{folder}/store").features
started = time.perf_counter()
train = fs.get_historical_features(entity, [f"driver_stats:f{i}" for i in range(10)])
seconds = time.perf_counter() - started
result = {"seconds": seconds, "rows": len(train), "filled": float(train["f0"].notna().mean())}
"""

MATERIALIZE = """
import sys, time
import mltrail
folder = sys.argv[1]
fs = mltrail.Store(f"{folder}/store").features
started = time.perf_counter()
report = fs.materialize(start="2025-12-01", end="2026-03-01")
seconds = time.perf_counter() - started
result = {"seconds": seconds, "rows": int(report.loc[0, "rows"]), "keys": int(report.loc[0, "keys"])}
"""

ONLINE = """
import sys, time
import numpy as np, mltrail
folder = sys.argv[1]
fs = mltrail.Store(f"{folder}/store").features
refs = [f"driver_stats:f{i}" for i in range(10)]
rng = np.random.default_rng(1)
singles = []
for key in rng.integers(0, 100_000, 2_000).tolist():
    started = time.perf_counter()
    fs.get_online_features(refs, [{"driver_id": key}])
    singles.append(time.perf_counter() - started)
batches = [[{"driver_id": k} for k in rng.integers(0, 100_000, 1_000).tolist()] for _ in range(20)]
started = time.perf_counter()
for batch in batches:
    fs.get_online_features(refs, batch)
seconds = time.perf_counter() - started
result = {"single_p50_ms": float(np.median(singles) * 1000), "single_p99_ms": float(np.quantile(singles, 0.99) * 1000),
          "batch_keys_per_s": 20_000 / seconds}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument("--view-rows", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        made = time.perf_counter()
        child(MAKE, folder, str(args.view_rows), str(args.entity_rows))
        size = Path(folder, "view.parquet").stat().st_size / 1e6
        print(f"data: {args.view_rows:,} view rows ({size:,.0f} MB Parquet), {args.entity_rows:,} entity rows "
              f"(made in {time.perf_counter() - made:.0f} s)")
        join = child(JOIN, folder)
        print(f"point-in-time join: {join['seconds']:.1f} s for {join['rows']:,} rows x 10 features "
              f"({join['filled']:.0%} found a value), peak RSS {join['peak_rss_mb']:,.0f} MB")
        mat = child(MATERIALIZE, folder)
        print(f"materialize: {mat['rows'] / mat['seconds']:,.0f} source rows/s ({mat['rows']:,} rows, "
              f"{mat['keys']:,} keys, {mat['seconds']:.1f} s), peak RSS {mat['peak_rss_mb']:,.0f} MB")
        online = child(ONLINE, folder)
        print(f"online: single key p50 {online['single_p50_ms']:.3f} ms, p99 {online['single_p99_ms']:.3f} ms; "
              f"batches of 1,000: {online['batch_keys_per_s']:,.0f} keys/s (10 features)")


if __name__ == "__main__":
    main()
