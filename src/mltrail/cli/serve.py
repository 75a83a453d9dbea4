"""``mltrail serve``: the services of the separated mode."""

from __future__ import annotations

import click

from ..config import ADMIN_TOKEN
from ..store import Store
from .context import pass_store, store_option
from .output import note


@click.group()
@store_option
def serve() -> None:
    """Services: the A/B router in front of model services, and a model service."""


@serve.command("router")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8700, show_default=True)
@click.option("--timeout", type=float, default=2.0, show_default=True,
              help="Seconds to wait for a model service.")
@pass_store
def serve_router(store: Store, host: str, port: int, timeout: float) -> None:
    """Route each request to its variant's model service and log exposures and feedback.

    POST /experiments/KEY/predict {"unit_id": ..., "features": {...}} and
    /experiments/KEY/feedback {"unit_id": ..., "metric": ..., "value": ...}; GET
    /experiments, /experiments/KEY, /healthz, /metrics (Prometheus). Admin calls (POST
    /experiments/KEY/start, pause, stop, weights) need `Authorization: Bearer
    $MLTRAIL_ADMIN_TOKEN` and are off while it is unset."""
    from ..serve.asgi import run_server
    from ..serve.router import create_app

    app = create_app(store, admin_token=ADMIN_TOKEN.get() or None, timeout=timeout)
    note(f"mltrail router on http://{host}:{port} for {store.root}")
    run_server(app, host, port, loop="uvloop")


@serve.command("model")
@click.option("--model", "uri", default=None,
              help="A registered model: models:/name@alias, models:/name/3, models:/name/latest.")
@click.option("--run", "run_ref", default=None, help="Or a run (ID, prefix or unique name)...")
@click.option("--artifact", default="model.pkl", show_default=True, help="...and its pickled model artifact.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9001, show_default=True)
@pass_store
def serve_model(store: Store, uri: str | None, run_ref: str | None, artifact: str, host: str, port: int) -> None:
    """Serve a pickled scikit-learn model: POST /predict {"features": {...}}, GET /healthz."""
    from ..serve.asgi import run_server
    from ..serve.model import create_model_app

    if (uri is None) == (run_ref is None):
        raise click.UsageError("give --model URI or --run RUN (with --artifact), not both")
    if run_ref is not None:  # (not `uri or`: an empty --model is no run to resolve)
        uri = f"runs:/{store.resolve_run(run_ref)}/{artifact}"
    assert uri is not None  # (one of the two, checked above)
    app = create_model_app(store, uri)
    note(f"model service on http://{host}:{port}: {uri}")
    run_server(app, host, port)
