"""The dashboard on a server with users: it asks who you are, shows each user only
what they may read, and a control that changes state only to who may use it."""

import pytest
from streamlit.testing.v1 import AppTest

import mltrail
from tests.factories import APP, ab_spec, quiet_run, serving_store


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """ana's private experiment with a live run and her A/B experiment; bob may read both."""
    folder = tmp_path_factory.mktemp("users") / "store"
    local = mltrail.Store(folder)
    tokens = {name: local.access.add_user(name, admin=(name == "root")) for name in ("ana", "bob", "dan", "root")}
    live = quiet_run(local, "ana-study", name="ana-live")  # running all along (no with: bob's run is no child of it)
    live.log_metric("loss", 0.5)
    live.flush()
    with quiet_run(local, "bob-study", name="bob-run") as run:
        run.log_metric("loss", 0.7)
    local.ab.create(ab_spec(key="ana-ab")).start()
    for kind, name, user, level in (("experiment", "ana-study", "ana", "manage"), ("ab", "ana-ab", "ana", "manage"),
                                    ("experiment", "bob-study", "bob", "manage"),
                                    ("experiment", "ana-study", "bob", "read"), ("ab", "ana-ab", "bob", "read")):
        local.access.grant(kind, name, user, level, by="admin")
    with serving_store(folder) as url:
        yield url, tokens
    live.end()


@pytest.fixture
def as_user(served, monkeypatch, tmp_path):
    url, tokens = served
    monkeypatch.setenv("MLTRAIL_DIR", url)
    monkeypatch.delenv("MLTRAIL_TOKEN", raising=False)
    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))

    def open_as(user, page="runs.py"):
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        if user is not None:
            at.text_input(key="token_input").input(tokens[user])
            next(b for b in at.button if b.label == "Sign in").click()
            at.run()
        if page != "runs.py":
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return open_as


def _texts(at):
    return " ".join(str(e.value) for kind in ("markdown", "caption", "info", "error", "title") for e in getattr(at, kind))


def _table(at):
    return " ".join(str(df.value.to_dict()) for df in at.dataframe)


@pytest.mark.slow
def test_without_a_token_the_dashboard_asks_and_shows_nothing(as_user):
    at = as_user(None)
    assert "has users: sign in with your token" in _texts(at)
    assert not at.dataframe


@pytest.mark.slow
def test_each_user_sees_their_own_runs(as_user):
    ana, bob, dan = as_user("ana"), as_user("bob"), as_user("dan")
    assert "Signed in as **ana**" in _texts(ana)
    assert "ana-live" in _table(ana) and "bob-run" not in _table(ana)
    assert "ana-live" in _table(bob) and "bob-run" in _table(bob)
    assert "ana-" not in _table(dan) and "bob-" not in _table(dan)


@pytest.mark.slow
def test_controls_show_only_to_who_may_use_them(as_user):
    ana, bob = as_user("ana", "live.py"), as_user("bob", "live.py")
    assert any(b.label == "Ask to stop" for b in ana.button)
    assert "ana-live" in _table(bob) and not any(b.label == "Ask to stop" for b in bob.button)
    ana_ab, bob_ab = as_user("ana", "ab_experiment.py"), as_user("bob", "ab_experiment.py")
    assert any(b.label == "Pause" for b in ana_ab.button)
    assert not any(b.label in ("Pause", "Stop the experiment") for b in bob_ab.button)
    assert "starting, pausing or stopping it needs manage" in _texts(bob_ab)


@pytest.mark.slow
def test_a_wrong_token_is_told_and_shows_nothing(as_user, served):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="token_input").input("mlt_wrong")
    next(b for b in at.button if b.label == "Sign in").click()
    at.run()
    assert "That token is not valid here." in _texts(at) and not at.dataframe


@pytest.fixture
def oidc(served, monkeypatch, tmp_path):
    """A dashboard whose people sign in through OpenID Connect (st.login): it runs with an
    admin's token and acts as the signed-in person's user. (Streamlit's own login flow
    needs an identity provider; who signed in is set here instead.)"""
    from mltrail.dashboard import state

    url, tokens = served
    monkeypatch.setenv("MLTRAIL_DIR", url)
    monkeypatch.setenv("MLTRAIL_TOKEN", tokens["root"])
    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))
    monkeypatch.setattr(state, "oidc_configured", lambda: True)
    person = {"email": None}
    monkeypatch.setattr(state, "signed_in_person", lambda: person["email"])
    return person


@pytest.mark.slow
def test_people_signed_in_with_openid_connect_see_their_own_runs(oidc):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert "log in to see what you may" in _texts(at) and any(b.label == "Log in" for b in at.button)
    assert not at.dataframe
    oidc["email"] = "bob"
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Signed in as **bob**" in _texts(at)
    assert "bob-run" in _table(at) and "ana-live" in _table(at)
    oidc["email"] = "dan"
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert "Signed in as **dan**" in _texts(at) and "ana-" not in _table(at) and "bob-" not in _table(at)
    oidc["email"] = "stranger@corp.com"
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert "mltrail users add stranger@corp.com" in " ".join(e.value for e in at.error) and not at.dataframe
