"""``mltrail users``, ``groups`` and ``access``: a token printed once, alone on the last
line; grants from the command line, against the folder and against the server."""

import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from tests.factories import quiet_run, serving_store


def invoke(args, env=None):
    return CliRunner(env=env).invoke(main, args)


def test_users_groups_and_grants_from_the_command_line(tmp_path):
    folder = str(tmp_path / "store")
    added = invoke(["users", "add", "ana", "--store", folder])
    assert added.exit_code == 0, added.output
    token = added.output.splitlines()[-1]
    assert token.startswith("mlt_") and " " not in token
    assert invoke(["users", "add", "root", "--admin", "--store", folder]).exit_code == 0
    again = invoke(["users", "add", "ana", "--store", folder])
    assert again.exit_code == 1 and "already exists" in again.output
    assert invoke(["users", "add", "bob", "--store", folder]).exit_code == 0
    assert invoke(["groups", "add", "team", "--member", "bob", "--store", folder]).exit_code == 0
    listed = invoke(["users", "--store", folder])
    assert "ana" in listed.output and "admin" in listed.output and "team" in listed.output
    assert "bob" in invoke(["groups", "list", "--store", folder]).output
    with quiet_run(mltrail.Store(folder), "private"):
        pass
    granted = invoke(["access", "grant", "experiment", "private", "--to", "team", "--level", "read",
                      "--reason", "review", "--store", folder])
    assert granted.exit_code == 0, granted.output
    shown = invoke(["access", "show", "experiment", "private", "--store", folder]).output
    assert "bob" in shown and "group team" in shown and "root" in shown
    bad = invoke(["access", "grant", "experiment", "private", "--to", "nobody", "--level", "read", "--store", folder])
    assert bad.exit_code == 1 and "no user or group 'nobody'" in bad.output
    rotated = invoke(["users", "token", "ana", "--store", folder]).output.splitlines()[-1]
    assert rotated.startswith("mlt_") and rotated != token
    assert invoke(["groups", "remove-member", "team", "bob", "--store", folder]).exit_code == 0
    assert "group team" not in invoke(["access", "show", "experiment", "private", "--store", folder]).output
    assert invoke(["users", "remove", "bob", "--store", folder]).exit_code == 0
    history = mltrail.Store(folder).access.history()
    assert list(history["event"]) == ["user_added", "user_added", "user_added", "member_added", "granted",
                                      "member_removed", "user_removed"]
    with serving_store(tmp_path / "store") as url:
        refused = invoke(["users", "add", "eve", "--store", url, "--token", rotated])
        assert refused.exit_code == 1 and "on the server's machine" in refused.output
        grant = invoke(["access", "grant", "experiment", "private", "--to", "ana", "--level", "edit",
                        "--store", url, "--token", rotated], env={"MLTRAIL_SPOOL": str(tmp_path / "spool")})
        assert grant.exit_code == 1 and "no experiment 'private'" in grant.output  # ana cannot see it


@pytest.mark.parametrize("level", ["none", "read"])
def test_the_server_default_permission(tmp_path, level):
    folder = tmp_path / "store"
    store = mltrail.Store(folder)
    token = store.access.add_user("ana")
    with quiet_run(store, "open"):
        pass
    with serving_store(folder, default_permission=level) as url:
        remote = mltrail.Store(url, token=token, spool=tmp_path / "spool")
        assert len(remote.search_runs()) == (1 if level == "read" else 0)
        remote.close(wait=0)
