"""Every dashboard page on a store with every optional field missing: it renders, with
blanks where nothing was logged, and never an exception."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.factories import APP, rendered_page, sparse_store

PAGES = ["runs.py", "compare.py", "run.py", "live.py", "ab_experiments.py", "ab_experiment.py",
         "ab_power.py", "models.py", "features.py", "study.py", "reports.py"]


@pytest.fixture
def sparse(tmp_path, monkeypatch):
    store = sparse_store(tmp_path / "sparse")
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    return store


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_a_sparse_store(sparse, page):
    at = rendered_page(page, selected_runs=list(sparse.search_runs()["run_id"]))
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(str(m.value) for m in at.markdown)
    assert "nan" not in shown.lower().split()


@pytest.mark.slow
@pytest.mark.parametrize("run", ["bare_1", "nothing", "live", "full"])
def test_the_run_page_shows_each_sparse_run(sparse, run):
    at = rendered_page("run.py", run=sparse.resolve_run(run))
    assert not at.exception, [e.value for e in at.exception]


def test_the_lineage_of_a_version_whose_run_has_no_name(sparse):
    """A version event without a run name (an older store) draws the run by its ID."""
    from mltrail.dashboard.lineage import lineage_edges

    version = sparse.registry.versions("plain").iloc[0]
    event_file = next(f for f in (sparse.root / "registry" / "plain").glob("*.jsonl")
                      if b'"version_registered"' in f.read_bytes())
    event_file.write_bytes(event_file.read_bytes().replace(b'"run_name":"full",', b""))
    from mltrail import Store

    edges = lineage_edges(Store(sparse.root), "plain")
    assert (f"run:{version['run'][:10]}", "v1", "registered") in edges


@pytest.mark.slow
def test_the_run_page_offers_only_artifacts_it_can_hold(tmp_path, monkeypatch):
    """A download button keeps its file in the server's memory while the page is open: a
    2 GB artifact cost 2.2 GB of RSS. Past MLTRAIL_UI_DOWNLOAD_MAX the page shows where
    the file is instead."""
    from mltrail import Store
    from tests.factories import quiet_run

    store = Store(tmp_path / "s")
    (tmp_path / "small.txt").write_bytes(b"x" * 10)
    (tmp_path / "big.bin").write_bytes(b"y" * 1_000)
    with quiet_run(store, "e", name="r") as run:
        run.log_artifact(str(tmp_path / "small.txt"))
        run.log_artifact(str(tmp_path / "big.bin"))
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    monkeypatch.setenv("MLTRAIL_UI_DOWNLOAD_MAX", "100")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = run.id
    at.run()
    at.switch_page("run.py").run()
    assert not at.exception
    assert len(at.get("download_button")) == 1
    assert any("too large to offer here" in c.value and "blobs" in c.value for c in at.caption)


@pytest.mark.slow
@pytest.mark.parametrize(("page", "run"), [("run.py", "bare_1"), ("run.py", "full"), ("models.py", None),
                                           ("ab_experiments.py", None)])
def test_missing_values_are_blank_not_none(sparse, page, run):
    """Streamlit draws a missing cell as "None": a table shows "—" (or the cell's text)
    where nothing was logged, and no metric reads "None" or "nan"."""
    at = rendered_page(page, run=sparse.resolve_run(run) if run else None)
    assert not at.exception, [e.value for e in at.exception]
    for table in at.dataframe:
        frame = table.value
        assert not frame.isna().any().any(), frame[frame.isna().any(axis=1)]
        assert not frame.astype(str).isin(["None", "nan", "NaN", "NaT"]).any().any()
    assert not [m for m in at.metric if str(m.value) in ("None", "nan", "NaN", "NaT", "")]
