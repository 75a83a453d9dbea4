"""Every dashboard page on a store behind ``mltrail server`` (``mltrail ui --store
http://…``): the same pages as on the folder, read through the server's API."""

import shutil

import pytest
from streamlit.testing.v1 import AppTest

import mltrail
from mltrail.dashboard.text import md
from tests.factories import APP, REPO, free_port, serving_store

PAGES = ["runs.py", "compare.py", "run.py", "live.py", "ab_experiments.py", "ab_experiment.py",
         "ab_power.py", "models.py", "features.py", "study.py", "reports.py"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A copy of sample_runs behind a server with a token: (URL, the folder's Store)."""
    folder = tmp_path_factory.mktemp("remote-dash") / "sample_runs"
    shutil.copytree(REPO / "sample_runs", folder, ignore=shutil.ignore_patterns("*.py", ".mltrail"))
    with serving_store(folder, token="s3cret") as url:
        yield url, mltrail.Store(folder)


@pytest.fixture
def remote_env(served, tmp_path, monkeypatch):
    url, local = served
    monkeypatch.setenv("MLTRAIL_DIR", url)
    monkeypatch.setenv("MLTRAIL_TOKEN", "s3cret")
    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))
    return local


def _texts(at):
    return " ".join(str(e.value) for kind in ("markdown", "caption", "subheader", "title", "info", "warning")
                    for e in getattr(at, kind))


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_from_a_server(remote_env, page):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["selected_runs"] = list(remote_env.search_runs()["run_id"][:3])
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.slow
def test_the_run_page_shows_a_run_of_the_server(remote_env):
    run_id = remote_env.resolve_run("gb-lr0.2")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("run.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert md("gb-lr0.2") in _texts(at)
    assert "`model.pkl`" in _texts(at) and "not present here" not in _texts(at)
    assert at.get("download_button")  # the artifact was fetched from the server to be offered


@pytest.mark.slow
def test_the_ab_page_shows_the_servers_results(remote_env):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("ab_experiment.py").run()
    assert not at.exception, [e.value for e in at.exception]
    expected = remote_env.ab.get(at.selectbox[0].value).results().recommendation
    assert expected.split(":")[0] in _texts(at)


# -- a server that cannot be reached ------------------------------------------------------


def _unreachable_lines(at):
    return [e.value for kind in ("error", "warning") for e in getattr(at, kind) if "cannot reach" in e.value]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_a_server_down_from_the_start_is_one_line_on_every_page(tmp_path, monkeypatch, page):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLTRAIL_DIR", url)
    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    [line] = _unreachable_lines(at)
    assert md(url) in line and "\n" not in line  # (a URL in Markdown is escaped: shown as text)


@pytest.mark.slow
def test_a_server_that_goes_down_leaves_the_page_showing_what_it_read(tmp_path, monkeypatch):
    folder = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", folder, ignore=shutil.ignore_patterns("*.py", ".mltrail"))
    run_id = mltrail.Store(folder).resolve_run("gb-lr0.2")
    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))
    pages = {}
    with serving_store(folder) as url:
        monkeypatch.setenv("MLTRAIL_DIR", url)
        runs = list(mltrail.Store(folder).search_runs()["run_id"][:3])
        for page in PAGES:
            at = AppTest.from_file(APP, default_timeout=60)
            at.query_params["run"] = run_id
            at.session_state["selected_runs"] = runs
            at.run()
            at.switch_page(page).run()
            assert not at.exception and not _unreachable_lines(at)
            pages[page] = (at, _shown(at))
    for page, (at, shown) in pages.items():
        at.run()  # a rerun (a refresh, a click) with the server gone
        assert not at.exception, (page, [e.value for e in at.exception])
        [line] = _unreachable_lines(at)
        assert md(url) in line and "showing what was read before" in line and "\n" not in line, page
        assert _shown(at) == shown, page  # what it had, still shown (its name, params, metrics, tables, charts)


def _shown(at):
    return ([(kind, e.value) for kind in ("title", "markdown", "subheader", "metric", "info") for e in at.get(kind)]
            + [d.value.to_csv() for d in at.dataframe] + [c.proto.spec for c in at.get("vega_lite_chart")]
            + [g.proto.spec for g in at.get("graphviz_chart")])
