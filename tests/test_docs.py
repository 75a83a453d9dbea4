"""The project's docs stand alone: nothing in the repository points at a file outside it,
and every ``docs/`` file the project names exists."""

import re
import subprocess

from tests.factories import REPO

OUTSIDE = "shared" + "/"  # (spelt in two parts, so this file does not name it itself)
DOCS_PATH = re.compile(r"(?<![\w/.-])docs/[\w./-]*\w")


def _repository_files() -> list:
    """Every file git tracks or would track (new files too; ignored ones, such as .venv, not)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [REPO / name for name in listed if name and (REPO / name).is_file()]


def test_no_file_names_a_folder_outside_the_repository():
    files = _repository_files()
    assert any(path.name == "README.md" for path in files)  # (the listing itself worked)
    naming = [str(path.relative_to(REPO)) for path in files if OUTSIDE.encode() in path.read_bytes()]
    assert not naming, f"these name {OUTSIDE}, which is not in the repository: {naming}"


def test_every_docs_file_the_project_names_exists():
    texts = [REPO / "README.md", REPO / "pyproject.toml", *sorted((REPO / "src").rglob("*.py")),
             *sorted((REPO / "docs").glob("*.md"))]
    named = {(match, str(path.relative_to(REPO))) for path in texts
             for match in DOCS_PATH.findall(path.read_text(encoding="utf-8"))}
    assert ("docs/design.md", "README.md") in named and ("docs/ab-statistics.md", "README.md") in named
    missing = sorted((name, path) for name, path in named if not (REPO / name).exists())
    assert not missing, missing
