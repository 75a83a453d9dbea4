"""A wheel carries the dashboard: built from a copy of the sources, installed into a venv
of its own outside the repository, its `mltrail ui` answers the health check and renders
the Runs page in Debian's chromium (driven by Playwright, as tests/dashboard/test_browser.py).
It carries py.typed too, so that users' type checkers read mltrail's annotations."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.factories import REPO, free_port, wait_for_http

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")]
sync_api = pytest.importorskip("playwright.sync_api")

SOURCES = ("pyproject.toml", "setup.py", "README.md", "src", "app")  # what a build reads


def clean_env() -> dict[str, str]:
    """This environment without what would put other code on the new venv's path."""
    return {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "PYTHONHOME")}


def run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, f"{' '.join(map(str, command))}: {done.stdout}{done.stderr}"
    return done.stdout.strip()


@pytest.fixture
def wheel_venv(tmp_path: Path) -> Path:
    """A venv with mltrail installed from a freshly built wheel; its Python."""
    source = tmp_path / "source"  # a copy: building in the repository would write build/ there
    source.mkdir()
    for name in SOURCES:
        if not (REPO / name).exists():
            continue
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", source, cwd=tmp_path)
    wheel, = (tmp_path / "dist").glob("mltrail-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel, cwd=tmp_path)
    # The dependencies come from this interpreter's site-packages, named by a .pth written
    # after the install (so pip saw no mltrail there). Python does not read the .pth files
    # of a folder a .pth names, so the editable install's own .pth (or finder) never runs:
    # mltrail can only come from the wheel, which the test asserts below. (Installing the
    # dependencies into the venv from pip's local cache took 70 s on the 2-core machine.)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_a_wheel_serves_the_dashboard_outside_the_repository(wheel_venv, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    venv = wheel_venv.parents[1]
    found = run(wheel_venv, "-c", "import mltrail; from mltrail.cli.runs import app_entrypoint; "
                "print(mltrail.__file__); print(app_entrypoint())", cwd=work).splitlines()
    assert [Path(path).resolve().is_relative_to(venv.resolve()) for path in found] == [True, True], found
    assert found[1].endswith(os.path.join("mltrail", "_app", "main.py"))
    assert (Path(found[0]).parent / "py.typed").is_file()  # PEP 561: the package is typed

    store = tmp_path / "sample_runs"
    shutil.copytree(REPO / "sample_runs", store, ignore=shutil.ignore_patterns(".cache"))
    port = free_port()
    server = subprocess.Popen([str(venv / "bin" / "mltrail"), "ui", "--store", str(store), "--port", str(port)],
                              cwd=work, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for_http(f"{url}/_stcore/health", server, 60) == b"ok"
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = browser.new_page()
            page.goto(url)
            page.get_by_text("10 runs").first.wait_for(timeout=60_000)  # the sample store's runs
            page.locator('[data-testid="stDataFrame"]').first.wait_for()
            assert page.locator('[data-testid="stException"]').count() == 0
            browser.close()
    finally:
        server.terminate()
        server.communicate(timeout=30)
