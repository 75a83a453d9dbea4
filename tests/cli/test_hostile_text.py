"""Text a user logged is shown as text: never read as rich markup, never a second shell
command, never the end of a DOT string (issue 13, items 11 and 12)."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from mltrail.dashboard.lineage import lineage_dot
from tests.factories import quiet_run


@pytest.fixture
def hostile(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    for name in ("a[/x]", "b"):
        with quiet_run(store, "exp[/x]", name=name) as run:
            run.log_params({"data": "[/data/train.csv]", "style": f"[bold red]{name}[/]"})
            run.log_metric("f1", 0.5)
    return store


@pytest.mark.parametrize("args", [["runs"], ["runs", "--all-columns"], ["experiments"], ["show", "a[/x]"],
                                  ["diff", "a[/x]", "b", "--all"], ["runs", "-e", "nope[/x]"],
                                  ["runs", "-f", "params.data = '[/x]' and"]])
def test_brackets_in_names_and_values_are_text(hostile, args):
    result = CliRunner().invoke(main, [*args, "--store", str(hostile.root)])
    assert "MarkupError" not in repr(result.exception) and "Traceback" not in result.output
    assert result.exit_code in (0, 1), result.output
    if args[0] in ("show", "diff") or "--all-columns" in args:  # where the param is shown
        assert "[/data/train.c" in result.output


@pytest.mark.slow
def test_the_recorded_command_is_quoted_for_the_shell(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    code = ("import mltrail, sys; "
            f"run = mltrail.Store({str(store.root)!r}).start_run('e', name='r', log_git=False, log_packages=False); "
            "run.end()")
    script = tmp_path / "train.py"
    script.write_text(code)
    subprocess.run([sys.executable, str(script), "--note", "two words; touch INJECTED"], cwd=tmp_path, check=True,
                   env={"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(sys.path)})
    command = store.get_run("r")["run"]["command"]
    assert command.endswith("--note 'two words; touch INJECTED'")
    assert "'two words; touch INJECTED'" in store.reproduce_script("r")


def test_a_quote_in_a_run_name_keeps_the_lineage_graph_whole(tmp_path):
    import pickle

    store = mltrail.Store(tmp_path / "s")
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(1))
    with quiet_run(store, "e", name='the "best" run\\') as run:
        run.log_artifact(str(tmp_path / "m.pkl"))
    store.registry.create("m")
    store.registry.register("m", run.id, "m.pkl")
    dot = lineage_dot(store, "m")
    assert 'label="the \\"best\\" run\\\\"' in dot  # quote and backslash escaped inside the label
