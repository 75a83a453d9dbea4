"""mltrail rename | notes | tag | delete | restore | gc, and what runs/show say of them."""

import json

import pytest

from tests.cli.test_runs import invoke


def run_names(store, *flags):
    return [r["run_name"] for r in json.loads(invoke("runs", "--json", *flags, store=store).output)]


@pytest.mark.slow
def test_curating_a_run_from_the_command_line(cli_store, tmp_path):
    assert invoke("rename", "rf", "forest", "--by", "ana", store=cli_store).exit_code == 0
    notes = tmp_path / "notes.md"
    notes.write_text("# Forest\nbest on **f1**", encoding="utf-8")
    assert invoke("notes", "forest", "--file", str(notes), store=cli_store).exit_code == 0
    assert invoke("tag", "forest", "review", "ok", store=cli_store).exit_code == 0
    assert invoke("tag", "forest", "review", "--delete", store=cli_store).exit_code == 0
    shown = invoke("show", "forest", store=cli_store).output
    assert "# Forest" in shown and "renamed to 'forest'" in shown and "by ana" in shown
    assert "tag review removed" in shown
    assert sorted(run_names(cli_store)) == ["forest", "lr"]
    assert invoke("delete", "forest", "lr", store=cli_store).exit_code == 0
    assert run_names(cli_store) == [] and sorted(run_names(cli_store, "--deleted")) == ["forest", "lr"]
    assert "DELETED" in invoke("show", "lr", store=cli_store).output
    assert invoke("restore", "lr", store=cli_store).exit_code == 0
    assert run_names(cli_store) == ["lr"]
    dry = invoke("gc", "--dry-run", store=cli_store)
    assert "would purge 1 deleted run(s)" in dry.output
    assert run_names(cli_store, "--deleted") == ["forest"]
    done = invoke("gc", store=cli_store)
    assert "purged 1 deleted run(s)" in done.output
    assert run_names(cli_store, "--deleted") == [] and run_names(cli_store) == ["lr"]


def test_curation_commands_say_what_is_wrong(cli_store):
    for args, message in ((("tag", "rf", "k"), "give a VALUE"),
                          (("notes", "rf"), "as TEXT or with --file"),
                          (("rename", "rf", " "), "non-empty"),
                          (("restore", "rf"), "is not deleted"),
                          (("delete", "nope"), "no run 'nope'")):
        result = invoke(*args, store=cli_store)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
