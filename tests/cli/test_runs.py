import json

import pytest
from click.testing import CliRunner

from mltrail.cli import main
from tests.factories import quiet_run


def invoke(*args, store=None):
    extra = ["--store", str(store.root)] if store is not None else []
    return CliRunner().invoke(main, [*args, *extra], catch_exceptions=False)


def test_runs_table_lists_runs(cli_store):
    result = invoke("runs", store=cli_store)
    assert result.exit_code == 0
    assert "rf" in result.output and "lr" in result.output and "f1" in result.output
    assert "max_depth" in result.output and "n_estimators" not in result.output  # equal in all runs


def test_runs_json_is_a_list_of_runs(cli_store):
    result = invoke("runs", "--json", "--filter", "metrics.f1 > 0.75", store=cli_store)
    runs = json.loads(result.output)
    assert [r["run_name"] for r in runs] == ["rf"]
    assert runs[0]["params.max_depth"] == "5" and runs[0]["metrics.f1"] == 0.8


def test_store_from_environment(cli_store, monkeypatch):
    monkeypatch.setenv("MLTRAIL_DIR", str(cli_store.root))
    assert json.loads(invoke("runs", "--json").output)[0]["experiment"] == "churn"


def test_invalid_filter_is_one_clear_error_and_exit_1(cli_store):
    result = invoke("runs", "--filter", "metrics.f1 >", store=cli_store)
    assert result.exit_code == 1
    assert "invalid filter at position 12" in result.output
    assert "Traceback" not in result.output


def test_unknown_run_and_missing_store(cli_store, tmp_path):
    result = invoke("show", "nope", store=cli_store)
    assert result.exit_code == 1 and "no run 'nope'" in result.output
    result = CliRunner().invoke(main, ["runs", "--store", str(tmp_path / "none")])
    assert result.exit_code == 1 and "no mltrail store" in result.output


def test_show_and_show_json(cli_store):
    result = invoke("show", "rf", store=cli_store)
    assert result.exit_code == 0 and "max_depth" in result.output and "model" in result.output
    data = json.loads(invoke("show", "rf", "--json", store=cli_store).output)
    assert data["run"]["run_name"] == "rf"
    assert {p["key"]: p["value"] for p in data["params"]} == {"n_estimators": "100", "max_depth": "5"}


@pytest.mark.slow
def test_diff_marks_only_differences(cli_store):
    result = invoke("diff", "rf", "lr", store=cli_store)
    assert result.exit_code == 0
    assert "params.max_depth" in result.output and "metrics.f1" in result.output
    assert "n_estimators" not in result.output
    assert "n_estimators" in invoke("diff", "rf", "lr", "--all", store=cli_store).output


def test_diff_of_three_runs_and_of_one(cli_store):
    with quiet_run(cli_store, "churn", name="gb") as run:
        run.log_params({"n_estimators": 100, "max_depth": 5, "lr": 0.1}, group="model")
    result = invoke("diff", "rf", "lr", "gb", store=cli_store)
    assert result.exit_code == 0

    def cells(key):
        line = next(line for line in result.output.splitlines() if f" {key} " in line)
        return [cell.strip() for cell in line.split("│")[3:6]]

    assert cells("params.max_depth") == ["5", "3", "5"]
    assert cells("params.lr") == ["—", "—", "0.1"]  # a key only one run has
    assert "n_estimators" not in result.output  # equal everywhere: not shown without --all
    header = next(line for line in result.output.splitlines() if "key" in line)
    assert header.index("rf") < header.index("lr") < header.index("gb")
    one = CliRunner().invoke(main, ["diff", "rf", "--store", str(cli_store.root)])
    assert one.exit_code == 1 and "two runs or more" in one.output


def test_compact_and_rebuild(cli_store):
    result = invoke("compact", store=cli_store)
    assert result.exit_code == 0 and ("up to date" in result.output or "read" in result.output)
    result = invoke("compact", "--rebuild", store=cli_store)
    assert "(rebuilt)" in result.output


def test_reproduce_without_git_says_so(cli_store):
    result = invoke("reproduce", "rf", store=cli_store)
    assert result.exit_code == 0 and "no git commit was recorded" in result.output


def test_experiments_lists_descriptions(cli_store):
    result = invoke("experiments", store=cli_store)
    assert "churn study" in result.output


def test_ui_finds_the_repositorys_dashboard_in_a_source_checkout(tmp_path, monkeypatch):
    """A wheel's copy is tests/cli/test_wheel.py's; an editable install reads app/ itself,
    and MLTRAIL_APP_DIR, when set, is the only place looked at."""
    import pytest

    from mltrail.cli.runs import app_entrypoint
    from mltrail.errors import MltrailError
    from tests.factories import REPO

    assert app_entrypoint() == (REPO / "app" / "main.py").resolve()
    monkeypatch.setenv("MLTRAIL_APP_DIR", str(tmp_path))
    with pytest.raises(MltrailError, match=f"not at {tmp_path / 'main.py'}: .* set MLTRAIL_APP_DIR"):
        app_entrypoint()
