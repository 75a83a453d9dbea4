"""Saved views (issue 30): named looks at runs kept as event files under ``views/``.

A view saved on one branch and another on a second branch merge without a conflict (real
git); the latest save of a view wins, its first save's author stays; bad input is refused
with what was wrong and writes nothing; a damaged file is skipped with a warning. On a
server: views naming an experiment the reader may not read do not exist for them, and
only a view's author or an admin changes it."""

from __future__ import annotations

import pytest

import mltrail
from mltrail.errors import SkippedLinesWarning
from tests.factories import git, quiet_run, raced, served_with_users


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in (root / "views").rglob("*") if p.is_file())


def test_a_view_is_saved_read_changed_and_deleted(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    with quiet_run(store, "wine") as run:
        run.log_params({"alpha": 0.5, "seed": 1})
        run.log_metric("rmse", 0.7)
    saved = store.views.save("seeds", experiments=["wine"], filter="params.alpha = '0.5'",
                             order_by="metrics.rmse ASC", columns=["params.seed", "metrics.rmse"],
                             charts=["rmse"], group_by=["params.seed"], band="minmax", by="ana")
    assert saved.author == saved.saved_by == "ana" and saved.saves == 1
    assert store.views.names() == ["seeds"] and store.views.exists("seeds")
    found = store.search_runs(**saved.search_args())
    assert list(found["run_id"]) == [run.id]
    changed = store.views.save("seeds", experiments=["wine"], filter="metrics.rmse < 0.5", by="bo")
    assert (changed.author, changed.saved_by, changed.saves) == ("ana", "bo", 2)
    assert changed.charts == [] and changed.band == "std"  # a save replaces every field
    assert len(store.search_runs(**changed.search_args())) == 0
    table = store.views.list()
    assert list(table["name"]) == ["seeds"] and table.loc[0, "author"] == "ana"
    store.views.delete("seeds", by="ana")
    assert store.views.names() == [] and not store.views.exists("seeds")
    with pytest.raises(mltrail.NotFoundError, match="no saved view 'seeds'"):
        store.views.get("seeds")
    assert len(_files(store.root)) == 3  # each save and the deletion: a file of its own, none rewritten
    again = store.views.save("seeds", by="cy")
    assert (again.author, again.saves) == ("cy", 1)  # a new view after a deletion: its own author


@pytest.mark.parametrize("fields,message", [
    ({"filter": "metrics.rmse <"}, "filter"),
    ({"order_by": "metrics.rmse SIDEWAYS"}, "order_by"),
    ({"group_by": ["metrics.rmse"]}, "group_by takes params"),
    ({"band": "wide"}, "band"),
    ({"smoothing": 1.0}, "smoothing"),
    ({"experiments": ["bad\nname"]}, "experiments"),
])
def test_a_wrong_view_names_what_is_wrong_and_writes_nothing(tmp_path, fields, message):
    store = mltrail.Store(tmp_path / "s")
    with pytest.raises(mltrail.MltrailError, match=message):
        store.views.save("v", **fields)
    assert not (store.root / "views").exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x" * 101])
def test_a_view_name_is_never_a_path(tmp_path, name):
    store = mltrail.Store(tmp_path / "s")
    with pytest.raises(mltrail.InvalidInputError, match="name"):
        store.views.save(name)
    assert not store.views.exists(name)
    with pytest.raises(mltrail.NotFoundError):
        store.views.get(name)
    assert not (tmp_path / "escape").exists() and not (store.root / "views").exists()


def test_a_damaged_view_file_is_skipped_with_a_warning(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    store.views.save("v", filter="metrics.a > 1")
    (store.root / "views" / "v" / "01ZZZZZZZZZZZZZZZZZZZZZZZZ.jsonl").write_text('{"v":1,"type":"view_saved","ts":')
    with pytest.warns(SkippedLinesWarning, match="unreadable view event"):
        assert mltrail.Store(store.root).views.get("v").filter == "metrics.a > 1"


def test_a_view_file_copied_into_another_view_s_folder_changes_neither(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    store.views.save("a", filter="metrics.a > 1", by="ana")
    store.views.save("b", filter="metrics.b > 2", by="bo")
    for path in (store.root / "views" / "b").iterdir():  # copied by hand, or a bad merge
        (store.root / "views" / "a" / ("01ZZZZZZZZZZZZZZZZZZZZZZZZ" + path.suffix)).write_bytes(path.read_bytes())
    fresh = mltrail.Store(store.root)
    assert (fresh.views.get("a").filter, fresh.views.get("a").author) == ("metrics.a > 1", "ana")
    assert fresh.views.get("b").filter == "metrics.b > 2" and fresh.views.names() == ["a", "b"]


def test_views_saved_on_two_branches_merge_without_conflict(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    store = mltrail.Store(repo / "runs")
    store.views.save("shared", filter="metrics.a > 1", by="ana")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a view")
    git(repo, "checkout", "-qb", "other")
    mltrail.Store(repo / "runs").views.save("mine", charts=["loss"], by="bo")
    mltrail.Store(repo / "runs").views.save("shared", filter="metrics.a > 2", by="bo")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "other branch's views")
    git(repo, "checkout", "-q", "main")
    mltrail.Store(repo / "runs").views.save("theirs", group_by=["tags.team"], by="cy")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "main's view")
    git(repo, "merge", "-q", "--no-edit", "other")  # fails the test on a conflict
    merged = mltrail.Store(repo / "runs").views
    assert merged.names() == ["mine", "shared", "theirs"]
    assert merged.get("shared").filter == "metrics.a > 2" and merged.get("shared").author == "ana"
    assert git(repo, "status", "--porcelain") == ""


def test_on_a_server_views_follow_their_experiments_and_their_authors(tmp_path):
    with served_with_users(tmp_path) as (local, clients):
        ana, bo, root = clients["ana"], clients["bo"], clients["root"]
        for experiment in ("private", "shared"):
            with quiet_run(ana, experiment) as run:
                run.log_metric("loss", 0.5)
        assert ana.upload() == 0
        ana.access.grant("experiment", "shared", to="bo", level="read")
        ana.views.save("private-view", experiments=["private"], by="someone")
        ana.views.save("shared-view", experiments=["shared"], filter="metrics.loss < 1")
        ana.views.save("everything", charts=["loss"])
        assert ana.views.get("private-view").author == "ana"  # the caller, whatever `by` said
        assert bo.views.names() == ["everything", "shared-view"]
        with pytest.raises(mltrail.NotFoundError, match="no saved view 'private-view'"):
            bo.views.get("private-view")
        with pytest.raises(mltrail.NotFoundError, match="no experiment 'private'"):
            bo.views.save("bo-view", experiments=["private"])
        with pytest.raises(mltrail.PermissionDeniedError, match="only its author or an admin"):
            bo.views.save("shared-view", experiments=["shared"], filter="metrics.loss > 1")
        with pytest.raises(mltrail.PermissionDeniedError):
            bo.views.delete("shared-view")
        with pytest.raises(mltrail.AlreadyExistsError, match="taken"):  # not his to see, nor to take
            bo.views.save("private-view")
        assert bo.views.save("bo-view", experiments=["shared"]).author == "bo"
        assert root.views.save("shared-view", experiments=["shared"], filter="metrics.loss < 2").saved_by == "root"
        assert local.views.get("shared-view").author == "ana"
        ana.views.delete("private-view")
        assert "private-view" not in root.views.names()


def test_on_a_server_a_hidden_view_is_not_there_to_delete_and_bounds_come_first(tmp_path):
    with served_with_users(tmp_path, ("ana", "eve", "root")) as (local, clients):
        ana, eve = clients["ana"], clients["eve"]
        with quiet_run(ana, "private") as run:
            run.log_metric("loss", 0.5)
        assert ana.upload() == 0
        ana.views.save("secret-view", experiments=["private"])
        with pytest.raises(mltrail.NotFoundError, match="no saved view 'secret-view'"):
            eve.views.delete("secret-view")  # as for a name no view has
        with pytest.raises(mltrail.NotFoundError, match="no saved view 'nope'"):
            eve.views.delete("nope")
        with pytest.raises(mltrail.InvalidInputError, match="experiments"):
            eve.views.save("big", experiments=["private"] * 200_000)  # refused before any lookup
        with pytest.raises(mltrail.InvalidInputError, match="filter"):
            eve.views.save("long", filter="metrics.a < 1 and " * 1000 + "metrics.b < 1")  # before the parser
        for bad in (".", ""):
            with pytest.raises(mltrail.NotFoundError):
                eve.views.get(bad)
        for number in range(8):
            name = f"race{number}"
            outcomes = raced(lambda user, name=name: clients[user].views.save(name, description=user))
            view = local.views.get(name)
            assert sorted(outcomes.values()) == ["refused", "saved"], outcomes  # never both
            assert view.author == view.saved_by == view.description


def test_names_asked_for_keep_no_reader(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    for number in range(100):
        assert not store.views.exists(f"nothing-{number}")
    assert store.views._readers == {}
