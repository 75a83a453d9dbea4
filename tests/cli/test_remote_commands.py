"""The command line against ``mltrail server`` (``--store URL --token T``): the commands
that read and the commands that change the store do what they do on the folder, and
the folder shows the change."""

import json
import shutil

import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from tests.factories import REPO, ab_spec, serving_store


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", folder, ignore=shutil.ignore_patterns("*.py", ".mltrail"))
    with serving_store(folder, token="s3cret") as url:
        yield url, mltrail.Store(folder), tmp_path


@pytest.mark.slow
def test_commands_read_and_change_the_servers_store(served):
    url, local, tmp_path = served
    runner = CliRunner(env={"MLTRAIL_SPOOL": str(tmp_path / "spool"), "MLTRAIL_DIR": url, "MLTRAIL_TOKEN": "s3cret"})

    def ok(*args):
        result = runner.invoke(main, list(args))
        assert result.exit_code == 0, (args, result.output)
        return result.output

    assert "gb-lr0.2" in ok("runs", "-f", "metrics.val/auc > 0.9")
    assert "churn_model_mlops" in ok("experiments")
    assert "learning_rate" in ok("show", "gb-lr0.2")
    assert "learning_rate" in ok("diff", "gb-lr0.2", "gb-lr0.05")
    assert "git worktree" in ok("reproduce", "gb-lr0.2")
    assert "up to date" in ok("compact") and "(rebuilt)" in ok("compact", "--rebuild")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(ab_spec(key="cli-remote")))
    ok("ab", "create", "--spec", str(spec))
    ok("ab", "start", "cli-remote")
    ok("ab", "weights", "cli-remote", "control=0.4", "treatment=0.6")
    ok("ab", "coverage", "cli-remote", "0.5")
    ok("ab", "pause", "cli-remote")
    assert "paused" in ok("ab", "status", "cli-remote")
    ok("ab", "stop", "cli-remote", "--winner", "treatment", "--reason", "enough")
    exp = local.ab.get("cli-remote")
    assert (exp.state, exp.winner, exp.coverage, exp.phase.number) == ("stopped", "treatment", 0.5, 2)
    assert "no units yet" in ok("ab", "results", "cli-remote")
    ok("models", "create", "cli-model")
    ok("models", "register", "cli-model", "--run", "gb-lr0.2")
    ok("models", "alias", "cli-model", "staging", "1")
    assert "staging" in ok("models", "show", "cli-model") and "staging" in ok("models", "history", "cli-model")
    assert local.registry.get("cli-model", alias="staging").run == local.resolve_run("gb-lr0.2")
    ok("models", "promote", "churn-offer-v2", "--alias", "cli-winner")
    assert local.registry.alias_history("churn", "cli-winner")["experiment"][0] == "churn-offer-v2"
    assert "customer_activity" in ok("features", "list")
