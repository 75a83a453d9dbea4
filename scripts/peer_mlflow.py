"""Run MLflow's own fluent-tracking tests against a backend and say how many pass.

    python scripts/peer_mlflow.py --fetch                 # get MLflow's test files (git, network)
    python scripts/peer_mlflow.py --mode mlflow           # the baseline: real MLflow, its sqlite store
    python scripts/peer_mlflow.py --mode plugin           # real MLflow, MLFLOW_TRACKING_URI=mltrail:<folder>
    python scripts/peer_mlflow.py --mode server           # real MLflow on a live mltrail server (MLflow REST API)
    python scripts/peer_mlflow.py --mode mlflow-server    # the server mode's baseline: real MLflow on `mlflow server`
    python scripts/peer_mlflow.py --mode shim             # `import mltrail.mlflow as mlflow`
    python scripts/peer_mlflow.py --mode shim -- -k log_dict   # anything after -- goes to pytest

It prints passed / failed / errors / skipped per file and the pass rate (passed over
passed + failed + errors; skipped and excluded tests are listed, not counted), and writes
``tests/peer/mlflow/results/<mode>.md``: the figures, the command, and every failing test id
with the first line of its reason, so the work on issue 28 sees what is left. Exit status
0 when the run finished, whatever the rate (a gate belongs to CI, once the plugin exists).

The tests run in their own pytest session (rooted in the upstream checkout, with
``tests/peer/mlflow/pytest.ini`` and the plugin ``peer_mlflow_plugin``), never in mltrail's
own suite. The modes, and the exclusions every mode shares, are in that plugin.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "tests" / "peer" / "mlflow"
UPSTREAM = PEER / "upstream"
sys.path.insert(0, str(PEER))
from peer_mlflow_plugin import EXCLUDED, MODES, excluded_by_code  # noqa: E402  (the plugin is not a package)

MLFLOW_REPO = "https://github.com/mlflow/mlflow"
# The tag of the mlflow-skinny the test extra installs; --ref overrides it.
MLFLOW_REF = "v3.18.0"
# MLflow's tests of the fluent API (mlflow.start_run, log_*, set_*, search_*, ...) in
# tests/tracking/, and the one helper module they import. The rest of tests/tracking/ tests
# the REST store, the client's internals, Databricks contexts and the model registry's client.
TEST_FILES = [
    "tests/tracking/fluent/test_fluent.py",
    "tests/tracking/test_tracking.py",
]
HELPER_FILES = ["tests/__init__.py", "tests/helper_functions.py"]
OUTCOMES = ("passed", "failed", "errors", "skipped")


@dataclass(frozen=True)
class Case:
    file: str
    test_id: str
    outcome: str
    reason: str


def fetch(ref: str, upstream: Path) -> None:
    """A sparse, shallow clone of MLflow at ``ref`` holding only the selected files."""
    if upstream.exists():
        raise SystemExit(f"{upstream} exists: remove it first to fetch MLflow's tests again")
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--filter=blob:none", "--sparse",
                    "--branch", ref, MLFLOW_REPO, str(upstream)], check=True)
    subprocess.run(["git", "-C", str(upstream), "sparse-checkout", "set", "--no-cone",
                    *TEST_FILES, *HELPER_FILES], check=True)


def run(mode: str, upstream: Path, pytest_args: list[str], files: list[str] = TEST_FILES) -> tuple[list[Case], list[str]]:
    missing = [f for f in files if not (upstream / f).is_file()]
    if missing:
        raise SystemExit(f"MLflow's test files are not in {upstream} ({', '.join(missing)}): "
                         "run `python scripts/peer_mlflow.py --fetch` (see tests/peer/mlflow/README.md)")
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-c", str(PEER / "pytest.ini"), "--rootdir", str(upstream),
                   "-p", "peer_mlflow_plugin", "--peer-mode", mode, "-q", "-o", "junit_family=xunit1",
                   f"--junitxml={report}", *files, *pytest_args]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PEER), os.environ.get("PYTHONPATH")])))
        subprocess.run(command, cwd=upstream, env=env, check=False)
        if not report.is_file():
            raise SystemExit("pytest wrote no report: see its output above")
        return cases(report), command


def cases(report: Path) -> list[Case]:
    """One outcome a test id (a test that failed and then errored in teardown is failed)."""
    worst: dict[tuple[str, str], Case] = {}
    rank = {"passed": 0, "skipped": 1, "errors": 2, "failed": 3}
    for case in ET.parse(report).iter("testcase"):
        file = case.get("file") or case.get("classname", "").replace(".", "/") + ".py"
        test_id = f"{file}::{case.get('name')}"
        outcome, reason = "passed", ""
        for tag, name in (("skipped", "skipped"), ("error", "errors"), ("failure", "failed")):
            element = case.find(tag)
            if element is not None:
                outcome, reason = name, _first_line(element.get("message") or element.text or "")
        new = Case(file, test_id, outcome, reason)
        old = worst.get((file, test_id))
        if old is None or rank[new.outcome] > rank[old.outcome]:
            worst[(file, test_id)] = new
    return sorted(worst.values(), key=lambda c: c.test_id)


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= 200 else line[:197] + "..."


def table(found: list[Case]) -> tuple[list[str], str]:
    """Markdown rows per file and a total, and the pass rate as a sentence."""
    rows = ["| file | passed | failed | errors | skipped |", "|---|---:|---:|---:|---:|"]
    totals: Counter[str] = Counter()
    for file in sorted({c.file for c in found}):
        counts = Counter(c.outcome for c in found if c.file == file)
        totals.update(counts)
        rows.append(f"| {file} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |")
    rows.append("| **all** | " + " | ".join(f"**{totals[o]}**" for o in OUTCOMES) + " |")
    ran = totals["passed"] + totals["failed"] + totals["errors"]
    rate = f"{totals['passed']} of {ran} pass ({100 * totals['passed'] / ran:.1f}%)" if ran else "nothing ran"
    return rows, rate


# What a mode's rate is also given over: the tests that pass on MLflow itself, on its sqlite
# store (a test MLflow's own store fails is drift between the files and the installed MLflow);
# for the server mode also on MLflow's own server, since a test MLflow's REST client fails
# before it sends a request fails on every server.
BASELINES = {"mlflow": [], "mlflow-server": ["mlflow"], "plugin": ["mlflow"], "shim": ["mlflow"],
             "server": ["mlflow", "mlflow-server"]}
BASELINE_WORDS = {"mlflow": "on MLflow itself", "mlflow-server": "on MLflow's own server"}


def failing_on_mlflow(results: Path, baseline_mode: str = "mlflow") -> set[str] | None:
    """The tests the result file of ``baseline_mode`` (``mlflow``: MLflow itself) lists as
    not passing (None without one)."""
    baseline = results / f"{baseline_mode}.md"
    if not baseline.is_file():
        return None
    return {line.split("`")[1] for line in baseline.read_text().splitlines()
            if line.startswith("- `") and ("(failed)" in line or "(errors)" in line)}


def against_mlflow(found: list[Case], failing: set[str], where: str = "on MLflow itself") -> tuple[list[Case], str]:
    """The tests that pass on the baseline (MLflow itself) but not here, and the rate over
    those the baseline passes."""
    kept = [c for c in found if c.test_id not in failing and c.outcome != "skipped"]
    passed = sum(c.outcome == "passed" for c in kept)
    rate = f"{passed} of {len(kept)} that pass {where} ({100 * passed / len(kept):.1f}%)" if kept else "none"
    return [c for c in kept if c.outcome != "passed"], rate


def baselines(mode: str, results: Path) -> list[tuple[str, set[str]]]:
    """The baseline modes ``mode`` is compared with that have a result file, with the tests
    each fails."""
    found = [(name, failing_on_mlflow(results, name)) for name in BASELINES.get(mode, ["mlflow"])]
    return [(name, failing) for name, failing in found if failing is not None]


def write(mode: str, found: list[Case], out: Path, upstream: Path, files: list[str] = TEST_FILES) -> None:
    rows, rate = table(found)
    import mlflow

    compared = baselines(mode, out.parent)
    command = f"scripts/peer_mlflow.py --mode {mode}" + (f" --files {' '.join(files)}" if files != TEST_FILES else "")
    lines = [f"# MLflow's fluent-tracking tests, mode `{mode}`", "",
             f"Written by `{command}` on "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, mlflow {mlflow.__version__}: {rate}.", ""]
    for name, failing in compared:
        where = BASELINE_WORDS[name]
        lines += [f"Against the tests passing {where} (`{name}.md`, the same files): "
                  f"{against_mlflow(found, failing, where)[1]}.", ""]
    lines += [*rows, "", "## Not passing", ""]
    bad = [c for c in found if c.outcome in ("failed", "errors")]
    lines += [f"- `{c.test_id}` ({c.outcome}): {c.reason or 'no message'}" for c in bad] or ["None."]
    for name, failing in compared:
        lines += ["", f"## Of those, passing {BASELINE_WORDS[name]}", ""]
        lines += [f"- `{c.test_id}`" for c in against_mlflow(found, failing)[0]] or ["None."]
    lines += ["", "## Skipped (by MLflow's own marks)", ""]
    lines += [f"- `{c.test_id}`: {c.reason}" for c in found if c.outcome == "skipped"] or ["None."]
    lines += ["", "## Excluded in every mode (`EXCLUDED` in tests/peer/mlflow/peer_mlflow_plugin.py)", ""]
    lines += [f"- `{test_id}`: {why}" for test_id, why in sorted(EXCLUDED.items())] or ["None."]
    lines += ["", f"## Excluded in mode `{mode}` (`EXCLUDED_BY_CODE`: by what the test's code does)", ""]
    lines += [f"- `{test_id}`: {why}" for test_id, why in sorted(excluded_by_code(upstream, mode).items())] or ["None."]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), help="the backend MLflow's tests run against")
    parser.add_argument("--fetch", action="store_true", help="clone MLflow's test files into --upstream")
    parser.add_argument("--ref", default=MLFLOW_REF, help=f"MLflow's git tag or branch for --fetch ({MLFLOW_REF})")
    parser.add_argument("--upstream", type=Path, default=UPSTREAM, help="where MLflow's test files are")
    parser.add_argument("--out", type=Path, help="the result file (tests/peer/mlflow/results/<mode>.md)")
    parser.add_argument("--files", nargs="+", default=TEST_FILES, metavar="PATH",
                        help="some of MLflow's test files only (paths in its repository)")
    args, pytest_args = parser.parse_known_args(argv)
    pytest_args = [a for a in pytest_args if a != "--"]
    if args.fetch:
        fetch(args.ref, args.upstream.resolve())
    if args.mode is None:
        return 0 if args.fetch else parser.error("give --mode (or --fetch)")
    found, _ = run(args.mode, args.upstream.resolve(), pytest_args, args.files)
    rows, rate = table(found)
    print("\n".join(["", *rows, "", f"mode {args.mode}: {rate}; {len(EXCLUDED)} excluded in every mode"]))
    out = args.out or PEER / "results" / f"{args.mode}.md"
    for name, failing in baselines(args.mode, out.parent):
        print(f"against {name}: {against_mlflow(found, failing, BASELINE_WORDS[name])[1]}")
    write(args.mode, found, out, args.upstream.resolve(), args.files)
    print(f"failing tests and reasons: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
