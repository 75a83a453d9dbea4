"""Names are data: runs imported from MLflow keep MLflow's names, shared ones too (a grid
search's folds), while a run mltrail starts still gets a name no earlier run has; a lookup
by a shared name names the runs that have it, and every reader copes with shared names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from mltrail.errors import AmbiguousRunError
from tests.factories import git, quiet_run

from .mlruns import MlrunsBuilder

T0 = 1_700_000_100_000  # ms


def grid_search(root: Path, first_run: int, start_ms: int) -> MlrunsBuilder:
    """Two parent runs named ``search``, each with folds ``fold-0`` and ``fold-1`` started
    within one second (their IDs share their first 8 characters), and one ``summary``."""
    builder = MlrunsBuilder(root)
    builder.experiment("5", "cv")
    number = first_run
    for search in range(2):
        parent = f"{number:032x}"
        builder.run("5", parent, name="search", start_ms=start_ms + search * 1000)
        number += 1
        for fold in range(2):
            builder.run("5", f"{number:032x}", name=f"fold-{fold}", start_ms=start_ms + search * 1000 + 1 + fold,
                        tags={"mlflow.parentRunId": parent},
                        metrics={"acc": [(start_ms, 0.5 + fold / 10 + search / 100, 0)]})
            number += 1
    builder.run("5", f"{number:032x}", name="summary", start_ms=start_ms + 5000)
    return builder


@pytest.fixture
def imported(store: mltrail.Store, tmp_path: Path) -> mltrail.Store:
    store.import_mlflow(grid_search(tmp_path / "mlruns", 1, T0).root)
    return store


def by_name(store: mltrail.Store, name: str) -> list[str]:
    runs = store.search_runs("cv")
    return sorted(runs.loc[runs["run_name"] == name, "run_id"])


def test_imported_runs_keep_mlflow_s_names_shared_or_not(imported: mltrail.Store) -> None:
    runs = imported.search_runs("cv", order_by=["attributes.run_seq"])
    assert list(runs["run_name"]) == ["search", "fold-0", "fold-1", "search", "fold-0", "fold-1", "summary"]
    assert [imported.get_run(r)["run"]["run_seq"] for r in runs["run_id"]] == list(range(1, 8))  # a number each
    assert imported.search_runs("cv", "attributes.run_name = 'fold-0'")["run_id"].tolist() == \
        imported.search_runs("cv", "tags.mlflow.runName = 'fold-0'")["run_id"].tolist()
    assert len(imported.search_runs("cv", "attributes.run_name = 'fold-0'")) == 2
    parents = by_name(imported, "search")
    folds = imported.search_runs("cv", "attributes.run_name = 'fold-0'")
    assert sorted(folds["parent_run_id"]) == parents  # one fold-0 under each search
    before = dict(zip(runs["run_id"], runs["run_name"]))
    imported.compact(rebuild=True)  # derived from the events alone: the same names
    again = imported.search_runs("cv")
    assert dict(zip(again["run_id"], again["run_name"])) == before


def test_a_run_mltrail_starts_still_gets_a_name_of_its_own(imported: mltrail.Store) -> None:
    with quiet_run(imported, "cv", name="fold-0") as run:
        pass
    assert run.name == "fold-0_2"  # as the search will read it: mltrail's own runs stay unique by name
    assert imported.get_run(run.id)["run"]["run_name"] == "fold-0_2"
    assert imported.resolve_run("fold-0_2") == run.id
    assert len(by_name(imported, "fold-0")) == 2


def test_a_lookup_by_a_shared_name_names_the_runs_that_have_it(imported: mltrail.Store) -> None:
    folds = by_name(imported, "fold-0")
    with pytest.raises(AmbiguousRunError) as raised:
        imported.get_run("fold-0")
    assert raised.value.candidates == folds and raised.value.ref == "fold-0"
    assert all(run_id in str(raised.value) for run_id in folds)
    with pytest.raises(AmbiguousRunError):
        imported.start_run("cv", name="next", parent="search")  # a parent by a shared name
    assert imported.get_run(folds[1])["run"]["run_name"] == "fold-0"  # the ID finds it
    assert imported.resolve_run("summary") in set(imported.search_runs("cv")["run_id"])  # a name one run has


def test_the_cli_lists_runs_of_one_name_and_says_which_a_shared_name_means(imported: mltrail.Store) -> None:
    listed = CliRunner().invoke(main, ["runs", "--experiment", "cv", "--json", "--store", str(imported.root)])
    assert listed.exit_code == 0, listed.output
    assert [r["run_name"] for r in json.loads(listed.output)].count("fold-0") == 2
    shown = CliRunner().invoke(main, ["show", "fold-0", "--store", str(imported.root)])
    assert shown.exit_code == 1 and "Traceback" not in shown.output
    assert all(run_id in shown.output.replace("\n", "") for run_id in by_name(imported, "fold-0"))
    folds = by_name(imported, "fold-0")
    diff = CliRunner().invoke(main, ["diff", *folds, "--store", str(imported.root)])
    assert diff.exit_code == 0 and "metrics.acc" in diff.output


def test_the_dashboard_tells_runs_of_one_name_apart() -> None:
    import pandas as pd

    from mltrail.dashboard.views import compare_table, series_names, short_ids

    ids = ["01HZZZZZZZAA00000000000001", "01HZZZZZZZAB00000000000002", "01HZZZZZZYAA00000000000003"]
    assert short_ids(ids) == {i: i[:12] for i in ids}  # 8 and 10 characters are shared: 12 are shown
    names = series_names(pd.DataFrame({"run_id": ids, "run_name": ["fold-0", "fold-0", "search"]}))
    assert len(set(names.values())) == 3 and names[ids[2]] == "search"
    details = {run_id: {"run": {"run_id": run_id, "run_name": "fold-0"}, "params": pd.DataFrame(),
                        "metrics": pd.DataFrame([{"key": "acc", "value": float(i)}])} for i, run_id in enumerate(ids)}
    assert len(compare_table(details, differences_only=False).columns) == 3  # not one column over another


@pytest.mark.slow
def test_the_run_page_offers_each_run_of_a_shared_name(imported: mltrail.Store, monkeypatch) -> None:
    from tests.factories import rendered_page

    monkeypatch.setenv("MLTRAIL_DIR", str(imported.root))
    folds = by_name(imported, "fold-0")
    at = rendered_page("run.py", run=folds[1])
    assert not at.exception, [e.value for e in at.exception]
    labels = at.selectbox(key="run_choice").options
    assert len(labels) == len(set(labels)) == 7
    assert at.selectbox(key="run_choice").value == folds[1]
    compare = rendered_page("compare.py", selected_runs=folds)
    assert not compare.exception, [e.value for e in compare.exception]
    assert compare.multiselect(key="compare_runs").value == folds


@pytest.mark.slow
def test_two_clones_import_runs_of_one_name_and_merge_to_the_same_names(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    (origin / "README").write_text("runs\n")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "start")
    clones = {who: tmp_path / who for who in ("a", "b")}
    for offset, (who, clone) in enumerate(clones.items()):
        git(tmp_path, "clone", "-q", str(origin), str(clone))
        store = mltrail.Store(clone / "runs")
        store.import_mlflow(grid_search(tmp_path / f"mlruns-{who}", 100 * (offset + 1), T0 + offset * 60_000).root)
        with quiet_run(store, "cv", name="fold-0"):  # mltrail's own run of that name, on each side
            pass
        git(clone, "add", "-A")
        git(clone, "commit", "-q", "-m", f"runs by {who}")
    git(clones["b"], "push", "-q", "origin", "main:b")
    git(clones["a"], "fetch", "-q", "origin")
    git(clones["a"], "merge", "--no-edit", "-q", "origin/b")  # fails the test on any conflict
    git(clones["b"], "fetch", "-q", str(clones["a"]), "main")
    git(clones["b"], "merge", "--no-edit", "-q", "FETCH_HEAD")
    names, imported = [], []
    for clone in clones.values():
        runs = mltrail.Store(clone / "runs").search_runs("cv")
        names.append(dict(zip(runs["run_id"], runs["run_name"])))
        imported.append(sorted(runs.loc[runs["tags.mlflow.run_id"].notna(), "run_name"]))
    assert names[0] == names[1] and len(names[0]) == 16  # the same on both sides of the merge
    assert imported[0] == imported[1] == ["fold-0"] * 4 + ["fold-1"] * 4 + ["search"] * 4 + ["summary"] * 2
    started = sorted(name for name in names[0].values() if name.startswith("fold-0_"))
    assert started == ["fold-0_2", "fold-0_3"]  # mltrail's own runs: a name each
