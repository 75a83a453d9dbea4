"""Streamlit-side access to the store, cached on the compaction generation.

On a server with users (``mltrail ui --store http://…``), the dashboard asks who you are:
a user's token, given at launch (``--token`` or ``$MLTRAIL_TOKEN``: everyone using this
dashboard is that user) or typed in the sidebar (each browser session its own user); or,
when ``[auth]`` is configured in ``.streamlit/secrets.toml``, Streamlit's ``st.login``
(OpenID Connect): the dashboard then runs with an admin's token and acts as the signed-in
person's mltrail user, named by their e-mail address (``mltrail users add ana@corp.com``).
Every cache is keyed by the store *and* the token, so no user ever sees another's
answers, and a control that changes state shows only to a user with the level to use it.

While the server cannot be reached, a page says so in one line (:func:`unreachable`) and
shows what this session read last: its reads are keyed on the table generation and the
clock of the last render the server answered, which the caches still hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from ..access.control import RANK
from ..config import STORE_DIR, TOKEN, is_url
from ..errors import InvalidInputError, MltrailError, UpstreamError
from ..remote.store import RemoteStore
from ..store import Store
from .text import code, md

T = TypeVar("T")
_TOKEN = "mltrail_token"  # the session's token, when typed in the sidebar
_LAST = "mltrail_last_answered"  # {cache key: (generation, clock)} of the last render the server answered
_UNREACHABLE = "mltrail_unreachable"  # this render's one line, when the server cannot be reached
_SIGNED_IN = "mltrail_signed_in"  # the cache key whose sign-in the server last confirmed
_REMEMBERED = "mltrail_remembered"  # {(cache key, what): answer} of the uncached reads, last answered
REMEMBERED_MAX = 64  # answers a session keeps for while the server is away (the oldest go first)


@st.cache_resource(show_spinner=False)
def _store(key: str) -> Store:
    root, _, rest = key.partition("#")
    token, _, person = rest.partition("#")
    if not is_url(root):
        return Store(root)
    return Store(root, token=token or None, acting_as=person or None)


def _key() -> str:
    """The cache key of this session's store: its root, and on a server the token (and
    the user an OpenID Connect sign-in acts as)."""
    root = STORE_DIR.get()
    if not is_url(root):
        return root
    if oidc_configured():  # the dashboard's own (admin) token only ever acts for a signed-in person
        person = signed_in_person()
        return f"{root}#{TOKEN.get()}#{person}" if person else root
    token = TOKEN.get() or st.session_state.get(_TOKEN)
    return f"{root}#{token}" if token else root


def oidc_configured() -> bool:
    """Whether Streamlit's st.login can sign people in (``[auth]`` in secrets.toml)."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError):  # (no secrets file: StreamlitSecretNotFoundError is one)
        return False


def signed_in_person() -> str | None:
    """The e-mail of whoever signed in through OpenID Connect, if that is how this
    dashboard knows people."""
    if not oidc_configured() or not st.user.is_logged_in:
        return None
    return str(st.user.get("email") or "") or None


def store() -> Store:
    """The store the dashboard shows: ``$MLTRAIL_DIR`` (set by ``mltrail ui``)."""
    return _store(_key())


def sign_in() -> None:
    """On a server with users: who this session is, in the sidebar; a form for a token
    (and nothing else on the page) until a valid one is given."""
    current = store()
    if not isinstance(current, RemoteStore):
        return
    if oidc_configured() and not signed_in_person():  # people sign in with the organisation's identity provider
        st.info(f"{md(current.url)} has users: log in to see what you may.")
        st.button("Log in", key="log_in", type="primary", on_click=st.login)
        st.stop()
    try:
        me = current.access.whoami()
    except InvalidInputError:  # 401: the server has users, and this session is none of them
        me = None
    except UpstreamError as exc:
        if st.session_state.get(_SIGNED_IN) != _key():
            raise  # never signed in: nothing read that could be shown
        note_unreachable(exc)  # signed in before: show what was read then
        return
    if me is not None:
        st.session_state[_SIGNED_IN] = _key()  # what it reads, the server said it may
    if me is not None and not me["users"]:
        return  # one shared token (or none): no users to tell apart
    if me is not None:
        st.sidebar.caption(f"Signed in as **{md(me['user'])}**" + (" (admin)" if me["admin"] else ""))
        if signed_in_person():
            st.sidebar.button("Log out", key="log_out", on_click=st.logout)
        elif st.session_state.get(_TOKEN) and st.sidebar.button("Sign out", key="sign_out"):
            del st.session_state[_TOKEN]
            st.rerun()
        return
    if oidc_configured():  # signed in, but the server does not know them (or the dashboard's token)
        st.error(f"{md(signed_in_person())} cannot see {md(current.url)} through this dashboard: an admin adds "
                 f"them with {code(f'mltrail users add {signed_in_person()}')}, and runs the dashboard with an "
                 "admin's token")
        st.sidebar.button("Log out", key="log_out", on_click=st.logout)
        st.stop()
    with st.sidebar.form("sign_in"):
        token = st.text_input("Your mltrail token", type="password", key="token_input",
                              help="mltrail users add NAME (or users token NAME) prints it")
        if st.form_submit_button("Sign in"):
            st.session_state[_TOKEN] = token.strip()
            st.rerun()
    if st.session_state.get(_TOKEN):
        st.sidebar.error("That token is not valid here.")
    st.info(f"{md(current.url)} has users: sign in with your token (in the sidebar) to see what you may.")
    st.stop()


def may(kind: str, name: str, level: str) -> bool:
    """Whether this session's user has ``level`` on an object (always, on a folder or a
    server without users): the dashboard shows a control only to who may use it."""
    return _may(_key(), kind, name, level, _clock())


@st.cache_data(show_spinner=False, max_entries=256)
def _may(key: str, kind: str, name: str, level: str, clock: int) -> bool:
    del clock  # a grant given or revoked shows within STATUS_SECONDS
    current = _store(key)
    if not isinstance(current, RemoteStore):
        return True
    return RANK[current.access.my_level(kind, name)] >= RANK[level]


def generation() -> int:
    """Compact what is new, then return the table generation (a cache key)."""
    return store().refresh()


STATUS_SECONDS = 2  # a run's status (RUNNING -> CRASHED) changes with the clock alone


def search(root: str, generation: int, experiment: str | None, filter: str | None,
           order_by: str | None = None, view: str = "active") -> pd.DataFrame:
    """search_runs, cached per table generation and per STATUS_SECONDS of the clock."""
    return _search(root, generation, _clock(), experiment, filter, order_by, view)


@st.cache_data(show_spinner=False, max_entries=64)
def _search(root: str, generation: int, clock: int, experiment: str | None,
            filter: str | None, order_by: str | None = None, view: str = "active") -> pd.DataFrame:
    del generation, clock  # cache keys only
    return _store(root).search_runs(experiment=experiment, filter=filter or None,
                                    order_by=[o.strip() for o in order_by.split(",")] if order_by else None,
                                    view=view)


@st.cache_data(show_spinner=False, max_entries=16)
def experiments(root: str, generation: int) -> pd.DataFrame:
    del generation
    return _store(root).experiments()


@st.cache_data(show_spinner=False, max_entries=64)
def history(root: str, generation: int, run_ids: tuple[str, ...],
            keys: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Metric points of the given runs only (never the whole history)."""
    del generation
    return _store(root).metric_history(run_ids=list(run_ids), keys=list(keys) if keys else None)


@st.cache_data(show_spinner=False, max_entries=32)
def histograms(root: str, generation: int, run_id: str) -> pd.DataFrame:
    """One run's histograms (``run.log_histogram``)."""
    del generation
    return _store(root).histograms(run_ids=[run_id])


@st.cache_data(show_spinner=False, max_entries=32)
def grouped(root: str, generation: int, groups: tuple[tuple[str, str], ...], keys: tuple[str, ...],
            x: str, band: str, smoothing: float) -> pd.DataFrame:
    """Grouped curves of the given runs ((run ID, group) pairs), aggregated by the store
    (on a server, by the server: only the aggregates come to the page)."""
    del generation
    return _store(root).grouped_history(dict(groups), list(keys), x=x, band=band,  # type: ignore[arg-type]
                                        smoothing=smoothing, points=GROUPED_POINTS)


GROUPED_POINTS = 500  # x buckets a group's curve: about a chart's width in pixels


@st.cache_data(show_spinner=False, max_entries=256)
def run_details(root: str, generation: int, run_id: str) -> dict[str, Any]:
    del generation
    return _store(root).get_run(run_id)


def root() -> str:
    """The key every cached read takes: the store, and on a server the session's token."""
    return _key()


def open_page() -> tuple[str, int]:
    """A page's store root and table generation; on a missing store, its message and stop.
    A server that cannot be reached gives the generation of the last render it answered
    (the page shows what it read then, below one line saying so), or stops the page."""
    key = root()
    try:
        current = generation()
    except UpstreamError as exc:
        note_unreachable(exc)
        if key not in st.session_state.get(_LAST, {}):
            st.stop()  # nothing read yet: the line is all there is to show
        return key, st.session_state[_LAST][key][0]
    except MltrailError as exc:
        st.error(md(exc))
        st.stop()
    st.session_state.pop(_UNREACHABLE, None)  # (a fragment's rerun: the server is back)
    st.session_state.setdefault(_LAST, {})[key] = (current, int(time.time() // STATUS_SECONDS))
    return key, current


def _clock() -> int:
    """The clock cached reads are keyed on, read once a render by :func:`open_page` (so
    that every read of the render has the same key): while the server cannot be reached,
    that of the last render it answered, whose reads the caches hold."""
    last = st.session_state.get(_LAST, {}).get(root())
    return last[1] if last is not None else int(time.time() // STATUS_SECONDS)


def note_unreachable(exc: UpstreamError) -> None:
    """Remember, for this render, that the server cannot be reached (said once, by :func:`unreachable`)."""
    st.session_state[_UNREACHABLE] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def unreachable(notice: Any) -> None:
    """Say in one line, in ``notice`` (a placeholder above the page), that the server could
    not be reached during this render, if it could not; then forget it for the next."""
    message = st.session_state.pop(_UNREACHABLE, None)
    if message is None:
        return
    shown = "showing what was read before; " if st.session_state.get(_LAST, {}).get(root()) else ""
    notice.warning(md(f"{message} ({shown}the page catches up when the server answers again)"))


def remembered(what: tuple[Any, ...], read: Callable[[], T]) -> T:
    """``read()``, a read the caches do not keep (registry, features, A/B lifecycle); while
    the server cannot be reached, what it answered last in this session, if it ever did."""
    key = (root(), *what)
    answers = st.session_state.setdefault(_REMEMBERED, {})
    try:
        answer = read()
    except UpstreamError as exc:
        if key not in answers:
            raise
        note_unreachable(exc)
        return answers[key]
    answers.pop(key, None)  # (the newest last: the oldest go first)
    answers[key] = answer
    while len(answers) > REMEMBERED_MAX:
        del answers[next(iter(answers))]
    return answer


def stop_form(runs: pd.DataFrame, key: str) -> None:
    """A form to ask one of the running ``runs`` to stop (the request names who asked:
    ``$MLTRAIL_USER`` of the dashboard's process, else its login; and why)."""
    running = runs[runs["status"] == "RUNNING"]
    running = running[[may("experiment", e, "edit") for e in running["experiment"]]] if len(running) else running
    if running.empty:
        return
    names = dict(zip(running["run_id"], running["run_name"]))
    with st.form(key):
        left, middle, right = st.columns([2, 3, 1], vertical_alignment="bottom")
        run_id = left.selectbox("Stop a run", list(names), format_func=lambda run: str(names[run]), key=f"{key}_run")
        reason = middle.text_input("Reason", key=f"{key}_reason", placeholder="why it should stop")
        if right.form_submit_button("Ask to stop") and run_id is not None:  # (None only without options)
            try:
                store().request_stop(run_id, reason.strip() or None)
            except MltrailError as exc:
                st.error(md(exc))
                return
            st.success(f"Asked {md(names[run_id])} to stop: it sees the request within a second or two "
                       "and ends KILLED.")


def selected_runs() -> list[str]:
    """Runs picked on the Runs page, shared with the Compare page."""
    return list(st.session_state.get("selected_runs", []))



# -- A/B experiments ------------------------------------------------------------------------


def open_ab_page() -> tuple[str, Any, list[str]]:
    """An A/B page's store root, experiment registry and keys; a hint and stop when none."""
    current_root, _ = open_page()
    registry = store().ab
    keys = remembered(("ab keys",), registry.keys)
    if not keys:
        st.info("No A/B experiment yet: `mltrail ab create --spec FILE`, or `store.ab.create(...)`.")
        st.stop()
    return current_root, registry, keys


@st.cache_data(show_spinner=False, max_entries=64)
def ab_dimensions(root: str, key: str, fingerprint: tuple[int, int]) -> list[str]:
    """The attributes an experiment's exposures carry."""
    del fingerprint
    return _store(root).ab.get(key).dimensions()


@st.cache_data(show_spinner=False, max_entries=64)
def ab_results_by(root: str, key: str, fingerprint: tuple[int, int], dimension: str,
                  phase: int | None = None) -> pd.DataFrame:
    """An experiment's results table per value of ``dimension``."""
    del fingerprint
    return _store(root).ab.get(key).results_by(dimension, phase=phase).table


def ab_fingerprint(key: str) -> tuple[int, int]:
    """Changes whenever the experiment's lifecycle or logs do: a cheap cache key."""
    return remembered(("ab fingerprint", key), lambda: store().ab.fingerprint(key))


def ab_experiment(registry: Any, key: str) -> Any:
    """An A/B experiment (its spec, lifecycle and phases), as :func:`remembered` keeps it."""
    return remembered(("ab experiment", key), lambda: registry.get(key))


@st.cache_data(show_spinner=False, max_entries=64)
def ab_results(root: str, key: str, fingerprint: tuple[int, int], sequential: bool | None = None,
               phase: int | None = None) -> Any:
    """An experiment's results for ``phase`` (the current one by default), recomputed only
    when its lifecycle or logs changed."""
    del fingerprint
    return _store(root).ab.get(key).results(phase=phase, sequential=sequential)
