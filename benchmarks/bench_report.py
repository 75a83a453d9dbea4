"""A report of 20 blocks over 10,000 runs: how long it takes to draw (every block read from
the store: run tables, values, per-run curves, grouped curves, blocks from a saved view),
and how long its HTML export takes with the charts drawn as SVG.

    python benchmarks/bench_report.py [--runs 10000] [--steps 20]

The store is written through the tracking API (10 params, 5 metrics a point a step) and
compacted before anything is timed. "first" opens the store anew (a dashboard's first
render of the report, or ``mltrail report render``); "again" draws it once more in the
same process (the Reports page's next render); the command is timed whole, in a new process
(Python's start and imports included).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mltrail
from mltrail.reports.html import to_html
from mltrail.reports.render import Charts, Problem, render

METRICS = ["loss", "val_loss", "acc", "val_acc", "f1"]
REPORT = """# Sweep review

```mltrail value
title: runs
stat: count
column: metrics.loss
```

```mltrail value
title: best validation accuracy
experiment: sweep
order_by: metrics.val_acc DESC
column: metrics.val_acc
```

```mltrail value
experiment: sweep
stat: mean
column: metrics.f1
```

```mltrail value
experiment: sweep
filter: params.optimizer = 'adam'
stat: median
column: metrics.val_loss
```

```mltrail runs
experiment: sweep
order_by: metrics.val_acc DESC
columns: [params.lr, params.optimizer, metrics.val_acc, metrics.f1]
```

```mltrail runs
experiment: sweep
filter: params.optimizer = 'sgd' and metrics.val_loss < 0.5
order_by: metrics.val_loss ASC
limit: 20
```

```mltrail runs
filter: params.layers = '4'
order_by: attributes.start_time DESC
```

```mltrail runs
experiment: sweep
filter: metrics.f1 > 0.8 and params.dropout = '0.1'
columns: [params.batch, metrics.f1]
```

```mltrail runs
view: adam
```

```mltrail runs
view: adam
filter: params.lr = '0.01'
```

```mltrail chart
experiment: sweep
order_by: metrics.val_acc DESC
metrics: [loss, val_loss]
```

```mltrail chart
experiment: sweep
filter: params.optimizer = 'sgd'
metrics: val_acc
limit: 20
```

```mltrail chart
experiment: sweep
metrics: [loss]
group_by: params.lr
```

```mltrail chart
experiment: sweep
metrics: [val_acc, f1]
group_by: [params.optimizer]
band: ci
```

```mltrail chart
experiment: sweep
filter: params.layers = '2'
metrics: val_loss
group_by: params.batch
band: minmax
smoothing: 0.6
```

```mltrail chart
view: adam
```

```mltrail runs
experiment: sweep
order_by: metrics.f1 DESC
limit: 50
```

```mltrail value
experiment: sweep
stat: max
column: metrics.acc
```

```mltrail runs
experiment: sweep
filter: attributes.status = 'FINISHED'
order_by: metrics.loss ASC
```

```mltrail chart
experiment: sweep
filter: params.seed = '7'
metrics: [loss, acc]
```
"""


def build(root: Path, runs: int, steps: int) -> mltrail.Store:
    store = mltrail.Store(root)
    rng = np.random.default_rng(0)
    for i in range(runs):
        params = {"lr": [0.1, 0.03, 0.01, 0.003][i % 4], "optimizer": ["adam", "sgd"][i % 2 == 0 and i % 3 == 0],
                  "layers": 2 + i % 3, "batch": [32, 64, 128][i % 3], "dropout": [0.0, 0.1][i % 2],
                  "seed": i % 50, "width": 128, "warmup": 100, "decay": 0.01, "epochs": steps}
        with store.start_run("sweep", name=f"trial-{i}", log_git=False, log_packages=False, log_system=False,
                             log_command=False) as run:
            run.log_params(params)
            noise = rng.normal(0, 0.02, (steps, len(METRICS)))
            for step in range(steps):
                decay = np.exp(-step * params["lr"] * 5)
                values = [decay, decay + 0.1, 1 - decay / 2, 0.95 - decay / 2, 0.9 - decay / 2]
                run.log_metrics({m: float(v + n) for m, v, n in zip(METRICS, values, noise[step])}, step=step)
    store.views.save("adam", experiments=["sweep"], filter="params.optimizer = 'adam'",
                     columns=["params.lr", "metrics.val_acc"], charts=["val_loss"], group_by=["params.lr"])
    store.reports.save("sweep-review", REPORT)
    store.compact()
    return store


def timed(call):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--root", type=Path, default=None, help="reuse (or make) the store here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp) / "store"
        if not (root / "reports" / "sweep-review.md").exists():
            seconds, _ = timed(lambda: build(root, args.runs, args.steps))
            print(f"built {args.runs:,} runs x {len(METRICS)} metrics x {args.steps} steps in {seconds:.1f} s")
        text = mltrail.Store(root).reports.get("sweep-review").text
        first, pieces = timed(lambda: render(mltrail.Store(root), text))
        store = mltrail.Store(root)
        render(store, text)
        again = min(timed(lambda: render(store, text))[0] for _ in range(3))
        problems = [p.text for p in pieces if isinstance(p, Problem)]
        assert not problems, problems
        blocks = text.count("```mltrail")
        charts = sum(len(p.charts) for p in pieces if isinstance(p, Charts))
        html_seconds, page = timed(lambda: to_html(pieces, "Sweep review"))
        print(f"| a {blocks}-block report over {args.runs:,} runs: drawn, first (a new store) | {first:.2f} s |")
        print(f"| the same, again (the Reports page's next render) | {again:.2f} s |")
        print(f"| its HTML export ({charts} charts drawn as SVG) | {html_seconds:.2f} s, {len(page) / 1e6:.2f} MB |")
        target = Path(tmp) / "report.html"
        command = [sys.executable, "-c", "from mltrail.cli import main; main()", "--store", str(root), "report",
                   "render", "sweep-review", "-o", str(target)]
        whole, _ = timed(lambda: subprocess.run(command, check=True, capture_output=True))
        print(f"| `mltrail report render sweep-review -o report.html`, the whole command | {whole:.2f} s |")


if __name__ == "__main__":
    main()
