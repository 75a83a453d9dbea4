"""The A/B aggregation on Apache Spark (local mode) gives DuckDB's statistics: counts
exactly, sums to 1e-9 relative (skipped where pyspark or Java is missing; `.ci/run`
installs the `spark` extra for its first run, and the machine image has Java 17)."""

import shutil

import numpy as np
import pandas as pd
import pytest

from tests.factories import ab_spec

pyspark = pytest.importorskip("pyspark", reason="pip install -e '.[spark]' (and Java 17)")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java"),
              # PySpark 3.5's py4j leaves its gateway sockets to the garbage collector (4.x does not)
              pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@pytest.fixture(scope="module")
def spark():
    from mltrail.compaction.abspark import session

    spark = session()
    yield spark
    spark.stop()


def generated_experiment(store):
    """Three phases, three metrics (binary with a conversion window, continuous, a ratio),
    repeat exposures, crossovers, feedback before an exposure and in every phase, logged
    in several flushes (several unit files)."""
    exp = store.ab.create(ab_spec(key="eq", primary={"name": "conversion", "kind": "binary", "window_seconds": 3600},
                                  guardrails=[{"name": "spend", "kind": "continuous", "direction": "decrease"},
                                              {"name": "spend_per_visit", "kind": "ratio", "numerator": "spend",
                                               "denominator": "visits"}],
                                  mde=0.02)).start()
    rng = np.random.default_rng(11)
    for batch, (first, last) in enumerate(((0, 8_000), (7_500, 8_500), (8_000, 9_000))):
        units = [f"u{i}" for i in range(first, last)]  # some seen before each time
        for unit, variant in zip(units, exp.assign_batch(units)):
            if rng.random() < 0.3:
                exp.log_feedback(unit, "conversion", 1.0)  # before its exposure: outside the window
            exp.log_exposure(unit, variant)
            if rng.random() < 0.3:
                exp.log_feedback(unit, "conversion", 1.0)
            exp.log_feedback(unit, "spend", float(np.round(rng.gamma(2.0, 7.3), 6)))
            for _ in range(int(rng.integers(1, 4))):
                exp.log_feedback(unit, "visits", 1.0)
            if rng.random() < 0.01:
                exp.log_exposure(unit, "treatment" if variant == "control" else "control")  # a crossover
        exp.log.flush()
        store.ab.log_tables(exp)
        if batch < 2:
            exp = exp.set_weights({"control": 0.5, "treatment": 0.5}, reason=f"phase {batch + 2}")
    return exp


def test_spark_local_mode_gives_duckdb_s_statistics(store, spark, monkeypatch):
    from mltrail.compaction import ablog

    monkeypatch.setattr(ablog, "MERGE_AT_SHARE", 10.0)  # keep the small unit files: DuckDB's lookup path
    exp = generated_experiment(store)
    assert len(store.ab.log_tables(exp).unit_files) == 3  # a big file and two small ones: DuckDB looks up
    for phase in (1, 2, 3):
        duck = exp.results(phase=phase)
        sparked = exp.results(phase=phase, engine="spark")
        assert sparked.units == duck.units and sum(duck.units.values()) > 900
        assert sparked.crossover_units == duck.crossover_units
        keys = ["metric", "variant", "day"]
        a, b = duck.daily.set_index(keys).sort_index(), sparked.daily.set_index(keys).sort_index()
        assert (a["n"] == b["n"]).all() and list(a.index) == list(b.index)
        np.testing.assert_allclose(b[["sum", "sum_sq"]], a[["sum", "sum_sq"]], rtol=1e-9)
        pd.testing.assert_frame_equal(sparked.table, duck.table, rtol=1e-9)


def test_an_unknown_engine_is_named(store):
    exp = store.ab.create(ab_spec(mde=0.02)).start()
    with pytest.raises(ValueError, match="engine must be one of duckdb, spark, not 'trino'"):
        exp.results(engine="trino")


def test_the_command_line_analyses_on_spark(store, spark):
    from click.testing import CliRunner

    from mltrail.cli import main
    from tests.factories import simulate

    exp = store.ab.create(ab_spec(mde=0.02)).start()
    simulate(exp, {"control": 0.1, "treatment": 0.2}, 600)
    exp.log.flush()
    answers = [CliRunner().invoke(main, ["ab", "results", exp.key, "--json", "--engine", engine,
                                         "--store", str(store.root)]) for engine in ("duckdb", "spark")]
    assert all(a.exit_code == 0 for a in answers), [a.output for a in answers]
    import json
    duck, sparked = (json.loads(a.output) for a in answers)
    assert sparked["units"] == duck["units"] and sum(duck["units"].values()) == 600


def test_results_by_a_dimension_on_spark_equal_duckdb_s(store, spark):
    exp = store.ab.create(ab_spec(key="dims", mde=0.02)).start()
    rng = np.random.default_rng(4)
    for i in range(2_000):
        unit = f"u{i}"
        exp.log_exposure(unit, exp.assign(unit), attributes={"platform": str(rng.choice(["ios", "android"]))}
                         if i % 7 else None)
        if rng.random() < 0.15:
            exp.log_feedback(unit, "conversion", 1.0)
    duck, sparked = exp.results_by("platform"), exp.results_by("platform", engine="spark")
    assert sorted(duck.segments) == sorted(sparked.segments) == ["(none)", "android", "ios"]
    pd.testing.assert_frame_equal(sparked.table, duck.table, rtol=1e-9)
