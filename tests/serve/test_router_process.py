"""`mltrail serve router` as a real process: it serves, and SIGTERM stops it cleanly."""

import signal

import pytest

from tests.factories import ab_spec, free_port, spawn_python, wait_for_http


@pytest.mark.slow
def test_router_process_serves_and_stops_on_sigterm(store, tmp_path):
    store.ab.create(ab_spec(mde=0.05)).start()
    port = free_port()
    proc = spawn_python(f"""
import sys
from mltrail.cli import main
sys.argv = ["mltrail", "serve", "router", "--store", {str(store.root)!r}, "--port", "{port}"]
main()
""", tmp_path)
    assert b'"state":"running"' in wait_for_http(f"http://127.0.0.1:{port}/experiments/ranker-v2", proc, 30)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught, as it should
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err
