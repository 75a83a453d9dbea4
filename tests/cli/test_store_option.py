"""One `--store` resolution for every command and group: given to `mltrail`, to a group
or to a command (the one nearest the command wins), else $MLTRAIL_DIR, else
./mltrail_runs. (`mltrail models --store S history churn` used to read ./mltrail_runs.)"""

import pytest
from click.testing import CliRunner

from mltrail.cli import main
from tests.factories import sparse_store

# (group, command after the group, text the answer must hold)
CASES = [
    (None, ["runs"], "nothing"),
    (None, ["experiments"], "has one"),
    (None, ["show", "full"], "growth"),
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
