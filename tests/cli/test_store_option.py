"""One `--store` resolution for every command and group: given to `mltrail`, to a group
or to a command (the one nearest the command wins), else $MLTRAIL_DIR, else
./mltrail_runs. (`mltrail models --store S history churn` used to read ./mltrail_runs.)"""

import pytest
from click.testing import CliRunner

from mltrail.cli import main
from tests.factories import serving_store, sparse_store

# (group, command after the group, text the answer must hold)
CASES = [
    (None, ["runs"], "nothing"),
    (None, ["experiments"], "has one"),
    (None, ["show", "full"], "growth"),
    (None, ["runs", "--deleted"], "no runs match"),
    (None, ["tag", "full", "checked", "yes"], "checked=yes"),
    ("models", ["history", "plain"], "production"),
    ("models", ["show", "plain"], "v1"),
    ("models", ["list"], "plain"),
    ("models", [], "plain"),
    ("ab", ["list"], "idle"),
    ("ab", ["status", "idle"], "draft"),
    ("ab", ["results", "idle"], "no units yet"),
    ("features", ["list"], "feature views"),
    ("features", [], "feature views"),
]


@pytest.fixture
def sparse(tmp_path):
    return sparse_store(tmp_path / "sparse")


def invoke(args, env=None):
    return CliRunner(env=env).invoke(main, args)


PLACES = [(where, *case) for case in CASES for where in ("root", "group", "command", "environment")
          if where != "group" or case[0] is not None]  # a top-level command has no group


@pytest.mark.slow
@pytest.mark.parametrize("where,group,command,expected", PLACES,
                         ids=[f"{w}: {g or ''} {' '.join(c)}" for w, g, c, _ in PLACES])
def test_store_is_found_wherever_it_is_given(sparse, where, group, command, expected):
    store = ["--store", str(sparse.root)]
    prefix = [group] if group else []
    args = {"root": [*store, *prefix, *command], "group": [*prefix, *store, *command],
            "command": [*prefix, *command, *store], "environment": [*prefix, *command]}[where]
    result = invoke(args, env={"MLTRAIL_DIR": str(sparse.root)} if where == "environment" else None)
    assert result.exit_code == 0, result.output
    assert expected in result.output


def test_the_store_nearest_the_command_wins(sparse, tmp_path):
    other = tmp_path / "empty"
    result = invoke(["--store", str(other), "models", "--store", str(sparse.root), "history", "plain"])
    assert result.exit_code == 0 and "production" in result.output
    result = invoke(["models", "--store", str(sparse.root), "history", "plain", "--store", str(other)])
    assert result.exit_code == 1 and "no model 'plain'" in result.output


def test_without_a_store_the_default_folder_is_read(sparse, tmp_path):
    result = invoke(["models", "history", "plain"])  # ./mltrail_runs has no registry
    assert result.exit_code == 1 and "mltrail_runs" in result.output


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The sparse store behind ``mltrail server`` with a token: (URL, token)."""
    folder = tmp_path_factory.mktemp("served") / "sparse"
    sparse_store(folder)
    with serving_store(folder, token="s3cret") as url:
        yield url, "s3cret"


@pytest.mark.slow
@pytest.mark.parametrize("where,group,command,expected", PLACES,
                         ids=[f"{w}: {g or ''} {' '.join(c)}" for w, g, c, _ in PLACES])
def test_every_command_reads_a_server_given_anywhere_with_its_token(served, tmp_path, where, group, command,
                                                                     expected):
    url, token = served
    given = ["--store", url, "--token", token]
    prefix = [group] if group else []
    args = {"root": [*given, *prefix, *command], "group": [*prefix, *given, *command],
            "command": [*prefix, *command, *given], "environment": [*prefix, *command]}[where]
    env = {"MLTRAIL_SPOOL": str(tmp_path / "spool")}
    if where == "environment":
        env.update(MLTRAIL_DIR=url, MLTRAIL_TOKEN=token)
    result = invoke(args, env=env)
    assert result.exit_code == 0, result.output
    assert expected in result.output


def test_a_wrong_token_or_a_token_for_a_folder_is_one_clear_line(served, sparse, tmp_path):
    url, _ = served
    result = invoke(["runs", "--store", url, "--token", "wrong"], env={"MLTRAIL_SPOOL": str(tmp_path / "spool")})
    assert result.exit_code == 1 and "a valid token is needed" in result.output
    result = invoke(["runs", "--store", str(sparse.root), "--token", "s3cret"])
    assert result.exit_code == 1 and "--token is for a store that is a server's URL" in result.output
