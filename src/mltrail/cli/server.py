"""mltrail server and mltrail sync: one store served to remote clients."""

from __future__ import annotations

import logging

import click

from ..config import SERVER_TOKEN, TOKEN
from ..errors import BusyError, InvalidInputError
from ..storage.locks import held
from ..store import Store
from .context import pass_store
from .output import note, out


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5050, show_default=True)
@click.option("--default-permission", type=click.Choice(["none", "read"]), default="none", show_default=True,
              help="With users: what a user may do to what nobody granted them.")
@click.option("--max-body", type=click.IntRange(min=16 << 20), default=None, show_default="64 MiB",
              help="The largest request body in bytes (413 past it; at least 16 MiB, as a run's batches "
                   "of lines are up to about 8 MiB); blobs travel in parts below it.")
@pass_store
def server(store: Store, host: str, port: int, default_permission: str, max_body: int | None) -> None:
    """Serve the store to remote clients (`mltrail sync` uploads into it). Once the store
    has users (`mltrail users add`), every call needs a user's token and each user sees
    what they may; without users, $MLTRAIL_SERVER_TOKEN (if set) is one shared token."""
    from ..serve.asgi import run_server
    from ..server.app import create_app
    from ..server.bodies import MAX_BODY

    if not isinstance(store, Store):
        raise InvalidInputError(f"mltrail server serves a folder, not {store.root}: --store PATH")
    store.layout.ensure()
    _print_access_log()
    app = create_app(store, token=SERVER_TOKEN.get() or None,
                     max_body=max_body or MAX_BODY, default_permission=default_permission)
    try:  # the server is each run file's one writer: a second server on the folder would not be
        with held(store.layout.lock_file("server"), "the store's server", timeout=0):
            note(f"mltrail server on http://{host}:{port} for {store.root}")
            run_server(app, host, port, on_exit=app.state.stopping.set)  # (held stop-watch calls end)
    except BusyError:
        raise BusyError(f"another mltrail server already serves {store.root}: one server per folder") from None


def _print_access_log() -> None:
    """The server's access log (who did what to which object) on standard error."""
    from ..server.app import ACCESS_LOG

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    ACCESS_LOG.addHandler(handler)
    ACCESS_LOG.setLevel(logging.INFO)


@click.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.option("--to", "url", required=True, help="The server's URL, e.g. http://host:5050")
@click.option("--token", default=None, help="The server's token (default: $MLTRAIL_TOKEN).")
def sync(source: str, url: str, token: str | None) -> None:
    """Upload the runs and blobs of the local store SOURCE that the server lacks. Run it
    again at any time: nothing is sent twice. A run the server refuses is named at the
    end (with the reason) and the exit code is 1; every other run is still sent."""
    from ..server.sync import sync_store

    report = sync_store(Store(source), url, token or TOKEN.get() or None)
    out.print(report.summary(), highlight=False)
    for what, reason in report.refused:
        note(f"refused: {what}: {reason}")
    if report.refused:  # the rest was sent; the exit code says that not everything was
        raise SystemExit(1)
