"""MLflow's own server and UI on an mltrail store: ``mlflow server --backend-store-uri
mltrail:<folder>``. Logs two runs with MLflow's client into a fresh mltrail folder, starts
MLflow's server on it (loopback), and asks it what MLflow's UI asks: the page, experiments,
runs, a metric's history (also the charts' bulk interval), a run, its artifact listing and
one artifact. Prints each call with its status; exits 1 if one did not answer as it should.

MLflow's server needs the full ``mlflow`` package (flask and the rest), which mltrail's
test extra does not install (its mlflow-skinny is newer than any full ``mlflow`` the
registry has a matching release of), so this runs in a virtual environment that has both:

    python3 -m venv /tmp/mlflow-ui && /tmp/mlflow-ui/bin/pip install mlflow -e .
    /tmp/mlflow-ui/bin/python scripts/mlflow_ui_check.py
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _log_runs(folder: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"mltrail:{folder}")
    mlflow.set_experiment("churn")
    for c in (0.1, 1.0):
        with mlflow.start_run(run_name=f"C={c}"):
            mlflow.log_param("C", c)
            for step in range(5):
                mlflow.log_metric("loss", 1 / (step + 1 + c), step=step)
            mlflow.log_dict({"C": c}, "config.json")


def _ask(url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="mlflow-ui-check-"))
    folder = work / "mltrail_runs"
    _log_runs(folder)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                               f"mltrail:{folder}", "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
                              env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    failed = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if _ask(base + "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        experiments = json.loads(_ask(f"{base}/ajax-api/2.0/mlflow/experiments/search", {"max_results": 10})[1])
        churn = next(e["experiment_id"] for e in experiments["experiments"] if e["name"] == "churn")
        runs = json.loads(_ask(f"{base}/ajax-api/2.0/mlflow/runs/search",
                               {"experiment_ids": [churn], "max_results": 10})[1])["runs"]
        run_id = runs[0]["info"]["run_id"]
        checks = [
            ("the UI's page", f"{base}/", None, lambda b: b"<html" in b.lower() or b"<!doctype" in b.lower()),
            ("experiments/search", f"{base}/ajax-api/2.0/mlflow/experiments/search", {"max_results": 10},
             lambda b: "churn" in [e["name"] for e in json.loads(b)["experiments"]]),
            ("runs/search", f"{base}/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [churn]},
             lambda b: sorted(r["info"]["run_name"] for r in json.loads(b)["runs"]) == ["C=0.1", "C=1.0"]),
            ("runs/get", f"{base}/ajax-api/2.0/mlflow/runs/get?run_id={run_id}", None,
             lambda b: json.loads(b)["run"]["data"]["params"][0]["key"] == "C"),
            ("metrics/get-history", f"{base}/ajax-api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss",
             None, lambda b: [m["step"] for m in json.loads(b)["metrics"]] == [0, 1, 2, 3, 4]),
            ("metrics/get-history-bulk-interval", f"{base}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
             f"?run_ids={run_id}&metric_key=loss&max_results=320", None, lambda b: len(json.loads(b)["metrics"]) == 5),
            ("artifacts/list", f"{base}/ajax-api/2.0/mlflow/artifacts/list?run_id={run_id}", None,
             lambda b: [f["path"] for f in json.loads(b)["files"]] == ["config.json"]),
            ("get-artifact", f"{base}/get-artifact?path=config.json&run_uuid={run_id}", None,
             lambda b: "C" in json.loads(b)),
        ]
        for what, url, body, good in checks:
            status, answer = _ask(url, body)
            try:
                ok = status == 200 and bool(good(answer))
            except (ValueError, KeyError, IndexError, StopIteration):
                ok = False
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {status} {what}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(checks) - failed} of {len(checks)} of the UI's calls answered (mlflow server on mltrail:{folder})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
