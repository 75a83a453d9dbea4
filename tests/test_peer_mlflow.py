"""scripts/peer_mlflow.py counts what pytest reported: one outcome a test, the worst one."""

import importlib.util
import subprocess
import sys

from tests.factories import REPO


def _runner(monkeypatch):
    """The script as a module; what it adds to sys.path and sys.modules goes when the test ends."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("peer_mlflow", REPO / "scripts" / "peer_mlflow.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "peer_mlflow", module)  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def test_the_runner_counts_each_test_once_by_its_worst_outcome(tmp_path, monkeypatch):
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "@pytest.fixture\n"
        "def breaks_after():\n"
        "    yield\n"
        "    raise RuntimeError('teardown broke')\n"
        "def test_passes(): pass\n"
        "def test_fails():\n"
        "    assert 1 == 2, 'one is not two'\n"
        "def test_fails_then_teardown_breaks(breaks_after):\n"
        "    assert False, 'the test itself failed'\n"
        "def test_passes_then_teardown_breaks(breaks_after): pass\n"
        "@pytest.mark.skip(reason='not here')\n"
        "def test_skipped(): pass\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    report = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
                    f"--junitxml={report}", "test_sample.py"], cwd=tmp_path, capture_output=True, check=False)
    runner = _runner(monkeypatch)
    found = {case.test_id.split("::")[1]: case for case in runner.cases(report)}
    assert {name: case.outcome for name, case in found.items()} == {
        "test_passes": "passed", "test_fails": "failed", "test_fails_then_teardown_breaks": "failed",
        "test_passes_then_teardown_breaks": "errors", "test_skipped": "skipped"}
    assert "one is not two" in found["test_fails"].reason
    rows, rate = runner.table(list(found.values()))
    assert rows[-1] == "| **all** | **1** | **2** | **1** | **1** |"
    assert rate == "1 of 4 pass (25.0%)"


def test_a_mode_s_rate_is_also_given_over_the_tests_mlflow_itself_passes(tmp_path, monkeypatch):
    runner = _runner(monkeypatch)
    (tmp_path / "mlflow.md").write_text(
        "# MLflow's fluent-tracking tests, mode `mlflow`\n\n## Not passing\n\n"
        "- `t.py::test_drift` (failed): TypeError: RunInfo.__init__() got an unexpected keyword argument 'run_uuid'\n"
        "- `t.py::test_broken` (errors): collection failure\n\n## Skipped (by MLflow's own marks)\n\n"
        "- `t.py::test_windows`: Windows only\n")
    failing = runner.failing_on_mlflow(tmp_path)
    assert failing == {"t.py::test_drift", "t.py::test_broken"}  # a skipped one is not a failure
    found = [runner.Case("t.py", f"t.py::{name}", outcome, "") for name, outcome in
             [("test_drift", "failed"), ("test_broken", "errors"), ("test_ok", "passed"), ("test_ours", "failed"),
              ("test_also_ok", "passed"), ("test_windows", "skipped")]]
    missed, rate = runner.against_mlflow(found, failing)
    assert [c.test_id for c in missed] == ["t.py::test_ours"] and rate == "2 of 3 that pass on MLflow itself (66.7%)"
    assert runner.failing_on_mlflow(tmp_path / "nowhere") is None


def test_the_server_mode_is_also_measured_over_the_tests_mlflow_s_own_server_passes(tmp_path, monkeypatch):
    runner = _runner(monkeypatch)
    head = "# MLflow's fluent-tracking tests\n\n## Not passing\n\n"
    (tmp_path / "mlflow.md").write_text(head + "- `t.py::test_drift` (failed): drift\n")
    assert [name for name, _ in runner.baselines("server", tmp_path)] == ["mlflow"]  # no server baseline yet
    (tmp_path / "mlflow-server.md").write_text(
        head + "- `t.py::test_drift` (failed): drift\n- `t.py::test_client_side` (failed): TypeError\n")
    compared = dict(runner.baselines("server", tmp_path))
    assert compared == {"mlflow": {"t.py::test_drift"}, "mlflow-server": {"t.py::test_drift", "t.py::test_client_side"}}
    assert [name for name, _ in runner.baselines("plugin", tmp_path)] == ["mlflow"]
    assert runner.baselines("mlflow", tmp_path) == []
    found = [runner.Case("t.py", f"t.py::{name}", outcome, "") for name, outcome in
             [("test_drift", "failed"), ("test_client_side", "failed"), ("test_ok", "passed")]]
    assert runner.against_mlflow(found, compared["mlflow"])[1] == "1 of 2 that pass on MLflow itself (50.0%)"
    missed, rate = runner.against_mlflow(found, compared["mlflow-server"], runner.BASELINE_WORDS["mlflow-server"])
    assert missed == [] and rate == "1 of 1 that pass on MLflow's own server (100.0%)"
