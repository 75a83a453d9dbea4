"""The README's runnable examples run, and print what the README says they print."""

import contextlib
import io
import re
import shutil

import pytest

from tests.factories import REPO


def _example(name: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- readme-example: {name} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"README example {name!r} not found"
    return match.group(1)


@pytest.mark.slow
def test_curation_example_runs_and_prints_what_it_claims():
    _runs_and_prints_what_it_claims(_example("curation"))  # (in the test's own folder)


@pytest.mark.slow
def test_ab_example_runs_and_prints_what_it_claims():
    _runs_and_prints_what_it_claims(_example("ab"))


@pytest.mark.slow
def test_registry_example_runs_on_the_sample_store(tmp_path):
    shutil.copytree(REPO / "sample_runs", tmp_path / "sample_runs", ignore=shutil.ignore_patterns(".cache"))
    _runs_and_prints_what_it_claims(_example("registry"))  # (the tests run in tmp_path)


def test_features_example_runs_and_prints_what_it_claims():
    _runs_and_prints_what_it_claims(_example("features"))  # (in the test's own folder)


def _runs_and_prints_what_it_claims(code: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    printed = [line.strip() for line in out.getvalue().splitlines()]
    claimed = [line.split("# ", 1)[1].strip() for line in code.splitlines()
               if line.startswith("print(") and "# " in line]
    assert len(printed) == len(claimed), (printed, claimed)
    for shown, claim in zip(printed, claimed):  # "# VALUE" or "# VALUE: a note about it"
        assert shown in (claim, claim.split(": ", 1)[0]), (shown, claim)


@pytest.mark.slow
def test_team_example_runs_against_a_server(tmp_path, monkeypatch):
    from tests.factories import serving_store

    shutil.copytree(REPO / "sample_runs", tmp_path / "sample_runs", ignore=shutil.ignore_patterns(".cache"))
    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))
    with serving_store(tmp_path / "sample_runs", token="s3cret") as url:
        _runs_and_prints_what_it_claims(_example("team").replace("http://127.0.0.1:5050", url))


@pytest.mark.slow
def test_users_example_runs_against_a_server_with_users(tmp_path, monkeypatch):
    import pickle

    import mltrail
    from tests.factories import serving_store

    folder = tmp_path / "team_runs"
    tokens = {name: mltrail.Store(folder).access.add_user(name) for name in ("ana", "bob")}
    mltrail.Store(folder).access.add_members("reviewers", ["bob"])
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"w": 1}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLTRAIL_SPOOL", str(tmp_path / "spool"))
    with serving_store(folder) as url:
        code = "import mltrail\n" + _example("users").replace("http://127.0.0.1:5050", url)
        code = code.replace("token=ANA", f"token={tokens['ana']!r}").replace("token=BOB", f"token={tokens['bob']!r}")
        _runs_and_prints_what_it_claims(code)


def test_children_example_runs_and_prints_what_it_claims(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _runs_and_prints_what_it_claims(_example("children"))


def test_mlflow_example_runs_and_prints_what_it_claims():
    _runs_and_prints_what_it_claims(_example("mlflow"))  # (in the test's own folder)


@pytest.mark.slow
def test_mlflow_uri_example_runs_with_the_real_mlflow_on_an_mltrail_folder():
    mlflow = pytest.importorskip("mlflow")
    try:
        _runs_and_prints_what_it_claims(_example("mlflow-uri"))  # (in the test's own folder)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.tracking.fluent._active_experiment_id = None
    import mltrail

    assert len(mltrail.Store("mltrail_runs").search_runs("churn")) == 1  # an mltrail store
