"""Every CLI command on a store with every optional field missing: a blank, never a
traceback. (Under pandas 3 a missing text cell reads back as NaN, which is truthy:
``row["group"] or ""`` handed a float to rich, and `mltrail show` crashed.)"""

import json
import re

import pytest
from click.testing import CliRunner

from mltrail.cli import main
from tests.factories import sparse_store


@pytest.fixture
def sparse(tmp_path):
    return sparse_store(tmp_path / "sparse")


COMMANDS = [
    ["runs"], ["runs", "--json"], ["runs", "--all-columns"], ["experiments"], ["experiments", "--json"],
    ["show", "bare_1"], ["show", "bare_1", "--json"], ["show", "nothing"], ["show", "live"],
    ["show", "full"], ["diff", "bare_1", "nothing"], ["diff", "nothing", "full", "--all"],
    ["compact"], ["reproduce", "nothing"],
    ["models"], ["models", "list"], ["models", "list", "--json"], ["models", "show", "plain"],
    ["models", "history", "plain"], ["models", "history", "plain", "production", "--json"],
    ["ab", "list"], ["ab", "status", "idle"], ["ab", "results", "idle"], ["ab", "results", "idle", "--json"],
    ["features"], ["features", "list"],
]


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_reads_a_sparse_store(sparse, command):
    result = CliRunner().invoke(main, [*command, "--store", str(sparse.root)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    # a missing cell is blank; "nan" is only the NaN that run bare_1 logged as its loss
    assert all("loss" in line for line in result.output.splitlines() if re.search(r"\bnan\b", line)), result.output


@pytest.mark.slow
def test_show_a_param_without_a_group_and_a_nan_metric(sparse):
    result = CliRunner().invoke(main, ["show", "bare_1", "--store", str(sparse.root)])
    assert result.exit_code == 0, result.output
    assert "seed" in result.output and "loss" in result.output
    page = json.loads(CliRunner().invoke(main, ["show", "bare_1", "--json", "--store", str(sparse.root)]).output)
    assert page["params"] == [{"key": "seed", "value": "1"}]  # no group: left out, not NaN


def test_experiments_without_description_and_models_without_one(sparse):
    experiments = CliRunner().invoke(main, ["experiments", "--store", str(sparse.root)]).output
    assert "bare" in experiments and "has one" in experiments
    models = CliRunner().invoke(main, ["models", "--store", str(sparse.root)]).output
    assert "plain" in models and "production=v1" in models


@pytest.mark.slow
def test_an_alias_moved_from_the_cli_records_who(sparse, monkeypatch):
    monkeypatch.setenv("MLTRAIL_USER", "ana")
    runner = CliRunner()
    runner.invoke(main, ["models", "register", "plain", "--run", "full", "--store", str(sparse.root)])
    moved = runner.invoke(main, ["models", "alias", "plain", "production", "2", "--store", str(sparse.root)])
    assert moved.exit_code == 0, moved.output
    history = json.loads(runner.invoke(main, ["models", "history", "plain", "--json", "--store",
                                              str(sparse.root)]).output)
    assert history[-1]["by"] == "ana" and history[-1]["to_version"] == 2
