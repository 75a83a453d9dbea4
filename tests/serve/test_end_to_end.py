"""Separated mode with real processes on localhost: two model services and the router."""

import asyncio
import shutil
import signal
import subprocess
import sys

import aiohttp
import httpx
import pytest

import mltrail
from tests.factories import CHURN_FEATURES as FEATURES
from tests.factories import REPO, ab_spec, free_port, spawn_python, wait_for_http

pytestmark = pytest.mark.slow  # real processes


def start(args: list[str], cwd, env=None):
    return spawn_python(f"import sys\nfrom mltrail.cli import main\nsys.argv = {['mltrail', *args]!r}\nmain()\n",
                        cwd, env=env)


def wait_healthy(url: str, proc, seconds: float = 60) -> None:
    wait_for_http(f"{url}/healthz", proc, seconds)


def stop(proc, sig=signal.SIGTERM) -> str:
    proc.send_signal(sig)
    return proc.communicate(timeout=30)[1]


def test_separated_mode_with_real_processes(tmp_path):
    root = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", root, ignore=shutil.ignore_patterns(".cache"))
    store = mltrail.Store(root)
    ports = {"control": free_port(), "treatment": free_port(), "router": free_port()}
    runs = {"control": "logreg-C1", "treatment": "gb-lr0.2"}

    def model(variant):
        return start(["serve", "model", "--store", str(root), "--run", runs[variant],
                      "--port", str(ports[variant])], tmp_path)

    models = {variant: model(variant) for variant in runs}
    variants = [{"name": "control", "weight": 0.5, "control": True, "url": f"http://127.0.0.1:{ports['control']}"},
                {"name": "treatment", "weight": 0.5, "url": f"http://127.0.0.1:{ports['treatment']}"}]
    exp = store.ab.create(ab_spec(key="e2e", variants=variants, mde=0.05)).start()
    router = start(["serve", "router", "--store", str(root), "--port", str(ports["router"])], tmp_path,
                   env={"MLTRAIL_ADMIN_TOKEN": "tok"})
    url = f"http://127.0.0.1:{ports['router']}"
    try:
        for variant, proc in models.items():
            wait_healthy(f"http://127.0.0.1:{ports[variant]}", proc)
        wait_healthy(url, router)
        exposed = 0
        with httpx.Client(base_url=url, timeout=10) as client:
            def ask(unit):
                return client.post("/experiments/e2e/predict", json={"unit_id": unit, "features": FEATURES})

            for i in range(200):
                reply = ask(f"u{i}")
                assert reply.status_code == 200, reply.text
                exposed += reply.json()["exposed"]
            assert client.post("/experiments/e2e/feedback",
                               json={"unit_id": "u1", "metric": "conversion", "value": 1}).status_code == 200

            stop(models["treatment"], signal.SIGKILL)  # one model service dies
            for i in range(200, 300):
                reply = ask(f"u{i}")
                if exp.assign(f"u{i}") == "treatment":
                    assert reply.status_code == 502 and "treatment" in reply.json()["detail"]
                else:
                    assert reply.status_code == 200  # the other variant keeps serving
                    exposed += reply.json()["exposed"]

            models["treatment"] = model("treatment")  # it comes back: the router recovers
            wait_healthy(f"http://127.0.0.1:{ports['treatment']}", models["treatment"])
            for i in range(300, 400):
                reply = ask(f"u{i}")
                assert reply.status_code == 200, reply.text
                exposed += reply.json()["exposed"]

            traffic = subprocess.run(
                [sys.executable, str(REPO / "sample_runs" / "traffic.py"), "--router", url, "--experiment", "e2e",
                 "--metric", "conversion", "--rate", "control=0.1", "--rate", "treatment=0.3",
                 "--users", "100", "--seed", "7"], capture_output=True, text=True, timeout=60)
            assert traffic.returncode == 0, traffic.stderr
            played = dict(line.split(": ") for line in traffic.stdout.splitlines())
            assert int(played["control"]) + int(played["treatment"]) == 100
            exposed += 100

            paused = client.post("/experiments/e2e/pause", headers={"Authorization": "Bearer tok"})
            assert paused.status_code == 200
            assert {ask(f"u{i}").json()["variant"] for i in range(400, 430)} == {"control"}
        err = stop(router)  # SIGTERM: finish, flush, exit
        assert "Traceback" not in err
        results = mltrail.Store(root).ab.get("e2e").results()
        assert sum(results.units.values()) == exposed  # nothing answered is missing
    finally:
        for proc in (*models.values(), router):
            if proc.poll() is None:
                stop(proc, signal.SIGKILL)


def test_sigterm_under_concurrent_load_loses_no_exposure(tmp_path):
    """32 clients keep predicting while the router gets SIGTERM: every answered exposure
    is in the log afterwards, and the requests in flight were answered, not cut."""
    root = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", root, ignore=shutil.ignore_patterns(".cache"))
    store = mltrail.Store(root)
    ports = {"control": free_port(), "treatment": free_port(), "router": free_port()}
    runs = {"control": "logreg-C1", "treatment": "logreg-C0.1"}
    procs = {v: start(["serve", "model", "--store", str(root), "--run", runs[v], "--port", str(ports[v])], tmp_path)
             for v in runs}
    variants = [{"name": v, "weight": 0.5, "control": v == "control", "url": f"http://127.0.0.1:{ports[v]}"}
                for v in runs]
    store.ab.create(ab_spec(key="term", variants=variants, mde=0.05)).start()
    procs["router"] = router = start(["serve", "router", "--store", str(root), "--port", str(ports["router"])],
                                     tmp_path)
    url = f"http://127.0.0.1:{ports['router']}/experiments/term/predict"
    try:
        for name, proc in procs.items():
            wait_healthy(f"http://127.0.0.1:{ports[name]}", proc)
        answered: dict[str, int] = {"control": 0, "treatment": 0}
        refused = []

        async def client(n: int, session: aiohttp.ClientSession) -> None:
            for i in range(100_000):
                try:
                    async with session.post(url, json={"unit_id": f"c{n}-{i}", "features": FEATURES}) as reply:
                        answer = await reply.json()
                        assert reply.status == 200, answer
                except aiohttp.ClientConnectionError as exc:  # the router stopped accepting
                    refused.append(type(exc).__name__)
                    return
                answered[answer["variant"]] += answer["exposed"]

        async def load() -> None:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
                tasks = [asyncio.create_task(client(n, session)) for n in range(32)]
                while sum(answered.values()) < 300:  # the load is under way
                    await asyncio.sleep(0.05)
                router.send_signal(signal.SIGTERM)  # mid-load
                await asyncio.gather(*tasks)

        asyncio.run(load())
        _, err = router.communicate(timeout=30)
        assert "Traceback" not in err and len(refused) == 32
        assert sum(answered.values()) > 200  # the load was real
        results = mltrail.Store(root).ab.get("term").results()
        assert results.units == answered  # every answered exposure was flushed at shutdown
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                stop(proc, signal.SIGKILL)
