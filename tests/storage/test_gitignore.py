"""What the store's .gitignore keeps out of git, asked of real git."""

import subprocess

import pytest

from tests.factories import quiet_run

pytestmark = pytest.mark.slow


def ignored(root, path) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", str(path.relative_to(root))], cwd=root).returncode == 0


def test_derived_tables_large_blobs_and_half_written_files_stay_out_of_git(store):
    with quiet_run(store, "e") as run:
        run.log_metric("x", 1.0)
    store.compact()
    subprocess.run(["git", "init", "-q"], cwd=store.root, check=True)
    staged = run.path.parent / f".{run.path.name}.tmp"  # what a writer killed before its rename leaves
    staged.write_text("half")
    assert ignored(store.root, staged)
    assert ignored(store.root, store.root / ".cache" / "tables")
    assert ignored(store.root, store.root / "blobs-large" / "sha256" / "ab" / "cd")
    assert not ignored(store.root, run.path)
