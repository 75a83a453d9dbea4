"""MLflow's own client on mltrail, beside MLflow itself in the same run (issue 28's targets).

    python benchmarks/bench_mlflow_bridge.py [--parts log_batch search artifact] [--quick]
        [--repeats 3] [--calls 20] [--runs 10000] [--size-mb 1024] [--venv PATH] [--tmp DIR]

1. ``log_batch``: MLflow's client (this Python's ``mlflow``, skinny is enough) sends
   ``MlflowClient.log_batch`` calls of 1,000 metric points, one call and then ``--calls``
   in a row, into ``mltrail server`` and into ``mlflow server`` with a sqlite backend, the
   two servers alternated in each of ``--repeats`` rounds; points/s and their ratio
   (target: mltrail 10x). Each server runs as a subprocess on loopback. ``mlflow server``
   needs the full ``mlflow`` package (flask and the rest), so it runs from a virtual
   environment of its own, made once under ``--venv`` (default benchmarks/.cache/, which
   git ignores) with ``pip install mlflow==<this Python's mlflow version>``; if pip cannot
   install that version, the newest release below it that pip can install, named in the
   table; if none, the MLflow column says so (no figure).
2. ``search``: ``mlflow.search_runs`` over ``--runs`` runs (10 params, 5 metrics each) with
   ``MLFLOW_TRACKING_URI=mltrail:<folder>`` and ``sqlite:///<file>``, everything else the
   same, plus a filtered search; each timed as the first call in a fresh process and the
   call repeated in it, the two stores alternated (target: mltrail 5x faster). The same
   with ``MlflowClient.search_runs`` (MLflow's Run objects, no DataFrame): the store's part
   alone, since ``mlflow.search_runs`` then builds its DataFrame in MLflow's own code. The mltrail
   store is made with mltrail's own API; MLflow's sqlite store with MLflow's client on the
   ``sqlite:///`` URI (a child process), once, kept under the cache folder (MLflow's
   store commits about six times a run: 10,000 runs take many minutes).
3. ``artifact``: a file of ``--size-mb`` random bytes logged with ``mlflow.log_artifact``
   through ``mltrail server``'s artifact proxy and fetched back with
   ``mlflow.artifacts.download_artifacts``; the server's peak RSS (psutil every 50 ms, and
   Linux's VmHWM) minus its RSS just before each transfer (target: at most 100 MB more).
   The file is deleted afterwards; needs about 3x ``--size-mb`` free under ``--tmp``.

``--quick`` runs everything smaller (1 round of 5 calls, 500 runs, 64 MiB) to check the
script itself. Prints a Markdown table at the end; medians of the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dashboard import free_port, wait_until_up
from bench_large_artifact import Sampler, make_file, peak_rss

import mltrail

CACHE = Path(__file__).resolve().parent / ".cache"
T0 = 1_790_000_000_000
FILTER = "metrics.m0 > 0.5 and params.p0 = '3'"
POINTS = 1000
# MLflow's notices off (its telemetry would also reach out of the machine); the same for
# every process this script starts, MLflow's or mltrail's
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet",
         "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "PYTHONWARNINGS": "ignore"}

Row = tuple[str, str, str, str, str]  # figure, mltrail, MLflow, ratio, target


# -- the servers ---------------------------------------------------------------------------

def mlflow_version() -> str:
    from importlib.metadata import version

    return version("mlflow-skinny") if _installed("mlflow-skinny") else version("mlflow")


def _installed(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(name)
    except PackageNotFoundError:
        return False
    return True


def mlflow_server_python(venv: Path, wanted: str) -> tuple[Path, str] | str:
    """A Python whose ``mlflow`` has the server, and that mlflow's version; made once in
    ``venv``. Else why not, in a sentence."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"making {venv} for mlflow server (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    have = _server_version(python)
    if have:
        return python, have
    failures = []
    # the exact version first; a registry may lack one of its parts (mlflow pins
    # mlflow-tracing to its own version), and then the newest that installs
    for spec in (f"mlflow=={wanted}", f"mlflow<={wanted}"):
        print(f"pip install {spec} into {venv}", flush=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", spec], capture_output=True, text=True,
                              check=False)
        if not done.returncode:
            break
        last = [line for line in done.stderr.splitlines() if line.startswith("ERROR")][-1:] or ["(no message)"]
        failures.append(f"`pip install {spec}`: {last[0]}")
    else:
        return "; ".join(failures)
    have = _server_version(python)
    return (python, have) if have else f"mlflow installed into {venv} but its server does not import"


def _server_version(python: Path) -> str | None:
    done = subprocess.run([str(python), "-c", "import flask, mlflow.server; print(mlflow.__version__)"], check=False,
                          capture_output=True, text=True, env={**os.environ, **QUIET})
    return done.stdout.split()[-1] if not done.returncode and done.stdout.split() else None


@contextmanager
def mltrail_server(folder: Path) -> Iterator[tuple[psutil.Process, str]]:
    """``mltrail server`` on ``folder`` as a subprocess; its process and URL."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", "from mltrail.cli import main; main()", "server", "--store",
                               str(folder), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_up(f"{url}/api/v1/health"):
            server.terminate()
            raise SystemExit(f"mltrail server did not start: {server.communicate(timeout=30)[1][-2000:]}")
        yield psutil.Process(server.pid), url
    finally:
        server.terminate()
        server.wait(60)


@contextmanager
def mlflow_server(python: Path, tmp: Path) -> Iterator[str]:
    """``mlflow server`` with a sqlite backend, as a subprocess; its URL."""
    port = free_port()
    shm = Path("/dev/shm")
    before = set(shm.iterdir()) if shm.is_dir() else set()
    log = open(tmp / "mlflow-server.log", "w")  # noqa: SIM115 (closed below, after the process)
    server = subprocess.Popen([str(python), "-m", "mlflow", "server", "--backend-store-uri",
                               f"sqlite:///{tmp / 'mlflow-server.db'}", "--artifacts-destination",
                               str(tmp / "mlflow-server-artifacts"), "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **QUIET})
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_up(f"{url}/health"):
            server.terminate()
            server.wait(30)
            raise SystemExit(f"mlflow server did not start: {(tmp / 'mlflow-server.log').read_text()[-2000:]}")
        yield url
    finally:
        server.terminate()
        server.wait(60)
        log.close()
        # mlflow server keeps its job queue (huey) in a folder of /dev/shm it leaves behind
        for left in (set(shm.iterdir()) - before) if shm.is_dir() else ():
            if any(p.name.endswith(".mlflow-huey-store") for p in left.iterdir()):
                shutil.rmtree(left, ignore_errors=True)


# -- 1. log_batch --------------------------------------------------------------------------

def batches(calls: int) -> list[list]:
    """``calls`` batches of 1,000 points of one metric, steps following on, made before the clock starts."""
    from mlflow.entities import Metric

    return [[Metric("loss", 1.0 / (c * POINTS + i + 1), T0 + c * POINTS + i, c * POINTS + i) for i in range(POINTS)]
            for c in range(calls)]


def log_batch_rates(url: str, calls: int, round_: int) -> tuple[float, float]:
    """Points/s of one log_batch call, then of ``calls`` calls in a row, into a new run."""
    from mlflow import MlflowClient

    client = MlflowClient(url)
    experiment = client.create_experiment(f"bench-{round_}-{time.time_ns()}")
    rates = []
    for count in (1, calls):
        run_id = client.create_run(experiment).info.run_id
        sent = batches(count)
        started = time.perf_counter()
        for batch in sent:
            client.log_batch(run_id, metrics=batch)
        rates.append(count * POINTS / (time.perf_counter() - started))
        stored = len(client.get_metric_history(run_id, "loss"))
        if stored != count * POINTS:
            raise SystemExit(f"{url} holds {stored} of the {count * POINTS} points sent")
    return rates[0], rates[1]


def part_log_batch(tmp: Path, venv: Path, repeats: int, calls: int) -> list[Row]:
    wanted = mlflow_version()
    found = mlflow_server_python(venv, wanted)
    theirs: dict[str, list[float]] = {"one": [], "many": []}
    ours: dict[str, list[float]] = {"one": [], "many": []}
    with mltrail_server(tmp / "log-batch") as (_, our_url), \
            (mlflow_server(found[0], tmp) if isinstance(found, tuple) else _absent()) as their_url:
        for url in (our_url, their_url):  # a round not counted: each server's first calls load its code
            if url is not None:
                log_batch_rates(url, 2, -1)
        for r in range(repeats):
            targets = [(ours, our_url), (theirs, their_url)]
            for rates, url in targets if r % 2 == 0 else targets[::-1]:
                if url is None:
                    continue
                one, many = log_batch_rates(url, calls, r)
                rates["one"].append(one)
                rates["many"].append(many)
                print(f"round {r + 1}: {'mltrail' if rates is ours else 'MLflow'} {one:,.0f} points/s in one call, "
                      f"{many:,.0f} in {calls}", flush=True)
    server = (f"mlflow server {found[1]}" + ("" if found[1] == wanted else f" (mlflow {wanted} would not install)")
              if isinstance(found, tuple) else f"no mlflow server: {found}")
    print(f"client: mlflow {wanted}; {server}", flush=True)
    return [_rate_row(f"`log_batch` of 1,000 points, 1 call, points/s ({server})", ours["one"], theirs["one"]),
            _rate_row(f"`log_batch` of 1,000 points, {calls} calls in a row, points/s", ours["many"], theirs["many"])]


@contextmanager
def _absent() -> Iterator[None]:
    yield None


def _rate_row(figure: str, ours: list[float], theirs: list[float]) -> Row:
    mine = statistics.median(ours)
    if not theirs:
        return figure, f"{mine:,.0f}", "not measured", "", "≥ 10×"
    other = statistics.median(theirs)
    return figure, f"{mine:,.0f}", f"{other:,.0f}", f"{mine / other:,.1f}×", "≥ 10×"


# -- 2. search_runs ------------------------------------------------------------------------

def param(i: int, j: int) -> str:
    return str((i + j) % 7)


def metric(i: int, k: int) -> float:
    return (i * 31 + k * 7) % 100 / 100


BUILD_SQLITE = f"""
import sys
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
uri, runs, params, metrics = sys.argv[1], *map(int, sys.argv[2:5])
client = MlflowClient(uri)
experiment = client.create_experiment("bench")
for i in range(runs):
    start = {T0} + i * 1000
    run_id = client.create_run(experiment, start_time=start, run_name=f"run-{{i}}").info.run_id
    client.log_batch(run_id, metrics=[Metric(f"m{{k}}", (i * 31 + k * 7) % 100 / 100, start, 0) for k in range(metrics)],
                     params=[Param(f"p{{j}}", str((i + j) % 7)) for j in range(params)])
    client.set_terminated(run_id, "FINISHED", end_time=start + 500)
"""

SEARCH = """
import json, sys, time
import mlflow
uri, filter_string, how = sys.argv[1:4]
mlflow.set_tracking_uri(uri)
client = mlflow.MlflowClient()
experiment = client.get_experiment_by_name("bench").experiment_id
timings, rows = [], []
for _ in range(2):
    started = time.perf_counter()
    if how == "fluent":
        found = mlflow.search_runs(experiment_names=["bench"], filter_string=filter_string)
    else:  # the store's part alone: MLflow's Run objects, no DataFrame
        found = client.search_runs([experiment], filter_string, max_results=50_000)
    timings.append(time.perf_counter() - started)
    rows.append(len(found))
frame = None
if how == "client":  # MLflow's own DataFrame build from those runs: what mlflow.search_runs adds to any store
    from mlflow.tracking.fluent import _runs_to_pandas
    started = time.perf_counter()
    _runs_to_pandas(found)
    frame = time.perf_counter() - started
print(json.dumps({"first": timings[0], "repeat": timings[1], "rows": rows, "frame": frame}))
"""


def build_mltrail(folder: Path, runs: int, params: int, metrics: int) -> None:
    store = mltrail.Store(folder)
    for i in range(runs):
        with store.start_run("bench", name=f"run-{i}", log_git=False, log_command=False, log_system=False,
                             log_packages=False, log_system_metrics=False) as run:
            run.log_params({f"p{j}": param(i, j) for j in range(params)})
            run.log_metrics({f"m{k}": metric(i, k) for k in range(metrics)}, 0)


def sqlite_store(cache: Path, runs: int, params: int, metrics: int) -> Path:
    """MLflow's sqlite store of ``runs`` runs, made once with MLflow's client and kept in ``cache``."""
    kept = cache / f"search-{runs}runs-{params}p-{metrics}m-mlflow{mlflow_version()}.db"
    if kept.exists():
        return kept
    cache.mkdir(parents=True, exist_ok=True)
    # each commit waits for the disk; on tmpfs (when there is one) the same store is made
    # in less than half the time, and the file is the same
    scratch = Path(tempfile.mkdtemp(prefix="mltrail-bench-sqlite-", dir="/dev/shm" if Path("/dev/shm").is_dir()
                                    else None))
    try:
        started = time.perf_counter()
        print(f"making MLflow's sqlite store of {runs:,} runs (once; kept as {kept})", flush=True)
        subprocess.run([sys.executable, "-c", BUILD_SQLITE, f"sqlite:///{scratch / 'mlflow.db'}", str(runs),
                        str(params), str(metrics)], check=True, env={**os.environ, **QUIET},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"  made in {time.perf_counter() - started:.0f} s", flush=True)
        shutil.copyfile(scratch / "mlflow.db", kept.with_suffix(".part"))
        kept.with_suffix(".part").rename(kept)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return kept


def search_once(uri: str, filter_string: str, how: str = "fluent") -> dict:
    done = subprocess.run([sys.executable, "-c", SEARCH, uri, filter_string, how], capture_output=True, text=True, check=False,
                          env={**os.environ, **QUIET})
    if done.returncode:
        raise SystemExit(f"search_runs on {uri} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def part_search(tmp: Path, cache: Path, runs: int, repeats: int) -> list[Row]:
    params, metrics = 10, 5
    theirs = tmp / "search-mlflow.db"
    shutil.copyfile(sqlite_store(cache, runs, params, metrics), theirs)
    ours = tmp / "search-mltrail"
    started = time.perf_counter()
    build_mltrail(ours, runs, params, metrics)
    print(f"made the mltrail store of {runs:,} runs in {time.perf_counter() - started:.0f} s", flush=True)
    uris = {"mltrail": f"mltrail:{ours}", "sqlite": f"sqlite:///{theirs}"}
    # the first search ever on the mltrail store compacts its event files into the index
    never = search_once(uris["mltrail"], "")
    print(f"first search_runs on the new mltrail store (compacts it): {never['first']:.2f} s", flush=True)
    results: dict[tuple[str, str, str], list[dict]] = {}
    queries = [(how, kind, filter_string) for how in ("fluent", "client")
               for kind, filter_string in (("all", ""), ("filtered", FILTER))]
    for r in range(repeats):
        for how, kind, filter_string in queries:
            for name in (("mltrail", "sqlite") if r % 2 == 0 else ("sqlite", "mltrail")):
                got = search_once(uris[name], filter_string, how)
                results.setdefault((name, how, kind), []).append(got)
                print(f"round {r + 1}: {name} {how} {kind}: first {got['first']:.3f} s, repeat {got['repeat']:.3f} s, "
                      f"{got['rows'][0]:,} rows", flush=True)
    for how, kind, _ in queries:
        counts = {name: {n for got in results[(name, how, kind)] for n in got["rows"]} for name in uris}
        if counts["mltrail"] != counts["sqlite"]:
            raise SystemExit(f"the two stores found different runs ({how}, {kind}): {counts}")
    rows: list[Row] = [(f"`mlflow.search_runs`, {runs:,} runs, first call on a new mltrail store (it compacts), s",
                        f"{never['first']:.2f}", "", "", "")]
    calls = {"fluent": "`mlflow.search_runs` (a DataFrame)", "client": "`MlflowClient.search_runs` (Run objects)"}
    for how, kind, _ in queries:
        what = "all runs" if kind == "all" else f"`{FILTER}`"
        found = results[("mltrail", how, kind)][0]["rows"][0]
        for when in ("first", "repeat"):
            mine = statistics.median(got[when] for got in results[("mltrail", how, kind)])
            other = statistics.median(got[when] for got in results[("sqlite", how, kind)])
            call = "first call in a process" if when == "first" else "repeated"
            rows.append((f"{calls[how]}, {runs:,} runs, {what} ({found:,} found), {call}, s", f"{mine:.3f}",
                         f"{other:.3f}", f"{other / mine:,.1f}×", "≥ 5×" if how == "fluent" else ""))
    # mlflow.search_runs = the store's search + MLflow's _runs_to_pandas, which takes the
    # same time whichever store answered: even a store that answered in no time could be at
    # most (sqlite's whole call) / (the DataFrame build alone) faster
    for kind in ("all", "filtered"):
        what = "all runs" if kind == "all" else f"`{FILTER}`"
        frames = {name: statistics.median(got["frame"] for got in results[(name, "client", kind)]) for name in uris}
        whole = statistics.median(got["repeat"] for got in results[("sqlite", "fluent", kind)])
        rows.append((f"MLflow's `_runs_to_pandas` alone (inside `mlflow.search_runs`), {what}, s",
                     f"{frames['mltrail']:.3f}", f"{frames['sqlite']:.3f}", "", ""))
        rows.append((f"the most `mlflow.search_runs` could gain over sqlite with a store taking no time, {what}",
                     "", "", f"{whole / frames['sqlite']:,.1f}×", ""))
    return rows


# -- 3. a large artifact through the proxy ------------------------------------------------

def part_artifact(tmp: Path, size_mb: int) -> list[Row]:
    import mlflow
    from mlflow.artifacts import download_artifacts

    size = size_mb << 20
    free = shutil.disk_usage(tmp).free
    if free < 3.2 * size:
        raise SystemExit(f"{free >> 20:,} MiB free under {tmp}: {3.2 * size_mb:,.0f} MiB needed; use --size-mb")
    source = tmp / "artifact" / "model.bin"
    source.parent.mkdir()
    sha256 = make_file(source, size)
    with mltrail_server(tmp / "artifact-server") as (server, url):
        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("bench-artifact")
        with mlflow.start_run() as run:
            before_up = server.memory_info().rss
            watch = Sampler(server.pid)
            watch.start()
            started = time.perf_counter()
            mlflow.log_artifact(str(source))
            up_s = time.perf_counter() - started
            watch.stop.set()
            watch.join()
        up_peak = max(watch.sampled, peak_rss(server.pid) or 0)
        print(f"upload of {size_mb:,} MiB: {up_s:.1f} s; server RSS {before_up >> 20} MiB before, peak "
              f"{up_peak >> 20} MiB", flush=True)
        before_down = server.memory_info().rss
        watch = Sampler(server.pid)
        watch.start()
        started = time.perf_counter()
        got = download_artifacts(run_id=run.info.run_id, artifact_path="model.bin", dst_path=str(tmp / "download"))
        down_s = time.perf_counter() - started
        watch.stop.set()
        watch.join()
        print(f"download: {down_s:.1f} s; server RSS {before_down >> 20} MiB before, peak {watch.sampled >> 20} MiB "
              f"(sampled)", flush=True)
    source.unlink()
    fetched, fetched_size = _sha256(Path(got))
    Path(got).unlink()
    if (fetched, fetched_size) != (sha256, size):
        raise SystemExit(f"the file downloaded ({fetched_size:,} bytes) is not the file uploaded")
    mib = f"{size_mb:,} MiB"
    return [(f"{mib} artifact, `mlflow.log_artifact` through the proxy: server peak RSS − RSS before, MiB",
             f"{(up_peak - before_up) / 2**20:,.0f}", "", "", "≤ 100 MB"),
            ("the same, `download_artifacts`: server peak RSS − RSS before, MiB",
             f"{(watch.sampled - before_down) / 2**20:,.0f}", "", "", "≤ 100 MB"),
            (f"{mib} upload, then download, MiB/s", f"{size_mb / up_s:,.0f}, {size_mb / down_s:,.0f}", "", "", "")]


def _sha256(path: Path) -> tuple[str, int]:
    from mltrail.storage.blobs import file_sha256

    return file_sha256(path)


# -- the table ------------------------------------------------------------------------------

def table(rows: list[Row]) -> str:
    lines = ["| figure | mltrail | MLflow (sqlite) | ratio | target |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=["log_batch", "search", "artifact"],
                        default=["log_batch", "search", "artifact"])
    parser.add_argument("--quick", action="store_true", help="1 round of 5 calls, 500 runs, 64 MiB")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 3; --quick 1)")
    parser.add_argument("--calls", type=int, default=None, help="log_batch calls in a row (default 20; --quick 5)")
    parser.add_argument("--runs", type=int, default=None, help="runs to search (default 10,000; --quick 500)")
    parser.add_argument("--size-mb", type=int, default=None, help="the artifact's size (default 1,024; --quick 64)")
    parser.add_argument("--venv", type=Path, default=CACHE / "mlflow-server",
                        help="the virtual environment for mlflow server (made once)")
    parser.add_argument("--tmp", default=None, help="where to write (default: the system's temporary folder)")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    calls = args.calls or (5 if args.quick else 20)
    runs = args.runs or (500 if args.quick else 10_000)
    size_mb = args.size_mb or (64 if args.quick else 1024)
    os.environ.update(QUIET)
    tmp = Path(tempfile.mkdtemp(prefix="mltrail-bench-bridge-", dir=args.tmp))
    rows: list[Row] = []
    try:
        if "log_batch" in args.parts:
            rows += part_log_batch(tmp, args.venv.resolve(), repeats, calls)
        if "search" in args.parts:
            rows += part_search(tmp, CACHE, runs, repeats)
        if "artifact" in args.parts:
            rows += part_artifact(tmp, size_mb)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nmedians of {repeats} rounds\n\n{table(rows)}", flush=True)


if __name__ == "__main__":
    main()
